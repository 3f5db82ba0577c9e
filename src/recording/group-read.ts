/**
 * Let one group read a recording: the service's API process (an unprivileged
 * user) answers range queries from the file the root monitor writes.
 *
 * SQLite gives the -wal and -shm files it creates the owner and mode of the
 * database file, so setting them on the database is enough for files made
 * later; those that exist already are set here too. A reader with read
 * permission only can still read a WAL database (SQLite opens the -shm
 * read-only). Nothing here fails the recording: a file system without
 * ownership (vfat, some network ones) just keeps the API from reading it,
 * and the API then answers from memory.
 */
import { chmodSync, chownSync, statSync } from 'node:fs';

export function shareWithGroup(file: string, gid: number): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      const st = statSync(f);
      if (st.gid !== gid) chownSync(f, st.uid, gid);
      // Owner's bits kept; the group reads; others nothing.
      const mode = (st.mode & 0o700) | 0o040;
      if ((st.mode & 0o777) !== mode) chmodSync(f, mode);
    } catch {
      /* missing (no -wal yet) or not ours to change: the API answers from memory */
    }
  }
}

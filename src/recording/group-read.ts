/**
 * Let one group read a recording: the service's API process (an unprivileged
 * user) answers range queries from the file the root monitor writes.
 *
 * SQLite gives the -wal and -shm files it creates the owner and mode of the
 * database file, so setting them on the database is enough for files made
 * later; those that exist already are set here too. A reader with read
 * permission only can still read a WAL database (SQLite opens the -shm
 * read-only).
 *
 * Each file is opened without following a symlink and changed through its
 * descriptor, and only a regular file this process owns is changed: a link
 * planted in the recording's folder (`dropmon.db-wal -> /etc/shadow`) is left
 * alone. Nothing here fails the recording: a file system without ownership
 * just keeps the API from reading it, and the API then answers from memory.
 */
import { closeSync, constants, fchmodSync, fchownSync, fstatSync, openSync } from 'node:fs';

export function shareWithGroup(file: string, gid: number): void {
  const me = process.getuid?.() ?? -1;
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    let fd: number;
    try {
      fd = openSync(f, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
    } catch {
      continue; // missing (no -wal yet), a symlink, or not ours to open
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile() || st.uid !== me) continue;
      if (st.gid !== gid) fchownSync(fd, st.uid, gid);
      // Owner's bits kept; the group reads; others nothing.
      const mode = (st.mode & 0o700) | 0o040;
      if ((st.mode & 0o777) !== mode) fchmodSync(fd, mode);
    } catch {
      /* no ownership on this file system: the API answers from memory */
    } finally {
      closeSync(fd);
    }
  }
}

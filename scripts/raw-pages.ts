/**
 * The fixture-capture scripts' one way of saving an instance's raw ring-buffer
 * pages: every CPU's trace_pipe_raw read without blocking, each page written
 * whole (a short read padded with zeros), as the decoder tests read them back.
 */
import { closeSync, constants, openSync, readSync, writeFileSync } from 'node:fs';
import type { TracefsInstance } from '../src/sources/tracefs/instance.js';

/** Save every buffered page of `inst` to `file`; returns how many. */
export function drainRawPages(inst: TracefsInstance, file: string): number {
  const fd = openSync(file, 'w');
  let pages = 0;
  const buf = Buffer.alloc(4096);
  for (const cpu of inst.cpus()) {
    const rfd = openSync(inst.path(`per_cpu/cpu${cpu}/trace_pipe_raw`), constants.O_RDONLY | constants.O_NONBLOCK);
    for (;;) {
      let n: number;
      try {
        n = readSync(rfd, buf, 0, 4096, null);
      } catch {
        break;
      }
      if (n <= 0) break;
      buf.fill(0, n); // a short read is padded to a whole page in the file
      require4k(n);
      writeFileSync(fd, buf);
      pages++;
    }
    closeSync(rfd);
  }
  closeSync(fd);
  return pages;
}
function require4k(n: number) {
  if (n > 4096) throw new Error('page larger than 4 KiB');
}

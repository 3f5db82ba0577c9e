/**
 * Small files that hold a secret (the service's API token): created and read
 * so that whoever can write into their folder cannot make root follow a
 * symlink to another file, hang on a FIFO, or use a secret that others could
 * read or replace.
 *
 * - created with O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600: never an existing file,
 *   never through a symlink;
 * - opened with O_NOFOLLOW|O_NONBLOCK (a symlink fails with ELOOP; a FIFO does
 *   not block), then checked on the open descriptor (fstat, so nothing can be
 *   swapped between the check and the read): a regular file, owned by this
 *   process's user, with no permission for group or others.
 */
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { DropmonError } from '../core/errors.js';

/** Larger than any token; a bigger file is not one of ours. */
const MAX_BYTES = 4096;

export type PrivateFileProblem = 'missing' | 'symlink' | 'not-a-file' | 'owner' | 'mode';

/** A private file that cannot be used, with what is wrong in the operator's words. */
export class PrivateFileError extends DropmonError {
  constructor(
    readonly path: string,
    readonly problem: PrivateFileProblem,
    message: string,
    hint?: string,
  ) {
    super(message, hint);
  }
}

function euid(): number {
  return process.geteuid?.() ?? 0;
}

function check(fd: number, path: string): void {
  const st = fstatSync(fd);
  if (!st.isFile()) throw new PrivateFileError(path, 'not-a-file', `${path} is not a regular file`, 'remove it; dropmon writes a new one');
  if (st.uid !== euid()) throw new PrivateFileError(path, 'owner', `${path} belongs to uid ${st.uid}, not to uid ${euid()} that runs dropmon`, `remove it or chown it to uid ${euid()}`);
  if ((st.mode & 0o077) !== 0) throw new PrivateFileError(path, 'mode', `${path} can be read or written by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')})`, `chmod 600 ${path}, or remove it and let dropmon write a new one`);
}

function openError(err: unknown, path: string): never {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') throw new PrivateFileError(path, 'missing', `${path} does not exist`);
  if (code === 'ELOOP') throw new PrivateFileError(path, 'symlink', `${path} is a symbolic link: dropmon does not follow one to its secret`, 'remove the link; dropmon writes a new file');
  throw new DropmonError(`cannot open ${path}: ${(err as Error).message}`);
}

function readAll(fd: number): string {
  const buf = Buffer.alloc(MAX_BYTES + 1);
  let n = 0;
  for (;;) {
    const got = readSync(fd, buf, n, buf.length - n, n);
    if (got === 0) break;
    n += got;
    if (n > MAX_BYTES) break;
  }
  return buf.subarray(0, Math.min(n, MAX_BYTES)).toString('utf8');
}

/**
 * The content of a private file; throws PrivateFileError (problem "missing"
 * when it does not exist) or DropmonError.
 */
export function readPrivateFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    openError(err, path);
  }
  try {
    check(fd, path);
    return readAll(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Create `path` with `content`, mode 0600. Returns false when something is
 * already there (a file, a symlink, anything): it is never opened, replaced or
 * followed here.
 */
export function createPrivateFile(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DropmonError(`cannot create ${path}: ${(err as Error).message}`);
  }
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Read a private file, or, when it exists but is empty (a crash between its
 * creation and its first write), fill it with `content()`; checked as
 * readPrivateFile checks. Returns what the file holds afterwards.
 */
export function readOrFillPrivateFile(path: string, content: () => string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    openError(err, path);
  }
  try {
    check(fd, path);
    const text = readAll(fd);
    if (text.trim() !== '') return text;
    const fresh = content();
    ftruncateSync(fd, 0);
    writeSync(fd, fresh, 0);
    fsyncSync(fd);
    return fresh;
  } finally {
    closeSync(fd);
  }
}

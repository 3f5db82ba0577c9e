/**
 * The C library through koffi, loaded once for every native caller (netlink
 * sockets, setns, ethtool ioctls, bpf). koffi is a maintained FFI whose npm
 * package ships prebuilt binaries, so nothing is compiled on the user's host.
 */
import { createRequire } from 'node:module';
import { DropmonError } from '../core/errors.js';

export type Koffi = typeof import('koffi');

export interface Libc {
  readonly koffi: Koffi;
  /** libc.so.6, to declare functions with `lib.func('int close(int)')`. */
  readonly lib: ReturnType<Koffi['load']>;
  /** errno of the last call made through koffi on this thread. */
  errno(): number;
}

let loaded: Libc | undefined;

/** Load libc; `purpose` names what is unavailable if koffi cannot be loaded ("netlink"). */
export function loadLibc(purpose: string): Libc {
  if (loaded) return loaded;
  let koffi: Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as Koffi;
  } catch (err) {
    throw new DropmonError(`${purpose} is unavailable: the koffi module cannot be loaded (${(err as Error).message})`, 'reinstall dropmon: npm ci');
  }
  loaded = { koffi, lib: koffi.load('libc.so.6'), errno: () => koffi.errno() };
  return loaded;
}

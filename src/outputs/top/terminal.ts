/**
 * The terminal of a full-screen view: raw keys, the alternate screen, a
 * hidden cursor; and putting all of it back, once, on every way out (the
 * command registers `restore` with the process lifecycle, so q, Ctrl-C,
 * SIGTERM, SIGHUP and an internal error all leave the shell as it was).
 */
import { emitKeypressEvents } from 'node:readline';
import type { ReadStream, WriteStream } from 'node:tty';
import ansiEscapes from 'ansi-escapes';
import type { TopKey } from './app.js';

export interface FullScreen {
  readonly columns: number;
  readonly rows: number;
  write(text: string): void;
  onKey(handler: (str: string | undefined, key: TopKey | undefined) => void): void;
  onResize(handler: () => void): void;
  /** Leave the screen as it was found; safe to call more than once, from exit handlers too. */
  restore(): void;
}

/**
 * Colours unless NO_COLOR is set (any non-empty value, no-color.org), the
 * terminal has none (TERM=dumb, monochrome terminfo), or the operator asked
 * for monochrome.
 */
export function useColor(out: WriteStream, env: NodeJS.ProcessEnv, monochrome: boolean): boolean {
  if (monochrome || (env.NO_COLOR !== undefined && env.NO_COLOR !== '')) return false;
  return out.hasColors?.(env) ?? false;
}

/** Block characters for sparklines where the locale is UTF-8; ASCII elsewhere. */
export function useUnicode(env: NodeJS.ProcessEnv): boolean {
  const lang = env.LC_ALL || env.LC_CTYPE || env.LANG || '';
  return /utf-?8/i.test(lang);
}

export function openFullScreen(input: ReadStream, output: WriteStream): FullScreen {
  let restored = false;
  const write = (t: string) => {
    if (!restored) output.write(t);
  };
  emitKeypressEvents(input);
  input.setRawMode(true);
  input.resume();
  output.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorHide + ansiEscapes.eraseScreen);
  const keyHandlers: Array<(s: string | undefined, k: TopKey | undefined) => void> = [];
  const resizeHandlers: Array<() => void> = [];
  const onKey = (s: string | undefined, k: TopKey | undefined) => {
    for (const h of keyHandlers) h(s, k);
  };
  const onResize = () => {
    for (const h of resizeHandlers) h();
  };
  input.on('keypress', onKey);
  output.on('resize', onResize);
  return {
    get columns() {
      return output.columns || 80;
    },
    get rows() {
      return output.rows || 24;
    },
    write,
    onKey: (h) => keyHandlers.push(h),
    onResize: (h) => resizeHandlers.push(h),
    restore() {
      if (restored) return;
      restored = true;
      input.off('keypress', onKey);
      output.off('resize', onResize);
      try {
        input.setRawMode(false);
      } catch {
        /* the terminal is gone (hang-up): nothing to restore */
      }
      input.pause();
      // Synchronous: this runs from exit handlers, where an asynchronous write would be lost.
      try {
        output.write('\x1b[0m' + ansiEscapes.cursorShow + ansiEscapes.exitAlternativeScreen);
      } catch {
        /* as above */
      }
    },
  };
}

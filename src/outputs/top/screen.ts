/**
 * A diffing renderer for full-screen views: the view hands in a whole frame
 * (lines of styled text); the screen compares it cell by cell with the frame
 * on the terminal and writes only the runs of cells that changed, so a
 * refresh where nothing changed writes nothing and a changing number costs a
 * cursor move and a few bytes. No flicker: nothing is ever cleared and
 * redrawn, except once after a resize (the terminal reflowed its content).
 *
 * Every character handed in must be one column wide: views pass external
 * text through `printable()`.
 */
import ansiEscapes from 'ansi-escapes';

/** Attributes and a foreground colour packed in a number: attrs | colour << 4. */
export type Style = number;
export const BOLD = 1;
export const DIM = 2;
export const REVERSE = 4;
export const UNDERLINE = 8;
export const RED = 1 << 4;
export const GREEN = 2 << 4;
export const YELLOW = 3 << 4;
export const BLUE = 4 << 4;
export const MAGENTA = 5 << 4;
export const CYAN = 6 << 4;

export interface Segment {
  readonly text: string;
  readonly style?: Style;
}
export type Line = readonly Segment[];

/** Unchanged cells between two changed runs rewritten rather than skipped with a cursor move (a move costs ~8 bytes). */
const GAP = 6;

/** External text made safe for one-column cells: control and non-ASCII characters become '?'. */
export function printable(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?');
}

function sgr(style: Style, color: boolean): string {
  const codes = ['0'];
  if (style & BOLD) codes.push('1');
  if (style & DIM) codes.push('2');
  if (style & UNDERLINE) codes.push('4');
  if (style & REVERSE) codes.push('7');
  const fg = style >> 4;
  if (color && fg) codes.push(String(30 + fg));
  return `\x1b[${codes.join(';')}m`;
}

export class Screen {
  private chars: string[] = [];
  private styles: Style[] = [];
  private width = 0;
  private height = 0;
  private bytes = 0;

  constructor(
    private readonly write: (text: string) => void,
    /** Colours on; without them (NO_COLOR, monochrome terminals) only attributes are used. */
    readonly color: boolean,
  ) {}

  /** Bytes written so far (the flicker benchmark counts them per refresh). */
  get written(): number {
    return this.bytes;
  }

  /** Forget what is on the terminal: the next draw clears and writes everything. */
  invalidate(): void {
    this.width = 0;
    this.height = 0;
  }

  /** Draw a frame of `width` x `height` cells; returns the bytes written. */
  draw(lines: readonly Line[], width: number, height: number): number {
    const w = Math.max(1, width);
    const h = Math.max(1, height);
    const chars = new Array<string>(w * h).fill(' ');
    const styles = new Array<Style>(w * h).fill(0);
    for (let y = 0; y < h && y < lines.length; y++) {
      let x = 0;
      for (const seg of lines[y]) {
        const st = seg.style ?? 0;
        for (const ch of seg.text) {
          if (x >= w) break;
          chars[y * w + x] = ch;
          styles[y * w + x] = st;
          x++;
        }
      }
    }
    // The bottom-right cell is never written: some terminals scroll when it is.
    chars[w * h - 1] = ' ';
    styles[w * h - 1] = 0;
    const full = w !== this.width || h !== this.height;
    let out = full ? sgr(0, this.color) + ansiEscapes.eraseScreen : '';
    let cur: Style = 0;
    let cx = -1;
    let cy = -1;
    for (let y = 0; y < h; y++) {
      let x = 0;
      while (x < w) {
        const i = y * w + x;
        const changed = full ? chars[i] !== ' ' || styles[i] !== 0 : chars[i] !== this.chars[i] || styles[i] !== this.styles[i];
        if (!changed) {
          x++;
          continue;
        }
        // A run: from here to the last changed cell with no gap longer than GAP.
        let end = x;
        let gap = 0;
        for (let k = x; k < w && gap <= GAP; k++) {
          const j = y * w + k;
          const c = full ? chars[j] !== ' ' || styles[j] !== 0 : chars[j] !== this.chars[j] || styles[j] !== this.styles[j];
          if (c) {
            end = k;
            gap = 0;
          } else gap++;
        }
        if (cx !== x || cy !== y) out += ansiEscapes.cursorTo(x, y);
        for (let k = x; k <= end; k++) {
          const j = y * w + k;
          if (styles[j] !== cur) {
            cur = styles[j];
            out += sgr(cur, this.color);
          }
          out += chars[j];
        }
        x = end + 1;
        cx = x < w ? x : -1;
        cy = y;
      }
    }
    if (cur !== 0) out += sgr(0, this.color);
    this.chars = chars;
    this.styles = styles;
    this.width = w;
    this.height = h;
    if (out) {
      this.write(out);
      this.bytes += Buffer.byteLength(out);
    }
    return Buffer.byteLength(out);
  }
}

/** Numbers, sparklines and wrapped text in the few columns a terminal table has. */

/** 0, 0.4, 12.3, 1234, 12.3k, 123k, 1.6M: at most 6 characters. */
export function shortRate(x: number): string {
  if (!Number.isFinite(x) || x <= 0) return '0';
  if (x < 10) return x.toFixed(1).replace(/\.0$/, '');
  if (x < 10_000) return String(Math.round(x));
  if (x < 999_500) return `${(x / 1000).toFixed(x < 99_950 ? 1 : 0)}k`;
  if (x < 999_500_000) return `${(x / 1e6).toFixed(x < 99_950_000 ? 1 : 0)}M`;
  return `${(x / 1e9).toFixed(1)}G`;
}

/** Whole numbers up to 7 digits as they are, then 12.3M: at most 7 characters. */
export function shortCount(x: number): string {
  if (!Number.isFinite(x) || x <= 0) return '0';
  if (x < 10_000_000) return String(Math.round(x));
  if (x < 1e9) return `${(x / 1e6).toFixed(1)}M`;
  if (x < 1e12) return `${(x / 1e9).toFixed(1)}G`;
  return `${(x / 1e12).toFixed(1)}T`;
}

const BLOCKS = ' ▁▂▃▄▅▆▇█';
const ASCII = ' .:-=+*#%@';

/**
 * A sparkline of `values` (oldest first) in `width` cells: each cell the
 * highest value of its share of the window, scaled to the highest of all.
 * A cell is blank only when its values are all zero.
 */
export function sparkline(values: readonly number[], width: number, unicode: boolean): string {
  if (width <= 0) return '';
  const steps = unicode ? BLOCKS : ASCII;
  const cells: number[] = [];
  const n = values.length;
  for (let c = 0; c < width; c++) {
    const from = Math.floor((c * n) / width);
    const to = Math.max(from + 1, Math.floor(((c + 1) * n) / width));
    let m = 0;
    for (let i = from; i < to && i < n; i++) m = Math.max(m, values[i]);
    cells.push(m);
  }
  const max = Math.max(...cells);
  if (!(max > 0)) return ' '.repeat(width);
  return cells.map((v) => (v > 0 ? steps[Math.max(1, Math.round((v / max) * (steps.length - 1)))] : ' ')).join('');
}

/** Cut to `w` characters, with '~' marking the cut; pad to `w`. */
export function fit(s: string, w: number, right = false): string {
  if (w <= 0) return '';
  const t = s.length > w ? (w > 1 ? s.slice(0, w - 1) + '~' : s.slice(0, w)) : s;
  return right ? t.padStart(w) : t.padEnd(w);
}

/** Words wrapped at `width`, continuation lines indented by `indent` spaces. */
export function wrap(text: string, width: number, indent = 0): string[] {
  const out: string[] = [];
  const w = Math.max(10, width);
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const pre = out.length ? ' '.repeat(indent) : '';
    if (line && (pre + line + ' ' + word).length > w) {
      out.push(pre + line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
    while ((out.length ? indent : 0) + line.length > w) {
      const room = w - (out.length ? indent : 0);
      out.push((out.length ? ' '.repeat(indent) : '') + line.slice(0, room));
      line = line.slice(room);
    }
  }
  if (line || out.length === 0) out.push((out.length ? ' '.repeat(indent) : '') + line);
  return out;
}

export function clock(ms: number): string {
  if (!ms) return '--:--:--';
  const d = new Date(ms);
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
}

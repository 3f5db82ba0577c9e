/**
 * Text for a terminal from strings dropmon does not control: symbol names,
 * interface, namespace and process names, trap and nft names come from the
 * kernel or from a recording, and a terminal obeys the control characters in
 * them (ESC sequences retitle the window, move the cursor, rewrite what was
 * printed; CR overwrites a line; C1 codes act like ESC on some terminals).
 *
 * Text outputs pass what they print through `terminalSafe` once, where the
 * text leaves them: every control character but the newline and the tab
 * they lay out with becomes a visible escape (`\x1b`, `\x9b`, `\u202e`);
 * printable unicode stays as it is. The outputs add no control codes of
 * their own (the full-screen `top` styles its cells apart, outputs/top).
 */

/**
 * C0 controls but TAB and LF, DEL, C1 controls, and the invisible marks that
 * reorder or hide text (bidi embeddings, overrides and isolates, line and
 * paragraph separators).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

function escaped(c: string): string {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
}

/** `text` with every control character written as a visible escape (newlines and tabs kept). */
export function terminalSafe(text: string): string {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text) ? text.replace(CONTROL, escaped) : text;
}

/** The raw control characters `terminalSafe` removes, for checks: true when `text` has one. */
export function hasTerminalControls(text: string): boolean {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text);
}

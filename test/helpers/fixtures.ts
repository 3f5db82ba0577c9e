/** Access to test/fixtures from the compiled tests (dist/test/...). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from './dropgen.js';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage } from '../../src/sources/tracefs/format.js';

export const FIXTURES = join(PROJECT_ROOT, 'test', 'fixtures');

export function fixture(rel: string): Buffer {
  return readFileSync(join(FIXTURES, rel));
}

export function fixtureText(rel: string): string {
  return fixture(rel).toString('latin1');
}

export function kernelLayout(version: string) {
  return {
    kfree: parseEventFormat(fixtureText(`kernel-${version}/kfree_skb.format`)),
    page: parseHeaderPage(fixtureText(`kernel-${version}/header_page`)),
    header: parseHeaderEvent(fixtureText(`kernel-${version}/header_event`)),
  };
}

/** A Uint32Array over a copy of `buf` (aligned, own ArrayBuffer). */
export function words(buf: Uint8Array): Uint32Array {
  const ab = new ArrayBuffer(Math.ceil(buf.length / 4) * 4);
  new Uint8Array(ab).set(buf);
  return new Uint32Array(ab);
}

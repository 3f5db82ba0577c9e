/**
 * Every drop source dropmon can run: one line each.
 *
 * The order is the one in which `--source auto` asks whether the options
 * given need a source. When options of several are given (they contradict),
 * the first is chosen and the others refuse their options, so the user is
 * told which option needs which source. Where no option decides, `auto`
 * tries the sources by each one's own rank (`auto.rank`).
 */
import { bpfProvider } from './bpf/provider.js';
import { netdmProvider } from './netdm/provider.js';
import type { SourceProvider } from './plan.js';
import { tracefsProvider } from './tracefs/provider.js';

export const SOURCE_PROVIDERS: readonly SourceProvider[] = [
  tracefsProvider,
  netdmProvider,
  bpfProvider,
];


/**
 * Which drop reasons of the running kernel the knowledge base lacks.
 *
 *   npm run check:reasons                 list them (exit 1 when there are some)
 *   npm run check:reasons -- --pin DIR    also pin this kernel's table as a fixture
 *                                         (DIR/kfree_skb.format), so the test suite
 *                                         checks the knowledge base against it
 *
 * Kernels add reasons every release. The test suite never fails because the
 * host got a newer kernel: it checks completeness against pinned tables
 * (test/fixtures/kernel-*) and only reports the running kernel's extras, which
 * dropmon explains generically until kb/reasons.yaml describes them. This is
 * the check a developer runs to find them, and to pin the new table once the
 * entries are written.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { loadKnowledge } from '../src/knowledge/load.js';
import { parseEventFormat } from '../src/sources/tracefs/format.js';
import { vmlinuxBtf } from '../src/sources/bpf/availability.js';

const FORMAT = '/sys/kernel/tracing/events/skb/kfree_skb/format';
const USAGE = 'usage: check-reasons [--pin DIR]\n';

function kernelReasons(): { names: string[]; from: string } {
  if (existsSync(FORMAT)) {
    const table = parseEventFormat(readFileSync(FORMAT, 'latin1')).symbolic.get('reason');
    if (table) return { names: [...table.values()].filter((n) => n !== 'MAX'), from: FORMAT };
  }
  // Without tracefs (not root, not mounted), the kernel's BTF has the same enum.
  const names = [...vmlinuxBtf().enumValues('skb_drop_reason')]
    .map(([n]) => n.replace(/^SKB_DROP_REASON_/, ''))
    .filter((n) => n !== 'MAX' && !n.startsWith('SUBSYS_'));
  return { names, from: 'the kernel BTF' };
}

function main(argv: string[]): number {
  let pin: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--pin' && argv[i + 1]) pin = argv[++i];
    else if (argv[i] === '-h' || argv[i] === '--help') {
      process.stdout.write(USAGE);
      return 0;
    } else {
      process.stderr.write(`check-reasons: unknown argument ${JSON.stringify(argv[i])}\n${USAGE}`);
      return 2;
    }
  }
  let reasons: { names: string[]; from: string };
  try {
    reasons = kernelReasons();
  } catch (e) {
    process.stderr.write(`check-reasons: cannot read this kernel's drop reasons: ${(e as Error).message}\n`);
    return 2;
  }
  const kb = loadKnowledge();
  const missing = reasons.names.filter((n) => !kb.reason(n));
  process.stdout.write(`Linux ${release()}: ${reasons.names.length} drop reasons (from ${reasons.from})\n`);
  if (missing.length) {
    process.stdout.write(`not in kb/reasons.yaml (${missing.length}): ${missing.join(', ')}\n`);
    process.stdout.write('dropmon explains them generically; add entries (kb/README.md), then pin this table with --pin\n');
  } else process.stdout.write('every reason has an entry in kb/reasons.yaml\n');
  if (pin) {
    if (!existsSync(FORMAT)) {
      process.stderr.write(`check-reasons: --pin needs ${FORMAT} (root, tracefs)\n`);
      return 2;
    }
    mkdirSync(pin, { recursive: true });
    copyFileSync(FORMAT, join(pin, 'kfree_skb.format'));
    process.stdout.write(`pinned ${join(pin, 'kfree_skb.format')}\n`);
  }
  return missing.length ? 1 : 0;
}

process.exitCode = main(process.argv.slice(2));

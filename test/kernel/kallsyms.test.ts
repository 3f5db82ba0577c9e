import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { KallsymsTable, Symbolizer, formatSymbol } from '../../src/kernel/kallsyms.js';
import { ParseError } from '../../src/core/errors.js';

const TEXT = [
  'ffffffff81000000 T _stext',
  'ffffffff81a00000 t __udp4_lib_rcv',
  'ffffffff81a00800 T udp_rcv',
  'ffffffff81900000 T early_fn', // out of order on purpose
  'ffffffff81a00800 T udp_rcv_alias', // same address: the first listed wins
  'ffffffff82000000 D some_data', // data symbols are ignored
  'ffffffffc0001000 t nft_do_chain\t[nf_tables]',
  'ffffffffc0001400 t nft_other\t[nf_tables]',
  'ffffffffc0002000 t dup\t[mod_a]',
  'ffffffffc0003000 t dup\t[mod_b]',
  '',
].join('\n');

test('lookup: symbol, offset, size, module; unsorted input', () => {
  const t = KallsymsTable.parse(TEXT);
  const s = t.lookup(0xffffffff81a004bcn)!;
  assert.deepEqual(s, { name: '__udp4_lib_rcv', offset: 0x4bcn, size: 0x800n });
  assert.equal(formatSymbol(s, 0n), '__udp4_lib_rcv+0x4bc/0x800');
  assert.equal(t.lookup(0xffffffff81900010n)!.name, 'early_fn');
  assert.equal(t.lookup(0xffffffff81a00800n)!.name, 'udp_rcv');
  const m = t.lookup(0xffffffffc0001010n)!;
  assert.equal(formatSymbol(m, 0n), 'nft_do_chain+0x10/0x400 [nf_tables]');
  assert.equal(t.lookup(0xffffffff80000000n), undefined);
  assert.equal(formatSymbol(undefined, 0xffffffff80000000n), '0xffffffff80000000');
});

test('duplicate names: every range is found', () => {
  const t = KallsymsTable.parse(TEXT);
  assert.deepEqual(t.ranges('dup').map(([a]) => a), [0xffffffffc0002000n, 0xffffffffc0003000n]);
  assert.equal(t.lookup(0xffffffffc0003004n)!.module, 'mod_b');
});

test('kptr_restrict: all-zero addresses are detected as hidden', () => {
  const t = KallsymsTable.parse('0000000000000000 T _stext\n0000000000000000 t foo\n');
  assert.equal(t.hidden, true);
  assert.equal(t.lookup(0xffffffff81000000n), undefined);
});

test('malformed line: ParseError naming the line', () => {
  assert.throws(() => KallsymsTable.parse('ffffffff81000000 T ok\nnot a symbol line\n'), (e: unknown) => e instanceof ParseError && /line 2/.test(e.message));
});

test('symbolizer: no table yet means no symbol (and nothing cached); then symbols', () => {
  const s = new Symbolizer();
  assert.equal(s.lookup(0xffffffff81a00001n), undefined);
  s.setTable(KallsymsTable.parse(TEXT));
  assert.equal(s.lookup(0xffffffff81a00001n)?.name, '__udp4_lib_rcv');
});

test('the running kernel: /proc/kallsyms parses and symbolizes its own text', { skip: process.getuid?.() !== 0 ? 'not root: kallsyms addresses are hidden' : false }, () => {
  const t = KallsymsTable.load();
  assert.ok(t.length > 1000);
  const r = t.ranges('kfree_skb_reason').concat(t.ranges('sk_skb_reason_drop'), t.ranges('__netif_receive_skb_core'));
  assert.ok(r.length > 0, 'well-known functions are present');
});

test('kallsyms parser: random lines, and valid tables look up consistently', () => {
  const line = fc.oneof(
    fc.string({ maxLength: 60 }),
    fc.tuple(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom('t', 'T', 'd', 'W', 'b'), fc.stringMatching(/^[a-z_][a-z0-9_.]{0,20}$/), fc.option(fc.stringMatching(/^[a-z_]{1,8}$/)))
      .map(([a, t, n, m]) => `${a.toString(16).padStart(16, '0')} ${t} ${n}${m ? `\t[${m}]` : ''}`),
  );
  fc.assert(
    fc.property(fc.array(line, { maxLength: 50 }), fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), (lines, addr) => {
      try {
        const t = KallsymsTable.parse(lines.join('\n'));
        const s = t.lookup(addr);
        if (s) assert.ok(s.offset >= 0n && (s.size === 0n || s.offset < s.size));
      } catch (e) {
        if (!(e instanceof ParseError)) throw e;
      }
    }),
    { numRuns: Number(process.env.DROPMON_FUZZ_RUNS ?? 2000) },
  );
});

/**
 * Recording NET_DM packet mode: packet summaries (reason, interface, decoded
 * headers), bounded per interval with the rest counted. Runs where the kernel
 * has NET_DM: on a host without it, in Debian's kernels under qemu
 * (test/vm/kernels.test.ts, entry "netdm-record" of test/vm/guest-plan.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openRecording } from '../../src/recording/recording.js';
import { runDropgen } from '../helpers/dropgen.js';
import { netdmPresent } from '../helpers/env.js';
import { Cli } from './cli.js';

const root = process.getuid?.() === 0;
const netdm = root && netdmPresent();
const HERE_SKIP = !root ? 'not root' : !netdm ? 'this kernel has no NET_DM family (test/vm/kernels.test.ts runs it in Debian kernels under qemu)' : false;

test('record --source netdm --mode packet: summaries of dropped packets, bounded per interval', { skip: HERE_SKIP }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dropmon-netdm-rec-'));
  try {
    const file = join(dir, 'packets.db');
    // One long interval, so the 30 packets meet the bound of 10.
    const rec = new Cli(['record', '-o', file, '--source', 'netdm', '--mode', 'packet', '--interval', '30', '--max-packets', '10']);
    try {
      // Under qemu without KVM, loading node and its modules over 9p can take long.
      await rec.ready(180_000);
      assert.equal(runDropgen(['-m', 'noport', '-n', '30', '-p', '9']).sent, 30);
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      const t0 = Date.now();
      const code = await rec.stop(60_000);
      assert.equal(code, 0, `exit ${code} after ${Date.now() - t0} ms; stderr: ${rec.stderr}`);
    }
    const r = openRecording(file);
    try {
      const t = r.totals();
      assert.ok(t.packetsSeen >= 30, `packets seen ${t.packetsSeen}`);
      assert.ok(t.packetsKept <= 10 * t.intervals && t.packetsKept >= 1, `kept ${t.packetsKept} in ${t.intervals} interval(s)`);
      const pk = r.packets(undefined, 1000).filter((p) => p.dport === 9 && p.l4 === 'udp');
      assert.ok(pk.length >= 1);
      assert.equal(pk[0].reason, 'NO_SOCKET');
      assert.equal(pk[0].src, '127.0.0.1');
      assert.equal(pk[0].dst, '127.0.0.1');
      assert.equal(pk[0].ifindex, 1);
      assert.match(pk[0].symbol ?? '', /__udp4_lib_rcv/);
      assert.equal(r.meta().source, 'netdm');
    } finally {
      r.close();
    }
    const report = new Cli(['report', file]);
    assert.equal(await report.done, 0, report.stderr);
    assert.match(report.stdout, /dropped packets seen \(\d+ summaries kept\)/);
    assert.match(report.stdout, /Dropped packets \(first \d+\)\n.*NO_SOCKET at __udp4_lib_rcv.* udp 127\.0\.0\.1:\d+ > 127\.0\.0\.1:9/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

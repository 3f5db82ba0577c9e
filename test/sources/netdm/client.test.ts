/** Every NET_DM error of the kernel gets one line that says what to do. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explain, netdmAbsentReason } from '../../../src/sources/netdm/client.js';
import { NetlinkError } from '../../../src/kernel/netlink/socket.js';

const CASES: Array<[number, string | undefined, RegExp, RegExp | undefined]> = [
  [1, undefined, /permission denied/, /CAP_NET_ADMIN/],
  [16, 'drop_monitor: Cannot configure drop monitor during monitoring', /cannot be configured.*kernel: drop_monitor/, /--force/],
  [11, 'drop_monitor: Trace state already set to requested state', /already in that state/, undefined],
  [95, 'drop_monitor: Failed to connect probe to devlink_trap_probe() tracepoint', /not supported/, /CONFIG_NET_DEVLINK/],
  [115, 'drop_monitor: Failed to connect probe to kfree_skb() tracepoint', /could not attach its drop probes/, /dmesg/],
  [19, 'drop_monitor: Failed to take reference on module', /could not attach/, /dmesg/],
  [22, 'drop_monitor: Invalid alert mode', /rejected the request.*Invalid alert mode/, /report it/],
  [524, undefined, /predates configuration/, /summary mode/],
];

for (const [errno, extack, message, hint] of CASES) {
  test(`errno ${errno}: one line with the kernel's words and what to do`, () => {
    const e = explain(new NetlinkError('x', errno, extack), 'starting NET_DM');
    assert.match(e.message, message);
    assert.ok(!e.message.includes('\n'), 'one line');
    if (hint) assert.match(e.hint ?? '', hint);
  });
}

test('absent family: module or namespace, said plainly', () => {
  assert.match(netdmAbsentReason(), /drop_monitor|initial network namespace/);
});

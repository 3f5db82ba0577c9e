/** Filters: reasons by name or number, protocols, location ranges. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { matches, resolveReasons } from '../../src/core/filter.js';
import { parseProtocol, type DropSample } from '../../src/core/drop.js';

const sample = (location: bigint, count: number, reason = 3, protocol = 0x0800): DropSample => ({
  location, reason, reasonName: reason === 3 ? 'NO_SOCKET' : 'X', protocol, origin: 'software', count,
});

test('filters: reasons by name, protocols, location ranges', () => {
  const table = new Map([[3, 'NO_SOCKET'], [6, 'SOCKET_RCVBUFF']]);
  assert.deepEqual(resolveReasons(['no_socket', 'SKB_DROP_REASON_SOCKET_RCVBUFF', '3'], table), [3, 6]);
  assert.throws(() => resolveReasons(['SOCKET'], table), /did you mean NO_SOCKET, SOCKET_RCVBUFF/);
  assert.equal(parseProtocol('ipv6'), 0x86dd);
  assert.equal(parseProtocol('0x88b5'), 0x88b5);
  assert.equal(parseProtocol('nope'), undefined);
  const s = sample(0xffffffff81000010n, 1);
  assert.equal(matches({ reasons: [3], protocols: [0x0800], locations: [[0xffffffff81000000n, 0xffffffff81000100n]] }, s), true);
  assert.equal(matches({ reasons: [6] }, s), false);
  assert.equal(matches({ locations: [[0n, 1n]] }, s), false);
});

/**
 * Capture NET_DM messages from a real kernel as test fixtures: a software
 * summary alert, a software packet alert, CONFIG_NEW, STATS_NEW, and the
 * NLMSG_ERROR of a second START (EAGAIN with its extended-ACK text).
 * Run it where the kernel has NET_DM, e.g. in the test VM:
 *   scripts/kernel-vm.sh node dist/scripts/capture-netdm-fixtures.js test/fixtures/netdm-$(uname -r)
 * (with DROPMON_DROPGEN pointing at a built bench/dropgen.c).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { execFileSync } from 'node:child_process';
import { encodeMessage, parseMessages, NLM_F_ACK, NLM_F_REQUEST } from '../src/kernel/netlink/message.js';
import { resolveFamily } from '../src/kernel/netlink/genl.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../src/kernel/netlink/socket.js';
import { configGetRequest, configRequest, startRequest, statsGetRequest, stopRequest } from '../src/sources/netdm/protocol.js';
import { dropgenBinary } from '../test/helpers/dropgen.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: capture-netdm-fixtures OUTDIR\n');
  process.exit(2);
}
mkdirSync(out, { recursive: true });
const ctl = new NetlinkSocket(NETLINK_GENERIC);
const fam = resolveFamily(ctl, 'NET_DM');
if (!fam) throw new Error('no NET_DM here');
const ev = new NetlinkSocket(NETLINK_GENERIC, { groups: [fam.groups.get('events') ?? 1], rcvbuf: 1 << 20 });
const save = (name: string, b: Uint8Array) => writeFileSync(join(out, name), b);

/** Send a raw request; return the raw datagrams of the answer until the ACK/error. */
function raw(payload: Uint8Array): Uint8Array[] {
  const seq = ctl.nextSeq();
  ctl.send(encodeMessage({ type: fam!.id, flags: NLM_F_REQUEST | NLM_F_ACK, seq, pid: 0 }, payload));
  const got: Uint8Array[] = [];
  for (let i = 0; i < 50; i++) {
    const d = ctl.receive();
    if (!d) {
      ctl.waitReadable(100);
      continue;
    }
    const copy = d.slice();
    got.push(copy);
    if (parseMessages(copy).some((m) => m.type === 2)) break;
  }
  return got;
}

function alert(): Uint8Array {
  for (let i = 0; i < 60; i++) {
    const d = ev.receive();
    if (d) return d.slice();
    ev.waitReadable(100);
  }
  throw new Error('no alert came');
}

const sent = { summary: 7, packet: 1 };
try {
  save('config-new.bin', raw(configGetRequest())[0]);
  save('stats-new.bin', raw(statsGetRequest())[0]);
  raw(configRequest({ mode: 'summary' }));
  raw(startRequest({ sw: true, hw: false }));
  save('start-again-eagain.bin', raw(startRequest({ sw: true, hw: false }))[0]);
  execFileSync(dropgenBinary(), ['-m', 'noport', '-n', String(sent.summary)]);
  save('summary-alert.bin', alert());
  raw(stopRequest({ sw: true, hw: false }));
  raw(configRequest({ mode: 'packet', truncLen: 64, queueLen: 1000 }));
  raw(startRequest({ sw: true, hw: false }));
  execFileSync(dropgenBinary(), ['-m', 'noport', '-n', String(sent.packet)]);
  save('packet-alert.bin', alert());
} finally {
  raw(stopRequest({ sw: true, hw: true }));
  raw(configRequest({ mode: 'summary', truncLen: 0, queueLen: 1000 }));
  ev.close();
  ctl.close();
}
writeFileSync(join(out, 'meta.json'), JSON.stringify({ kernel: release(), family: fam.id, sent, traffic: 'UDP to 127.0.0.1:9 (closed), 16-byte payload' }, null, 2) + '\n');
process.stdout.write(`NET_DM fixtures written to ${out}\n`);

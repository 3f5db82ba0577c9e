/**
 * `dropmon netdm status|stats|stop`: look at and reset the kernel's NET_DM
 * state, which is global to the host and outlives the programs that set it.
 */
import { UsageError } from '../core/errors.js';
import { NETDM_OWNER_RECORD, NetdmClient } from '../sources/netdm/client.js';
import { ownerRecords } from '../sources/owner-records.js';
import type { AlertMode } from '../sources/netdm/protocol.js';
import { parseCount, parseCommandArgs } from './args.js';

export const NETDM_HELP = `Usage: dropmon netdm <status|config|stats|stop> [options] [--json]

The kernel's drop monitor (NET_DM, module drop_monitor) is one state per host.
  status   alert mode, truncation, queue length, and whether monitoring is on
  config   print the configuration; with --mode summary|packet, --trunc BYTES,
           --queue N: change it (not while monitoring runs)
  stats    packets NET_DM could not queue in packet mode (tail drops), since load
  stop     stop monitoring left on by a program that died (--sw/--hw: which; default both)
Reading needs no privilege; "monitoring on?", config changes and stop need CAP_NET_ADMIN.
`;

export async function netdmCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs('netdm', argv, {
    json: { type: 'boolean' },
    sw: { type: 'boolean' },
    hw: { type: 'boolean' },
    mode: { type: 'string' },
    trunc: { type: 'string' },
    queue: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  }, true);
  const [action, ...extra] = parsed.positionals;
  if (parsed.values.help || action === undefined) {
    process.stdout.write(NETDM_HELP);
    return action === undefined && !parsed.values.help ? 2 : 0;
  }
  if (extra.length) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`, "see 'dropmon netdm --help'");
  const json = parsed.values.json ?? false;
  const out = (o: Record<string, unknown>, text: string) => process.stdout.write(json ? JSON.stringify(o) + '\n' : text);
  const client = NetdmClient.open();
  try {
    switch (action) {
      case 'status': {
        const c = client.getConfig();
        const on = client.isMonitoring();
        out(
          { family_id: client.family.id, version: client.family.version, mode: c.mode, trunc_len: c.truncLen, queue_len: c.queueLen, monitoring: on ?? null },
          `NET_DM family ${client.family.id} (version ${client.family.version})\n` +
            `alert mode: ${c.mode}\ntruncation length: ${c.truncLen}${c.truncLen === 0 ? ' (whole packets)' : ''}\nqueue length: ${c.queueLen}\n` +
            `monitoring: ${on === undefined ? 'unknown (needs CAP_NET_ADMIN to ask)' : on ? 'on' : 'off'}\n`,
        );
        return 0;
      }
      case 'config': {
        const v = parsed.values;
        if (v.mode !== undefined && v.mode !== 'summary' && v.mode !== 'packet') throw new UsageError('--mode takes summary or packet');
        const trunc = parseCount('--trunc', v.trunc, 0, 65535);
        const queue = parseCount('--queue', v.queue, 1, 1_000_000);
        if (v.mode !== undefined || trunc !== undefined || queue !== undefined)
          client.configure({ ...(v.mode ? { mode: v.mode as AlertMode } : {}), ...(trunc !== undefined ? { truncLen: trunc } : {}), ...(queue !== undefined ? { queueLen: queue } : {}) });
        const c = client.getConfig();
        out({ mode: c.mode, trunc_len: c.truncLen, queue_len: c.queueLen }, `alert mode: ${c.mode}\ntruncation length: ${c.truncLen}\nqueue length: ${c.queueLen}\n`);
        return 0;
      }
      case 'stats': {
        const s = client.getStats();
        out({ sw_tail_dropped: Number(s.swDropped), hw_tail_dropped: Number(s.hwDropped) }, `software tail drops: ${s.swDropped}\nhardware tail drops: ${s.hwDropped}\n`);
        return 0;
      }
      case 'stop': {
        const sw = parsed.values.sw ?? !parsed.values.hw, hw = parsed.values.hw ?? !parsed.values.sw;
        client.stop({ sw, hw });
        // What a dropmon recorded as its monitoring is stopped now: no later start should stop it again (it may be another program's by then).
        const rec = ownerRecords.read(NETDM_OWNER_RECORD);
        if (rec && (sw || rec.detail.sw === false) && (hw || rec.detail.hw !== true)) ownerRecords.remove(NETDM_OWNER_RECORD, rec.owner);
        out({ stopped: { sw, hw } }, `NET_DM monitoring stopped (${[sw ? 'software' : '', hw ? 'hardware' : ''].filter(Boolean).join(' and ')})\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown netdm action ${JSON.stringify(action)}`, "see 'dropmon netdm --help'");
    }
  } finally {
    client.close();
  }
}

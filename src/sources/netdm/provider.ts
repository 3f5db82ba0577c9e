/**
 * The NET_DM source in the source plan. It is never chosen on its own: its
 * summary alerts carry no reason, and NET_DM is one state per host that
 * another tool may be using. Its own options (mode, truncation, queue,
 * force, passive, packet bytes) ask for it.
 */
import { SourceProblem, type SourceProvider, type SourceRequest } from '../plan.js';
import { NetdmDropSource } from './source.js';

/** Options given that only NET_DM has (packet bytes too, unless BPF's per-packet records give them). */
function netdmOptions(r: SourceRequest): boolean {
  const n = r.netdm ?? {};
  return n.mode !== undefined || n.trunc !== undefined || n.queue !== undefined || n.force === true || n.passive === true || (r.packetBytes === true && !r.packets);
}

export const netdmProvider: SourceProvider = {
  name: 'netdm',
  title: 'NET_DM',
  claims: (r) => (netdmOptions(r) ? 'the options given need NET_DM' : undefined),
  // Whether the kernel has NET_DM (and whether another program holds it) is said when it starts.
  unavailable: () => undefined,
  check(r, chosen) {
    if (!chosen && netdmOptions(r)) throw new SourceProblem('needs-netdm', 'the NET_DM settings need the netdm source');
  },
  // Summary alerts are per location, without reasons.
  reportsReasons: (r) => r.netdm?.mode === 'packet',
  perPacket: (r) => r.netdm?.mode === 'packet',
  create: (r, { kernel, warn }) => {
    const n = r.netdm ?? {};
    return new NetdmDropSource({
      ...(n.mode ? { mode: n.mode } : {}),
      origins: { sw: r.software, hw: r.hardware },
      ...(n.trunc !== undefined ? { truncLen: n.trunc } : {}),
      ...(n.queue !== undefined ? { queueLen: n.queue } : {}),
      force: n.force ?? false,
      passive: n.passive ?? false,
      keepRaw: r.packetBytes ?? false,
      reasons: kernel.namer,
      warn,
    });
  },
};

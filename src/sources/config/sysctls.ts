/**
 * The sysctls a diagnosis reads beside the drops: forwarding, reverse-path
 * filtering, conntrack limits, socket buffer and protocol memory limits,
 * neighbour queues. Read from /proc/sys/net synchronously, so that a caller
 * inside another network namespace (src/kernel/setns.ts) reads that
 * namespace's values: /proc/sys/net shows the namespace of the thread that
 * opens a file. Keys are dotted as `sysctl` prints them; an interface name's
 * dots become slashes (net.ipv4.conf.eth0/100.rp_filter), as sysctl writes them.
 */
import { readdirSync, readFileSync } from 'node:fs';

const ROOT = '/proc/sys/';

/** Per-namespace settings read whole (relative to /proc/sys). */
const FIXED = [
  'net/ipv4/ip_forward',
  'net/ipv6/conf/all/forwarding',
  'net/netfilter/nf_conntrack_max',
  'net/netfilter/nf_conntrack_count',
  'net/netfilter/nf_conntrack_buckets',
  'net/netfilter/nf_conntrack_tcp_loose',
  'net/netfilter/nf_conntrack_tcp_be_liberal',
  'net/core/rmem_default',
  'net/core/rmem_max',
  'net/core/wmem_default',
  'net/core/wmem_max',
  'net/core/netdev_max_backlog',
  'net/core/somaxconn',
  'net/ipv4/udp_mem',
  'net/ipv4/tcp_mem',
  'net/ipv4/tcp_rmem',
  'net/ipv4/tcp_syncookies',
  'net/ipv4/tcp_max_syn_backlog',
  'net/ipv4/tcp_ecn',
  'net/ipv4/ip_no_pmtu_disc',
  'net/ipv4/neigh/default/unres_qlen_bytes',
  'net/ipv4/neigh/default/gc_thresh3',
  'net/ipv6/neigh/default/unres_qlen_bytes',
  'net/bridge/bridge-nf-call-iptables',
  'net/bridge/bridge-nf-call-ip6tables',
];

/** Settings read for conf/all, conf/default and every interface. */
const PER_INTERFACE: Readonly<Record<'ipv4' | 'ipv6', readonly string[]>> = {
  ipv4: ['forwarding', 'rp_filter'],
  ipv6: ['forwarding'],
};

/** Interfaces whose settings are read at most (a host with thousands of veths is summarised). */
export const MAX_INTERFACES = 256;

/** /proc/sys/net/ipv4/conf/eth0/rp_filter -> net.ipv4.conf.eth0.rp_filter (eth0.100 -> eth0/100). */
export function sysctlName(relPath: string): string {
  const parts = relPath.split('/');
  const i = parts.indexOf('conf');
  const j = parts.indexOf('neigh');
  const iface = i >= 0 ? i + 1 : j >= 0 ? j + 1 : -1;
  return parts.map((p, k) => (k === iface ? p.replace(/\./g, '/') : p)).join('.');
}

function readValue(relPath: string): string | undefined {
  try {
    return readFileSync(ROOT + relPath, 'utf8').trim().replace(/\s+/g, ' ');
  } catch {
    return undefined; // absent in this kernel or namespace (no conntrack, no bridge module): not an error
  }
}

/** The sysctls of the calling thread's namespace; those that do not exist are left out. */
export function readSysctls(opts: { readonly maxInterfaces?: number } = {}): { values: Record<string, string>; truncated: boolean } {
  const values: Record<string, string> = {};
  const put = (rel: string) => {
    const v = readValue(rel);
    if (v !== undefined) values[sysctlName(rel)] = v;
  };
  for (const rel of FIXED) put(rel);
  let truncated = false;
  for (const family of ['ipv4', 'ipv6'] as const) {
    let names: string[];
    try {
      names = readdirSync(`${ROOT}net/${family}/conf`);
    } catch {
      continue; // IPv6 disabled at boot
    }
    const ifaces = names.filter((n) => n !== 'all' && n !== 'default').sort();
    const max = opts.maxInterfaces ?? MAX_INTERFACES;
    if (ifaces.length > max) truncated = true;
    for (const dev of ['all', 'default', ...ifaces.slice(0, max)]) for (const key of PER_INTERFACE[family]) put(`net/${family}/conf/${dev}/${key}`);
  }
  return { values, truncated };
}

/**
 * Shared wording for outputs: how a drop point's location, reason and
 * protocol are shown. Text and JSON outputs both use it so they agree.
 */
import { NO_REASON, hexAddress, protocolName } from '../core/drop.js';
import type { DropPoint } from '../core/interval.js';
import { formatSymbol, type Symbolizer } from '../kernel/kallsyms.js';
import type { Attribution } from '../core/attribution.js';

export interface DescribedPoint {
  /** "fn+0x4bc" plus " [module]" for module code; the hex address when unknown. */
  readonly where: string;
  /** The kernel's %pS form with the size: "fn+0x4bc/0x6f0 [module]". */
  readonly symbol: string;
  readonly function: string | null;
  readonly offset: number | null;
  readonly module: string | null;
  readonly address: string;
  /** Reason name, "reason 123" for a number the table lacks, "" without reasons. */
  readonly reason: string;
  readonly protocol: string;
  /** Attribution (sources that know it, the BPF source): interface and network namespace. */
  readonly ifindex: number | null;
  readonly ifname: string | null;
  /** Namespace inode number. */
  readonly netns: number | null;
  /** `ip netns` / Docker name, "init" for the initial namespace. */
  readonly netnsName: string | null;
  readonly container: string | null;
  /** Whether this is the initial namespace (text lines leave it out). */
  readonly initNetns: boolean;
}

/**
 * Interface and namespace names of a point (null when unknown or not
 * reported). Without an attribution (callers that keep only numbers) the
 * numbers stay and no name is looked up.
 */
export function describeAttribution(ifindex: number | undefined, netns: number | undefined, attribution: Attribution | undefined) {
  if (netns === undefined || netns === 0) return { ifindex: ifindex || null, ifname: null, netns: null, netnsName: null, container: null, initNetns: false };
  const info = attribution?.netns(netns);
  return {
    ifindex: ifindex || null,
    ifname: ifindex ? (attribution?.ifname(netns, ifindex) ?? null) : null,
    netns,
    netnsName: info?.name ?? null,
    container: info?.container ?? null,
    initNetns: attribution !== undefined && netns === attribution.initInode,
  };
}

/** " dev veth0 netns ns1 (docker 3f2a1b0c9d8e)": attribution for text lines; "" when none. */
export function attributionText(d: Pick<DescribedPoint, 'ifindex' | 'ifname' | 'netns' | 'netnsName' | 'container' | 'initNetns'>): string {
  let t = '';
  if (d.ifindex !== null) t += ` dev ${d.ifname ?? `ifindex ${d.ifindex}`}`;
  if (d.netns !== null && !d.initNetns) t += ` netns ${d.netnsName ?? d.netns}`;
  if (d.container) t += ` (${d.container})`;
  return t;
}

/**
 * " l2_drops type drop action trap dev eth1 devlink pci/0000:03:00.0": what a
 * hardware line adds after "[hardware]", each part only when known. The group
 * comes first, where dropwatch and NET_DM lines have had it.
 */
export function trapText(p: DropPoint, d: Pick<DescribedPoint, 'ifindex' | 'ifname' | 'netns' | 'netnsName' | 'container' | 'initNetns'>): string {
  const t = p.trap;
  if (!t) return '';
  let s = t.group ? ` ${t.group}` : '';
  if (t.type) s += ` type ${t.type}`;
  if (t.action) s += ` action ${t.action}`;
  const dev = trapInputName(p, d) ?? (d.ifindex ? `ifindex ${d.ifindex}` : '');
  if (dev) s += ` dev ${dev}`;
  if (d.netns !== null && !d.initNetns) s += ` netns ${d.netnsName ?? d.netns}`;
  if (t.device) s += ` devlink ${t.device}`;
  return s;
}

/** The input port's name of a hardware drop: from the source, else from the attribution. */
export function trapInputName(p: DropPoint, d: Pick<DescribedPoint, 'ifname'>): string | null {
  return p.trap?.inputName || d.ifname || null;
}

export function describePoint(p: DropPoint, symbols: Symbolizer | undefined, attribution: Attribution | undefined): DescribedPoint {
  const sym = symbols?.lookup(p.location);
  return {
    where: formatSymbol(sym, p.location, false),
    symbol: formatSymbol(sym, p.location, true),
    function: sym?.name ?? null,
    offset: sym ? Number(sym.offset) : null,
    module: sym?.module ?? null,
    address: hexAddress(p.location),
    reason: p.reasonName || (p.reason === NO_REASON ? '' : `reason ${p.reason}`),
    protocol: p.protocol ? protocolName(p.protocol) : '',
    ...describeAttribution(p.ifindex, p.netns, attribution),
  };
}

/** One frame of a kernel stack, symbolized. */
export function describeFrame(addr: bigint, symbols: Symbolizer | undefined): string {
  return formatSymbol(symbols?.lookup(addr), addr, true);
}

/** A kernel stack, symbolized, without the tracing code's own frames on top. */
export function describeStack(stack: readonly bigint[], symbols: Symbolizer | undefined): string[] {
  const frames = stack.map((a) => describeFrame(a, symbols));
  let i = 0;
  while (i < frames.length - 1 && /^(trace_event_raw_event_|perf_trace_|__traceiter_|__bpf_trace_)/.test(frames[i])) i++;
  return frames.slice(i);
}

/**
 * A container for a one-line summary: "docker 3f2a…", "k8s pod 0f1e2d3c… containerd 3f2a…".
 * Runtimes accept a unique prefix of an id; the JSON keeps the whole one.
 */
export function shortContainer(container: string): string {
  return container.replace(/\b([0-9a-f]{8})-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/g, '$1…').replace(/\b([0-9a-f]{4})[0-9a-f]{8,}\b/g, '$1…');
}

/** "12:03:04 UTC": when a namespace went away (a run is short: the time of day says it). */
export function goneText(ms: number): string {
  return `${new Date(ms).toISOString().slice(11, 19)} UTC`;
}

/** What a summary line knows of a namespace. */
export interface NetnsPlace {
  readonly netns: number;
  /** "init" for the initial namespace. */
  readonly netnsName?: string;
  readonly container?: string;
  /** When it went away (ms since the epoch). */
  readonly gone?: number;
}

/**
 * A namespace as summary lines name it: "netns web-1 (docker 3f2a…)",
 * "netns 4026532871 (gone at 12:03:04 UTC)", and "host/init" for the
 * initial namespace.
 */
export function netnsPlace(n: NetnsPlace): string {
  const label = n.netnsName === 'init' ? 'host/init' : `netns ${n.netnsName ?? n.netns}`;
  const more = [n.container ? shortContainer(n.container) : '', n.gone !== undefined ? `gone at ${goneText(n.gone)}` : ''].filter(Boolean);
  return more.length ? `${label} (${more.join(', ')})` : label;
}

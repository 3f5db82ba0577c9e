/**
 * The small networks scenarios run in, and what they use to make traffic.
 *
 *   pair:   a (a0 10.1.0.1, fd01::1) ---- b (b0 10.1.0.2, fd01::2)
 *   router: a (a0 10.1.0.1, fd01::1) ---- b (b0 10.1.0.2, fd01::2 | b1 10.2.0.1, fd02::1) ---- c (c0 10.2.0.2, fd02::2)
 *
 * In the router network, b forwards (IPv4 and IPv6) and a and c route
 * through it. IPv6 is on only where a scenario asks for it: off, no
 * background chatter (router and neighbour solicitations) competes with the
 * scenario's own drops.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { TestNetns, sh } from '../helpers/netns.js';

export interface Net {
  readonly a: TestNetns;
  readonly b: TestNetns;
  /** Only in the router network: the host behind b. */
  readonly c?: TestNetns;
}

export interface NetOptions {
  readonly router?: boolean;
  readonly ipv6?: boolean;
}

function enableIpv6(ns: TestNetns, ifname: string, addr: string): void {
  ns.sysctl(`net.ipv6.conf.${ifname}.disable_ipv6`, '0');
  ns.sysctl(`net.ipv6.conf.${ifname}.accept_ra`, '0');
  ns.ip('-6', 'addr', 'add', addr, 'dev', ifname, 'nodad');
}

export function buildNet(label: string, opts: NetOptions = {}): Net {
  const a = new TestNetns(`${label}a`);
  const b = new TestNetns(`${label}b`);
  TestNetns.vethPair(a, 'a0', b, 'b0');
  a.ip('addr', 'add', '10.1.0.1/24', 'dev', 'a0');
  b.ip('addr', 'add', '10.1.0.2/24', 'dev', 'b0');
  if (opts.ipv6) {
    enableIpv6(a, 'a0', 'fd01::1/64');
    enableIpv6(b, 'b0', 'fd01::2/64');
  }
  if (!opts.router) return { a, b };
  const c = new TestNetns(`${label}c`);
  TestNetns.vethPair(b, 'b1', c, 'c0');
  b.ip('addr', 'add', '10.2.0.1/24', 'dev', 'b1');
  c.ip('addr', 'add', '10.2.0.2/24', 'dev', 'c0');
  a.ip('route', 'add', 'default', 'via', '10.1.0.2');
  c.ip('route', 'add', 'default', 'via', '10.2.0.1');
  b.sysctl('net.ipv4.ip_forward', '1');
  if (opts.ipv6) {
    enableIpv6(b, 'b1', 'fd02::1/64');
    enableIpv6(c, 'c0', 'fd02::2/64');
    b.sysctl('net.ipv6.conf.all.forwarding', '1');
    a.ip('-6', 'route', 'add', 'default', 'via', 'fd01::2');
    c.ip('-6', 'route', 'add', 'default', 'via', 'fd02::1');
  }
  return { a, b, c };
}

export function deleteNet(net: Net): void {
  for (const ns of [net.a, net.b, net.c]) ns?.delete();
}

export function macOf(ns: TestNetns, ifname: string): string {
  return ns.exec('cat', [`/sys/class/net/${ifname}/address`]).trim();
}

/** A background process inside a namespace, killed by `stop()`. */
export class Background {
  private readonly pid: number;
  constructor(ns: TestNetns, cmd: string, args: string[]) {
    const out = execFileSync('sh', ['-c', `ip netns exec "$0" "$@" >/dev/null 2>&1 & echo $!`, ns.name, cmd, ...args], { encoding: 'utf8' });
    this.pid = Number(out.trim());
  }
  stop(): void {
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

/** Keeps the background processes of the scenario that runs, stopped by `stopAll()`. */
export const background = {
  live: [] as Background[],
  start(ns: TestNetns, cmd: string, args: string[]): Background {
    const b = new Background(ns, cmd, args);
    this.live.push(b);
    return b;
  },
  stopAll(): void {
    for (const b of this.live.splice(0)) b.stop();
  },
};

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait (bounded) until a socket of `proto` is bound to `port` in `ns`: a process started in the background takes its time. */
export async function bound(ns: TestNetns, port: number, proto: 'udp' | 'udp6' | 'tcp' | 'raw' = 'udp', ms = 20_000): Promise<void> {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')} `;
  for (const end = Date.now() + ms; Date.now() < end; await sleep(50)) {
    if (ns.exec('cat', [`/proc/net/${proto}`]).includes(hex)) return;
  }
  throw new Error(`nothing bound ${proto} port ${port} in ${ns.name} within ${ms} ms`);
}

/**
 * Run a Python program inside a namespace (bounded: 60 s). Scenarios use it
 * for the packets dropgen does not make (IPv6, TTL, DF, raw protocols);
 * `PACE(n)` in the program sleeps so that n packets take about n/2000 s:
 * paced like dropgen's senders, so a flood never makes a second cause.
 */
export function py(ns: TestNetns, program: string): string {
  const prelude = 'import socket, struct, time\ndef PACE(i):\n    if i % 16 == 15: time.sleep(0.008)\n';
  return execFileSync('ip', ['netns', 'exec', ns.name, 'python3', '-c', prelude + program], { encoding: 'utf8', timeout: 60_000 });
}

/** Host-wide sysctls a scenario changes for a moment, put back by `restoreGlobals()` whatever happens. */
const savedGlobals = new Map<string, string>();

export function setGlobalSysctl(key: string, value: string): void {
  const path = `/proc/sys/${key.replace(/\./g, '/')}`;
  if (!savedGlobals.has(key)) savedGlobals.set(key, readFileSync(path, 'utf8').trim());
  sh('sysctl', ['-q', '-w', `${key}=${value}`]);
}

export function restoreGlobals(): void {
  for (const [key, value] of savedGlobals) {
    try {
      sh('sysctl', ['-q', '-w', `${key}=${value}`]);
    } catch {
      /* the module went away: nothing to restore */
    }
  }
  savedGlobals.clear();
}

/** Why this queueing discipline (or classifier) cannot be used here (tc's own words), or undefined when it can. */
export function tcLacks(kind: 'qdisc' | 'filter', name: string, args: string[] = []): string | undefined {
  const probe = new TestNetns('probe');
  try {
    probe.ip('link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1');
    if (kind === 'filter') probe.exec('tc', ['qdisc', 'add', 'dev', 'p0', 'clsact']);
    const cmd = kind === 'qdisc' ? ['qdisc', 'add', 'dev', 'p0', 'root', name, ...args] : ['filter', 'add', 'dev', 'p0', 'ingress', name, ...args];
    probe.exec('tc', cmd);
    return undefined;
  } catch (err) {
    const words = (err as { stderr?: unknown }).stderr;
    return `the running kernel has no ${name} ${kind} (${String(words ?? (err as Error).message).trim().split('\n')[0]})`;
  } finally {
    probe.delete();
  }
}

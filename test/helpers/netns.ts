/**
 * Network namespaces for tests: created with unique names, torn down by
 * `cleanup()` (call it from `after`). Deleting a namespace removes its veths
 * and its nftables tables with it.
 */
import { execFileSync } from 'node:child_process';

let serial = 0;

export function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
}

export class TestNetns {
  private static live = new Set<string>();
  readonly name: string;

  constructor(label: string) {
    this.name = `dmt-${process.pid}-${label}-${serial++}`;
    sh('ip', ['netns', 'add', this.name]);
    TestNetns.live.add(this.name);
    this.ip('link', 'set', 'lo', 'up');
  }

  ip(...args: string[]): string {
    return sh('ip', ['-n', this.name, ...args]);
  }

  exec(cmd: string, args: string[], input?: string): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args], input);
  }

  sysctl(key: string, value: string): void {
    this.exec('sysctl', ['-q', '-w', `${key}=${value}`]);
  }

  /** One counter of a /proc/net/snmp block ("Udp", "NoPorts") inside this namespace. */
  snmp(block: string, field: string): number {
    const lines = this.exec('cat', ['/proc/net/snmp']).split('\n').filter((l) => l.startsWith(`${block}:`));
    const names = lines[0].split(/\s+/);
    const vals = lines[1].split(/\s+/);
    const i = names.indexOf(field);
    if (i < 0) throw new Error(`no ${block}:${field} in /proc/net/snmp`);
    return Number(vals[i]);
  }

  /** A link statistic (/sys/class/net/IF/statistics/NAME) seen inside this namespace. */
  linkStat(ifname: string, stat: string): number {
    return Number(this.exec('cat', [`/sys/class/net/${ifname}/statistics/${stat}`]).trim());
  }

  delete(): void {
    try {
      sh('ip', ['netns', 'delete', this.name]);
    } catch {
      /* already gone */
    }
    TestNetns.live.delete(this.name);
  }

  /** A veth pair between two namespaces, both ends up, IPv6 off (no background chatter). */
  static vethPair(a: TestNetns, aIf: string, b: TestNetns, bIf: string): void {
    a.ip('link', 'add', aIf, 'type', 'veth', 'peer', 'name', bIf, 'netns', b.name);
    for (const [ns, ifn] of [[a, aIf], [b, bIf]] as const) {
      ns.sysctl(`net.ipv6.conf.${ifn}.disable_ipv6`, '1');
      ns.ip('link', 'set', ifn, 'up');
    }
  }

  static cleanupAll(): void {
    for (const n of [...TestNetns.live]) {
      try {
        sh('ip', ['netns', 'delete', n]);
      } catch {
        /* already gone */
      }
      TestNetns.live.delete(n);
    }
  }
}

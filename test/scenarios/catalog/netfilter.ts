/** Drops by netfilter: a rule, a conntrack state rule, a full conntrack table. */
import { readFileSync } from 'node:fs';
import { runDropgen } from '../../helpers/dropgen.js';
import type { TestNetns } from '../../helpers/netns.js';
import { py, setGlobalSysctl, restoreGlobals } from '../net.js';
import type { Scenario } from '../scenario.js';
import { PACED } from './sockets.js';

function inputChain(ns: TestNetns, table: string, rule: string[]): void {
  ns.exec('nft', ['add', 'table', 'inet', table]);
  ns.exec('nft', ['add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; }']);
  ns.exec('nft', ['add', 'rule', 'inet', table, 'in', ...rule]);
}

export const NETFILTER_SCENARIOS: readonly Scenario[] = [
  {
    name: 'nftables drop rule',
    where: 'b',
    setup: ({ b }) => inputChain(b, 'dmtest', ['udp', 'dport', '47002', 'counter', 'drop']),
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '300', '-a', '10.1.0.2', '-p', '47002', ...PACED], a.name),
    cause_key: 'NETFILTER_DROP/rule',
    kind: 'drops',
    evidence: 'dport 47002 counter .*(\\+| )300 packets',
    fix: 'nft',
  },
  {
    name: 'conntrack "ct state invalid" rule',
    where: 'b',
    setup: ({ b }) => inputChain(b, 'dmctinv', ['ct', 'state', 'invalid', 'counter', 'drop']),
    // TCP resets that belong to no connection: conntrack calls them invalid, the rule drops them.
    // A raw IPPROTO_TCP socket: the kernel adds the IP header, the program the TCP header (flags RST).
    cause: ({ a }) =>
      void py(
        a,
        'def csum(b):\n    if len(b)%2: b+=b"\\0"\n    s=sum(struct.unpack("!%dH"%(len(b)//2),b)); s=(s>>16)+(s&0xffff); s+=s>>16\n    return ~s&0xffff\n' +
          'src=socket.inet_aton("10.1.0.1"); dst=socket.inet_aton("10.1.0.2")\ns=socket.socket(2,3,6)\n' +
          'for i in range(300):\n    h=struct.pack("!HHIIBBHHH",40000+i,47006,i,0,5<<4,0x04,0,0,0)\n' +
          '    c=csum(src+dst+struct.pack("!BBH",0,6,len(h))+h)\n    h=h[:16]+struct.pack("!H",c)+h[18:]\n    s.sendto(h,("10.1.0.2",0)); PACE(i)\n',
      ),
    cause_key: ['NETFILTER_DROP/ct-invalid-rule', 'NETFILTER_DROP/ct-invalid'],
    kind: 'drops',
    evidence: 'ct state invalid counter .*(\\+| )300 packets',
    fix: 'invalid|conntrack|ct state',
  },
  {
    name: 'conntrack table full',
    where: 'b',
    skip: () => {
      // The limit is global: lower it only where no namespace here tracks connections but ours.
      let count = 0;
      try {
        count = Number(readFileSync('/proc/sys/net/netfilter/nf_conntrack_count', 'utf8'));
      } catch {
        /* conntrack not loaded: nobody tracks */
      }
      return count > 0 ? 'the host tracks connections: lowering the global nf_conntrack_max would hurt them' : undefined;
    },
    setup: ({ b }) => inputChain(b, 'dmct', ['ct', 'state', 'new', 'counter']),
    cause: ({ a }) => {
      setGlobalSysctl('net.netfilter.nf_conntrack_max', '20');
      try {
        // 60 senders, 60 source ports, 60 new connections: 40 find the table full.
        runDropgen(['-m', 'noport', '-n', '60', '-P', '60', '-a', '10.1.0.2'], a.name);
      } finally {
        restoreGlobals();
      }
    },
    cause_key: 'NETFILTER_DROP/conntrack-full',
    kind: 'drops',
    counterDeltas: [{ name: 'conntrack:drop', min: 30 }],
    fix: 'nf_conntrack_max',
    causeMentions: ['conntrack'],
  },
];

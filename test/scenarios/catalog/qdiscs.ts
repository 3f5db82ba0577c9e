/** Drops in queueing disciplines: a shaper over its rate, a queue over its limit, loss and AQM (where the kernel has them). */
import { runDropgen } from '../../helpers/dropgen.js';
import type { TestNetns } from '../../helpers/netns.js';
import { macOf, tcLacks } from '../net.js';
import type { Scenario } from '../scenario.js';
import { PACED } from './sockets.js';

/** Skips with the reason when the running kernel has no such qdisc (this is said, never silently passed). */
const needsQdisc = (kind: string, args: string[] = []) => () => tcLacks('qdisc', kind, args);

/** An htb shaper of 1 Mbit/s on a0 whose one class queues in `leaf` (a qdisc and its parameters): the leaf's limit is what overflows. */
function behindShaper(a: TestNetns, leaf: string[]): void {
  a.exec('tc', ['qdisc', 'add', 'dev', 'a0', 'root', 'handle', '1:', 'htb', 'default', '1']);
  a.exec('tc', ['class', 'add', 'dev', 'a0', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '1mbit']);
  a.exec('tc', ['qdisc', 'add', 'dev', 'a0', 'parent', '1:1', 'handle', '10:', ...leaf]);
}

/** 1000 datagrams of 1000 bytes from a, far faster than the qdisc lets through. */
const burst = (a: { name: string }) => void runDropgen(['-m', 'udp', '-n', '1000', '-a', '10.1.0.2', '-l', '1000', ...PACED], a.name);

export const QDISC_SCENARIOS: readonly Scenario[] = [
  {
    name: 'tbf qdisc over its rate',
    where: 'a',
    skip: needsQdisc('tbf', ['rate', '1mbit', 'burst', '2k', 'limit', '3k']),
    setup: ({ a }) => a.exec('tc', ['qdisc', 'add', 'dev', 'a0', 'root', 'tbf', 'rate', '1mbit', 'burst', '2k', 'limit', '3k']),
    cause: ({ a }) => burst(a),
    cause_key: 'QDISC_DROP/tbf',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 900 }],
    fix: 'rate|burst|limit',
  },
  {
    name: 'pfifo queue over its limit behind an htb shaper',
    where: 'a',
    skip: needsQdisc('htb', ['default', '1']),
    setup: ({ a }) => behindShaper(a, ['pfifo', 'limit', '5']),
    cause: ({ a }) => burst(a),
    cause_key: 'QDISC_DROP/fifo-limit',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 900 }],
    fix: 'limit|txqueuelen',
  },
  {
    name: 'netem loss',
    where: 'a',
    // 90 % lost: the tenth that gets through meets a closed port, a smaller second cause.
    skip: needsQdisc('netem', ['loss', '90%']),
    setup: ({ a, b }) => {
      // ARP would be lost too: a knows b's address without asking.
      a.ip('neigh', 'add', '10.1.0.2', 'lladdr', macOf(b, 'b0'), 'dev', 'a0');
      a.exec('tc', ['qdisc', 'add', 'dev', 'a0', 'root', 'netem', 'loss', '90%']);
    },
    cause: ({ a }) => void runDropgen(['-m', 'udp', '-n', '1000', '-a', '10.1.0.2', '-p', '9', ...PACED], a.name),
    cause_key: 'QDISC_DROP/netem-loss',
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 700 }],
    fix: 'netem|loss',
  },
  {
    name: 'fq_codel over its memory limit',
    where: 'a',
    skip: needsQdisc('fq_codel'),
    setup: ({ a }) => behindShaper(a, ['fq_codel', 'limit', '20', 'memory_limit', '32k']),
    cause: ({ a }) => burst(a),
    cause_key: ['QDISC_DROP/fq-codel-overlimit', 'QDISC_OVERLIMIT', 'QDISC_DROP/fq-codel-aqm', 'QDISC_CONGESTED'],
    kind: 'drops',
    counterDeltas: [{ name: 'qdisc:drops', min: 500 }],
    fix: 'limit|memory_limit',
  },
];

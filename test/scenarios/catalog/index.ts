/** Every scenario, grouped by where in the stack the drops happen. */
import type { Scenario } from '../scenario.js';
import { FORWARDING_SCENARIOS } from './forwarding.js';
import { LINK_SCENARIOS } from './links.js';
import { NEIGHBOUR_SCENARIOS } from './neighbours.js';
import { NETFILTER_SCENARIOS } from './netfilter.js';
import { QDISC_SCENARIOS } from './qdiscs.js';
import { SOCKET_SCENARIOS } from './sockets.js';

export const SCENARIOS: readonly Scenario[] = [
  ...SOCKET_SCENARIOS,
  ...FORWARDING_SCENARIOS,
  ...NEIGHBOUR_SCENARIOS,
  ...QDISC_SCENARIOS,
  ...NETFILTER_SCENARIOS,
  ...LINK_SCENARIOS,
];

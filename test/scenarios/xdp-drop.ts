/**
 * Run as a program inside a network namespace (`ip netns exec NS node
 * xdp-drop.js IFACE`): attaches an XDP program that drops every packet to
 * IFACE in generic (skb) mode, through a BPF link held by this process, and
 * prints "attached". Killing the process detaches it: nothing is left behind.
 * Loaded by the test runner on its own, it does nothing.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { BpfCmd, bpfTry, loadProgram } from '../../src/kernel/bpf/syscall.js';
import { NativeMemory } from '../../src/kernel/bpf/native.js';

const BPF_PROG_TYPE_XDP = 6;
const BPF_XDP = 37;
const XDP_FLAGS_SKB_MODE = 2;
/** r0 = XDP_DROP (1); exit. */
const DROP_ALL = Uint8Array.from([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

function attach(ifname: string): number {
  const ifindex = Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'));
  const prog = loadProgram({ type: BPF_PROG_TYPE_XDP, insns: DROP_ALL, name: 'dmt_xdp_drop' });
  const attr = new NativeMemory(64);
  try {
    const a = attr.clear();
    a.view.setUint32(0, prog, true);
    a.view.setUint32(4, ifindex, true);
    a.view.setUint32(8, BPF_XDP, true);
    a.view.setUint32(12, XDP_FLAGS_SKB_MODE, true);
    const link = bpfTry(BpfCmd.LINK_CREATE, a);
    if (link < 0) throw new Error(`LINK_CREATE for XDP on ${ifname}: errno ${-link}`);
    return link;
  } finally {
    attr.free();
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2]) {
  attach(process.argv[2]);
  process.stdout.write('attached\n');
  // Held until killed; bounded in case nobody does.
  setTimeout(() => process.exit(0), 120_000);
}

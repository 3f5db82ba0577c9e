/**
 * A minimal client of the kernel's openvswitch datapath (generic netlink
 * families ovs_datapath, ovs_vport, ovs_flow; include/uapi/linux/openvswitch.h)
 * for tests that need openvswitch drop reasons: create a datapath, attach a
 * device as a port, install a flow. No ovs-vswitchd, no ovs-dpctl: the
 * messages are those ovs-dpctl sends, built with dropmon's netlink codec.
 *
 * Every OVS message carries `struct ovs_header { int dp_ifindex; }` after the
 * generic netlink header. The datapath belongs to the network namespace of
 * the socket that created it and is destroyed with that namespace.
 */
import { cstring, encodeAttrs, u32, type AttrSpec } from '../../src/kernel/netlink/message.js';
import { resolveFamily } from '../../src/kernel/netlink/genl.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../../src/kernel/netlink/socket.js';

const CMD_NEW = 1;
/** Ask for the new object back (the kernel answers creations by notification only). */
const NLM_F_ECHO = 0x08;
const DP_ATTR = { NAME: 1, UPCALL_PID: 2 } as const;
const VPORT_ATTR = { PORT_NO: 1, TYPE: 2, NAME: 3, UPCALL_PID: 5 } as const;
const VPORT_TYPE_NETDEV = 1;
const FLOW_ATTR = { KEY: 1, ACTIONS: 2, MASK: 7 } as const;
/** enum ovs_key_attr */
export const KEY_ATTR = { IN_PORT: 3, ETHERNET: 4, ETHERTYPE: 6, IPV4: 7 } as const;

function ovsPayload(cmd: number, version: number, dpIfindex: number, attrs: readonly AttrSpec[]): Uint8Array {
  const head = new Uint8Array(8);
  const v = new DataView(head.buffer);
  v.setUint8(0, cmd);
  v.setUint8(1, version);
  v.setInt32(4, dpIfindex, true);
  return Buffer.concat([head, encodeAttrs(attrs)]);
}

const be16 = (n: number) => Uint8Array.of(n >> 8, n & 0xff);

export class OvsDatapath {
  private readonly sock: NetlinkSocket;
  private readonly families: { dp: number; vport: number; flow: number };
  /** The datapath's ifindex (its internal port, named like the datapath). */
  readonly ifindex: number;

  /** Create datapath `name` in the calling thread's network namespace. Throws when openvswitch is absent. */
  constructor(readonly name: string) {
    this.sock = new NetlinkSocket(NETLINK_GENERIC);
    try {
      const fam = (n: string) => {
        const f = resolveFamily(this.sock, n);
        if (!f) throw new Error(`no generic netlink family ${n} (is the openvswitch module loaded?)`);
        return f.id;
      };
      this.families = { dp: fam('ovs_datapath'), vport: fam('ovs_vport'), flow: fam('ovs_flow') };
      const reply = this.sock.request(this.families.dp, NLM_F_ECHO, ovsPayload(CMD_NEW, 2, 0, [
        { type: DP_ATTR.NAME, value: cstring(name) },
        // No upcalls: packets that miss every flow are freed by the kernel.
        { type: DP_ATTR.UPCALL_PID, value: u32(0) },
      ]), `create OVS datapath ${name}`);
      this.ifindex = reply.length ? new DataView(reply[0].payload.buffer, reply[0].payload.byteOffset + 4, 4).getInt32(0, true) : 0;
      if (!this.ifindex) throw new Error('the kernel did not answer with the datapath');
    } catch (err) {
      this.sock.close();
      throw err;
    }
  }

  /** Attach network device `dev` (of this namespace) as port `portNo`. */
  addNetdev(dev: string, portNo: number): void {
    this.sock.request(this.families.vport, 0, ovsPayload(CMD_NEW, 1, this.ifindex, [
      { type: VPORT_ATTR.PORT_NO, value: u32(portNo) },
      { type: VPORT_ATTR.TYPE, value: u32(VPORT_TYPE_NETDEV) },
      { type: VPORT_ATTR.NAME, value: cstring(dev) },
      { type: VPORT_ATTR.UPCALL_PID, value: u32(0) },
    ]), `add port ${dev}`);
  }

  /**
   * A flow matching every IPv4 packet that enters port `inPort`, whatever
   * its addresses, with the given actions (none: the kernel drops the
   * packet, OVS_DROP_LAST_ACTION since Linux 6.8).
   */
  addIpv4Flow(inPort: number, actions: readonly AttrSpec[] = []): void {
    const key: AttrSpec[] = [
      { type: KEY_ATTR.IN_PORT, value: u32(inPort) },
      { type: KEY_ATTR.ETHERNET, value: new Uint8Array(12) },
      { type: KEY_ATTR.ETHERTYPE, value: be16(0x0800) },
      // proto 0 with a zero mask: no transport key is expected (match_validate()).
      { type: KEY_ATTR.IPV4, value: new Uint8Array(12) },
    ];
    const mask: AttrSpec[] = [
      { type: KEY_ATTR.IN_PORT, value: u32(0xffffffff) },
      { type: KEY_ATTR.ETHERNET, value: new Uint8Array(12) },
      { type: KEY_ATTR.ETHERTYPE, value: be16(0xffff) },
      { type: KEY_ATTR.IPV4, value: new Uint8Array(12) },
    ];
    this.sock.request(this.families.flow, 0, ovsPayload(CMD_NEW, 1, this.ifindex, [
      { type: FLOW_ATTR.KEY, value: key },
      { type: FLOW_ATTR.ACTIONS, value: actions.length ? actions : [] },
      { type: FLOW_ATTR.MASK, value: mask },
    ]), 'add flow');
  }

  close(): void {
    this.sock.close();
  }
}



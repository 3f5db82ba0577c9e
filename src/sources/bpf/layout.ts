/**
 * What the BPF drop programs need to know about the running kernel, all read
 * from its BTF: the offsets of the sk_buff / net_device / net members they
 * load, and the kfree_skb tracepoint's prototype, checked so that a program is
 * never attached to a tracepoint whose arguments are not what it reads.
 */
import { DropmonError, ParseError } from '../../core/errors.js';
import { BtfKind, type Btf, type ProtoParam } from '../../kernel/bpf/btf.js';

export interface Field {
  readonly offset: number;
  /** Load size in bytes: the verifier insists a BTF-typed load matches the member. */
  readonly size: 1 | 2 | 4 | 8;
}

export interface KernelLayout {
  /** BTF id of the typedef btf_trace_kfree_skb (a tp_btf program's attach_btf_id). */
  readonly tracepointBtfId: number;
  /** Tracepoint arguments (the prototype's parameters minus the leading `void *`). */
  readonly args: readonly ProtoParam[];
  readonly skbDev: Field;
  readonly skbProtocol: Field;
  readonly skbLen: Field;
  readonly skbHead: Field;
  /** skb->data: where skb->len bytes start (the original length counts from the MAC header). */
  readonly skbData: Field;
  readonly skbMacHeader: Field;
  readonly skbNetworkHeader: Field;
  /** skb->tail, when it is an offset from head (64-bit kernels): bounds the bytes copied. */
  readonly skbTail?: Field;
  readonly devIfindex: Field;
  /** net_device.nd_net.net: possible_net_t wraps the pointer. */
  readonly devNet: Field;
  /** net.ns.inum: the namespace's inode number. */
  readonly netInum: Field;
  /**
   * skb->sk and sock.__sk_common.skc_net.net: the namespace of packets that
   * have no device yet (locally generated, dropped on the output path).
   */
  readonly skbSk?: Field;
  readonly skNet?: Field;
}

function asSize(n: number, what: string): 1 | 2 | 4 | 8 {
  if (n === 1 || n === 2 || n === 4 || n === 8) return n;
  throw new DropmonError(`BPF source: ${what} is ${n} bytes in this kernel; expected 1, 2, 4 or 8`);
}

/** A struct member's offset and load size from BTF; throws when its size is not `expectSize`. */
export function field(btf: Btf, struct: string, path: string, expectSize?: number): Field {
  const f = btf.field(struct, path);
  const size = asSize(f.size, `${struct}.${path}`);
  if (expectSize !== undefined && size !== expectSize)
    throw new DropmonError(`BPF source: ${struct}.${path} is ${size} bytes in this kernel, expected ${expectSize}`);
  return { offset: f.offset, size };
}

/**
 * Check the kfree_skb prototype: (void *, struct sk_buff *skb, void *location,
 * enum skb_drop_reason reason[, ...]). Returns the tracepoint arguments or
 * throws a DropmonError saying what differs.
 */
export function checkKfreeSkbPrototype(btf: Btf): { id: number; args: ProtoParam[] } {
  let proto;
  try {
    proto = btf.typedefPrototype('btf_trace_kfree_skb');
  } catch (err) {
    if (err instanceof ParseError) throw new DropmonError(`BPF source: the kfree_skb tracepoint is not described in this kernel's BTF (${err.message})`);
    throw err;
  }
  const args = proto.params.slice(1);
  const shown = `(${proto.params.map((p) => p.typeName + (p.name ? ' ' + p.name : '')).join(', ')})`;
  /** A pointer to `struct name`, or to void when name is undefined. */
  const isPtrTo = (p: ProtoParam | undefined, name?: string) => {
    const target = p ? btf.pointee(p.type) : undefined;
    if (target === undefined) return false;
    return name === undefined ? target === 0 : btf.kind(target) === BtfKind.STRUCT && btf.name(target) === name;
  };
  if (proto.params.length < 3 || !isPtrTo(proto.params[0]) || !isPtrTo(args[0], 'sk_buff') || !isPtrTo(args[1]))
    throw new DropmonError(`BPF source: kfree_skb has the prototype ${shown} in this kernel; expected (void *, struct sk_buff *, void *, enum skb_drop_reason, ...)`);
  const reason = args[2];
  const rk = reason ? btf.kind(btf.resolve(reason.type)) : -1;
  if (!reason || (rk !== BtfKind.ENUM && rk !== BtfKind.ENUM64 && rk !== BtfKind.INT))
    throw new DropmonError(
      `BPF source: kfree_skb has no drop-reason argument in this kernel ${shown}`,
      'drop reasons appeared in Linux 5.17; use --source tracefs (or netdm) on this kernel',
    );
  return { id: proto.id, args };
}

function optionalSocketNet(btf: Btf): { skbSk?: Field; skNet?: Field } {
  try {
    return { skbSk: field(btf, 'sk_buff', 'sk', 8), skNet: field(btf, 'sock', '__sk_common.skc_net.net', 8) };
  } catch {
    return {}; // attribution by device only
  }
}

/** Read every offset the programs need. Throws DropmonError naming what is missing. */
export function readKernelLayout(btf: Btf): KernelLayout {
  const { id, args } = checkKfreeSkbPrototype(btf);
  try {
    const tail = btf.field('sk_buff', 'tail');
    return {
      tracepointBtfId: id,
      args,
      skbDev: field(btf, 'sk_buff', 'dev', 8),
      skbProtocol: field(btf, 'sk_buff', 'protocol', 2),
      skbLen: field(btf, 'sk_buff', 'len', 4),
      skbHead: field(btf, 'sk_buff', 'head', 8),
      skbData: field(btf, 'sk_buff', 'data', 8),
      skbMacHeader: field(btf, 'sk_buff', 'mac_header', 2),
      skbNetworkHeader: field(btf, 'sk_buff', 'network_header', 2),
      // sk_buff_data_t is an offset (unsigned int) on 64-bit kernels, a pointer on 32-bit ones.
      ...(tail.size === 4 ? { skbTail: { offset: tail.offset, size: 4 as const } } : {}),
      devIfindex: field(btf, 'net_device', 'ifindex', 4),
      devNet: field(btf, 'net_device', 'nd_net.net', 8),
      netInum: field(btf, 'net', 'ns.inum', 4),
      ...optionalSocketNet(btf),
    };
  } catch (err) {
    if (err instanceof ParseError) throw new DropmonError(`BPF source: this kernel's structures differ from what dropmon reads (${err.message})`);
    throw err;
  }
}

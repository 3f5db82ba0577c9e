/**
 * Generic netlink: the 4-byte family header and family resolution through
 * the controller (nlctrl), which also autoloads a family's module.
 */
import { ParseError } from '../../core/errors.js';
import { attrMap, attrString, attrU16, attrU32, cstring, encodeAttrs, encodeMessage, parseAttrs, type AttrSpec, type NlMessage } from './message.js';
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket } from './socket.js';

export const GENL_HDRLEN = 4;
export const GENL_ID_CTRL = 0x10;
export const CTRL_CMD_NEWFAMILY = 1;
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
export const CTRL_ATTR_MAXATTR = 5;
export const CTRL_ATTR_MCAST_GROUPS = 7;
export const CTRL_ATTR_MCAST_GRP_NAME = 1;
export const CTRL_ATTR_MCAST_GRP_ID = 2;

/** genlmsghdr + attributes. */
export function genlPayload(cmd: number, version: number, attrs: readonly AttrSpec[] = []): Uint8Array {
  const a = encodeAttrs(attrs);
  const out = new Uint8Array(GENL_HDRLEN + a.length);
  out[0] = cmd;
  out[1] = version;
  out.set(a, GENL_HDRLEN);
  return out;
}

export interface GenlMessage {
  readonly cmd: number;
  readonly version: number;
  /** The attribute bytes after the genl header. */
  readonly attrs: Uint8Array;
}

export function parseGenl(m: NlMessage): GenlMessage {
  if (m.payload.length < GENL_HDRLEN) throw new ParseError('generic netlink', 'header', `${m.payload.length} bytes, need ${GENL_HDRLEN}`);
  return { cmd: m.payload[0], version: m.payload[1], attrs: m.payload.subarray(GENL_HDRLEN) };
}

export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly hdrsize: number;
  readonly maxattr: number;
  /** Multicast group name → id. */
  readonly groups: ReadonlyMap<string, number>;
  /** The controller's NEWFAMILY message as received (pcap writers replay it). */
  readonly raw?: Uint8Array;
}

/** Decode a CTRL_CMD_NEWFAMILY message. */
export function parseFamily(m: NlMessage): GenlFamily {
  const g = parseGenl(m);
  const a = attrMap(parseAttrs(g.attrs, 'nlctrl family'));
  const id = a.get(CTRL_ATTR_FAMILY_ID);
  const name = a.get(CTRL_ATTR_FAMILY_NAME);
  if (!id || !name) throw new ParseError('nlctrl family', 'attributes', 'no family id or name');
  const groups = new Map<string, number>();
  const mg = a.get(CTRL_ATTR_MCAST_GROUPS);
  if (mg) {
    for (const grp of parseAttrs(mg.data, 'nlctrl groups')) {
      const ga = attrMap(parseAttrs(grp.data, 'nlctrl group'));
      const gn = ga.get(CTRL_ATTR_MCAST_GRP_NAME), gi = ga.get(CTRL_ATTR_MCAST_GRP_ID);
      if (gn && gi) groups.set(attrString(gn), attrU32(gi));
    }
  }
  const num = (t: number, f: (x: NonNullable<ReturnType<typeof a.get>>) => number) => {
    const x = a.get(t);
    return x ? f(x) : 0;
  };
  return {
    id: attrU16(id),
    name: attrString(name),
    version: num(CTRL_ATTR_VERSION, attrU32),
    hdrsize: num(CTRL_ATTR_HDRSIZE, attrU32),
    maxattr: num(CTRL_ATTR_MAXATTR, attrU32),
    groups,
  };
}

/** The CTRL_CMD_GETFAMILY request payload for `name`. */
export function getFamilyRequest(name: string): Uint8Array {
  return genlPayload(CTRL_CMD_GETFAMILY, 1, [{ type: CTRL_ATTR_FAMILY_NAME, value: cstring(name) }]);
}

/**
 * Resolve a family by name. Returns undefined when the kernel has no such
 * family (ENOENT: module not built or not loadable, or not visible from this
 * network namespace); other failures throw.
 */
export function resolveFamily(sock: NetlinkSocket, name: string): GenlFamily | undefined {
  if (sock.protocol !== NETLINK_GENERIC) throw new Error('resolveFamily needs a NETLINK_GENERIC socket');
  try {
    const replies = sock.request(GENL_ID_CTRL, 0, getFamilyRequest(name), `resolving generic netlink family ${name}`);
    const m = replies.find((r) => r.type === GENL_ID_CTRL);
    return m ? { ...parseFamily(m), raw: encodeMessage({ type: m.type, flags: m.flags, seq: m.seq, pid: m.pid }, m.payload) } : undefined;
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === 2) return undefined;
    throw err;
  }
}

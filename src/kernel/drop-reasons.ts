/**
 * Drop-reason names, the same for every source.
 *
 * Since Linux 6.4 a drop reason is a 32-bit value whose upper 16 bits name a
 * subsystem (`enum skb_drop_reason_subsys`: CORE = 0, then mac80211,
 * openvswitch, ...; include/net/dropreason.h) and whose lower 16 bits are the
 * subsystem's own reason. Core reasons are `enum skb_drop_reason`; the other
 * subsystems register a string table at run time
 * (`drop_reasons_register_subsys()`, net/core/skbuff.c) from their own enum:
 * openvswitch's `enum ovs_drop_reason` (net/openvswitch/drop.h), mac80211's
 * `enum mac80211_drop_reason` (net/mac80211/drop.h). Those enums hold the
 * whole value (subsystem << 16 | code) and live in the module's BTF
 * (/sys/kernel/btf/openvswitch) while the module is loaded, or in vmlinux
 * when it is built in.
 *
 * Spelling (used by outputs, filters and the knowledge base):
 *   - core reasons: the kernel's name without SKB_DROP_REASON_ (`NO_SOCKET`),
 *     "" for a core value the table does not have (as before);
 *   - subsystem reasons: `SUBSYS/REASON`, the subsystem's name without
 *     SKB_DROP_REASON_SUBSYS_ and the reason as the kernel spells it, which is
 *     also the string NET_DM sends: `OPENVSWITCH/OVS_DROP_LAST_ACTION`,
 *     `MAC80211_UNUSABLE/RX_DROP_U_MIC_FAIL`;
 *   - a subsystem whose reason enum cannot be read (module unloaded, no
 *     module BTF): `OPENVSWITCH/code 1`;
 *   - a subsystem the kernel's subsystem enum does not name (or no BTF at
 *     all): `subsys 3 code 1`.
 * Subsystem numbers changed between kernels (MAC80211_MONITOR was removed,
 * later ones renumbered), so nothing here is a constant: it is all read from
 * the running kernel.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Btf, BtfKind } from './bpf/btf.js';
import { ParseError } from '../core/errors.js';

export const SUBSYS_SHIFT = 16;
export const SUBSYS_MASK = 0xffff0000;
export const DEFAULT_BTF_DIR = '/sys/kernel/btf';
/** How often a subsystem whose names are missing is looked up again (its module may load later). */
export const DEFAULT_RETRY_MS = 10_000;
/** Names remembered per value: the values seen are few, a hostile stream is bounded. */
const MAX_CACHED = 4096;
/** Module BTF files tried per subsystem ("mac80211_unusable", "mac80211"). */
const MAX_MODULE_CANDIDATES = 3;

export interface DropReasonsOptions {
  /** The core table when the caller has one (the tracefs format's __print_symbolic); else read from BTF. */
  readonly core?: ReadonlyMap<number, string>;
  /** Where vmlinux and module BTF live (tests point this at a folder of built blobs). */
  readonly btfDir?: string;
  /** The parsed vmlinux BTF when the caller already has it (the BPF source). */
  readonly vmlinux?: () => Btf;
  /** Clock for the retry interval (tests). */
  readonly now?: () => number;
  readonly retryMs?: number;
}

interface Subsystem {
  readonly id: number;
  /** Name without SKB_DROP_REASON_SUBSYS_. */
  readonly name: string;
  /** code → reason name, from the module's (or vmlinux's) reason enum. */
  names: Map<number, string>;
  /** When the names were last looked for (-Infinity: never). */
  lookedAt: number;
  /** Found in a BTF: no need to look again. */
  complete: boolean;
}

/** A `SUBSYS/REASON` name split, or undefined for a core name. */
export function splitReasonName(name: string): { subsys: string; reason: string } | undefined {
  const slash = name.indexOf('/');
  return slash > 0 ? { subsys: name.slice(0, slash), reason: name.slice(slash + 1) } : undefined;
}

export function subsysOf(value: number): number {
  return (value & SUBSYS_MASK) >>> SUBSYS_SHIFT;
}

/**
 * Names reason values of the running kernel, core and subsystem, and maps
 * NET_DM's reason strings onto the same names. BTF is read lazily: a source
 * that only ever sees core reasons with a core table never parses it.
 */
export class DropReasons {
  private readonly btfDir: string;
  private readonly now: () => number;
  private readonly retryMs: number;
  private core: ReadonlyMap<number, string> | undefined;
  private vmlinuxBtf: Btf | null | undefined;
  private subsystems: Map<number, Subsystem> | undefined;
  private readonly cache = new Map<number, string>();
  private readonly fromNetdm = new Map<string, string>();
  private coreNames: Set<string> | undefined;

  constructor(private readonly opts: DropReasonsOptions = {}) {
    this.btfDir = opts.btfDir ?? DEFAULT_BTF_DIR;
    this.now = opts.now ?? (() => performance.now());
    this.retryMs = opts.retryMs ?? DEFAULT_RETRY_MS;
    this.core = opts.core;
  }

  /** The name of a reason value, as spelled above ("" for an unknown core value). */
  name(value: number): string {
    const hit = this.cache.get(value);
    if (hit !== undefined) return hit;
    const v = value >>> 0;
    const s = subsysOf(v);
    if (s === 0) {
      const n = this.coreTable().get(v) ?? '';
      this.remember(value, n);
      return n;
    }
    const code = v & 0xffff;
    const sub = this.subsystem(s);
    if (!sub) return this.remember(value, `subsys ${s} code ${code}`);
    let n = sub.names.get(code);
    if (n === undefined && this.refresh(sub)) n = sub.names.get(code);
    // A numeric fallback is not cached: the module may load later.
    if (n === undefined) return `${sub.name}/code ${code}`;
    return this.remember(value, `${sub.name}/${n}`);
  }

  /**
   * NET_DM sends the reason's own string (the kernel's table of its
   * subsystem, without the subsystem): "NO_SOCKET", "OVS_DROP_LAST_ACTION".
   * Core names stay as they are; a subsystem's name gets its `SUBSYS/`.
   * Unknown strings are returned unchanged.
   */
  netdmName(kernelString: string): string {
    if (kernelString === '' || kernelString.includes('/')) return kernelString;
    const hit = this.fromNetdm.get(kernelString);
    if (hit !== undefined) return hit;
    let out = kernelString;
    if (!this.coreNameSet().has(kernelString)) {
      const subs = this.subsystemTable();
      for (const sub of subs.values()) {
        if (![...sub.names.values()].includes(kernelString)) this.refresh(sub);
        if ([...sub.names.values()].includes(kernelString)) {
          out = `${sub.name}/${kernelString}`;
          break;
        }
      }
      // Not found while a subsystem's names are missing: ask again later.
      if (out === kernelString && [...subs.values()].some((s) => !s.complete)) return out;
    }
    if (this.fromNetdm.size >= MAX_CACHED) this.fromNetdm.clear();
    this.fromNetdm.set(kernelString, out);
    return out;
  }

  /** Every value → name known now: the core table and the subsystems whose names are loaded. */
  table(): Map<number, string> {
    const out = new Map(this.coreTable());
    for (const sub of this.subsystemTable().values()) {
      if (!sub.complete) this.refresh(sub);
      for (const [code, n] of sub.names) out.set(((sub.id << SUBSYS_SHIFT) | code) >>> 0, `${sub.name}/${n}`);
    }
    return out;
  }

  /** The core table, from the caller or from vmlinux's enum skb_drop_reason. */
  coreTable(): ReadonlyMap<number, string> {
    if (this.core) return this.core;
    const out = new Map<number, string>();
    const btf = this.vmlinux();
    if (btf) {
      try {
        for (const [name, value] of btf.enumValues('skb_drop_reason')) {
          if (name === 'SKB_DROP_REASON_MAX') continue;
          out.set(value >>> 0, name.replace(/^SKB_DROP_REASON_/, ''));
        }
      } catch (err) {
        // A damaged enum: no core names (numbers are still shown).
        if (!(err instanceof ParseError)) throw err;
        out.clear();
      }
    }
    this.core = out;
    return out;
  }

  private coreNameSet(): Set<string> {
    this.coreNames ??= new Set(this.coreTable().values());
    return this.coreNames;
  }

  private remember(value: number, name: string): string {
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(value, name);
    return name;
  }

  private vmlinux(): Btf | undefined {
    if (this.vmlinuxBtf !== undefined) return this.vmlinuxBtf ?? undefined;
    try {
      this.vmlinuxBtf = this.opts.vmlinux ? this.opts.vmlinux() : Btf.parse(readFileSync(join(this.btfDir, 'vmlinux')));
    } catch {
      // No BTF (CONFIG_DEBUG_INFO_BTF off) or unreadable: names fall back to numbers.
      this.vmlinuxBtf = null;
    }
    return this.vmlinuxBtf ?? undefined;
  }

  private subsystemTable(): Map<number, Subsystem> {
    if (this.subsystems) return this.subsystems;
    const subs = new Map<number, Subsystem>();
    const btf = this.vmlinux();
    if (btf) {
      try {
        for (const [full, id] of btf.enumValues('skb_drop_reason_subsys')) {
          const name = full.replace(/^SKB_DROP_REASON_SUBSYS_/, '');
          if (id <= 0 || id > 0xffff || name === 'NUM' || name === full || !/^[A-Z0-9_]{1,64}$/.test(name)) continue;
          subs.set(id, { id, name, names: new Map(), lookedAt: -Infinity, complete: false });
        }
      } catch (err) {
        if (!(err instanceof ParseError)) throw err;
        subs.clear();
      }
    }
    this.subsystems = subs;
    return subs;
  }

  private subsystem(id: number): Subsystem | undefined {
    const sub = this.subsystemTable().get(id);
    if (sub && !sub.complete && sub.lookedAt === -Infinity) this.refresh(sub);
    return sub;
  }

  /**
   * Look for a subsystem's reason names again, at most once per retry
   * interval; true when something new was read.
   */
  private refresh(sub: Subsystem): boolean {
    if (sub.complete) return false;
    const t = this.now();
    if (t - sub.lookedAt < this.retryMs) return false;
    sub.lookedAt = t;
    const vmlinux = this.vmlinux();
    if (!vmlinux) return false;
    const found = new Map<number, string>();
    try {
      collectSubsystemNames(vmlinux, sub.id, found);
    } catch (err) {
      if (!(err instanceof ParseError)) throw err;
    }
    for (const module of moduleCandidates(sub.name)) {
      const path = join(this.btfDir, module);
      if (!existsSync(path)) continue;
      try {
        collectSubsystemNames(Btf.parse(readFileSync(path), vmlinux), sub.id, found);
      } catch (err) {
        // A module BTF we cannot read (unloaded meanwhile, damaged): numbers for now.
        if (!(err instanceof ParseError) && !(err as NodeJS.ErrnoException).code) throw err;
      }
    }
    if (found.size === 0) return false;
    sub.names = found;
    sub.complete = true;
    return true;
  }
}

/**
 * Module BTF files that may hold a subsystem's enum: its name in lower case,
 * then without trailing words ("MAC80211_UNUSABLE" -> mac80211_unusable,
 * mac80211), as the kernel's modules are named.
 */
export function moduleCandidates(subsysName: string): string[] {
  const out: string[] = [];
  const words = subsysName.toLowerCase().split('_');
  for (let n = words.length; n > 0 && out.length < MAX_MODULE_CANDIDATES; n--) {
    const m = words.slice(0, n).join('_');
    // Only plain module names: a hostile enum name never becomes a path.
    if (/^[a-z0-9_-]{1,56}$/.test(m) && m !== 'vmlinux') out.push(m);
  }
  return out;
}

/**
 * Add to `out` the reason names of subsystem `subsys` found in `btf`'s own
 * enums named like *drop_reason* (not the core enums). The kernel's enums hold
 * the whole value, so the subsystem is told by the upper 16 bits. Names:
 * a plain name wins; mac80211's sparse-checking twin enum spells each name
 * with three leading underscores, kept stripped when there is no plain one
 * (its base value ___RX_DROP_UNUSABLE is the string RX_DROP_UNUSABLE in the
 * kernel's table); other __-prefixed names and *_MAX are enum bounds, not
 * reasons (__OVS_DROP_REASON, OVS_DROP_MAX).
 */
export function collectSubsystemNames(btf: Btf, subsys: number, out: Map<number, string>): void {
  const plain = new Map<number, string>();
  const stripped = new Map<number, string>();
  for (const id of btf.enumTypes((n) => n.includes('drop_reason') && n !== 'skb_drop_reason' && n !== 'skb_drop_reason_subsys')) {
    if (btf.kind(id) !== BtfKind.ENUM && btf.kind(id) !== BtfKind.ENUM64) continue;
    for (const e of btf.enumerators(id)) {
      if (!Number.isInteger(e.value) || e.value < 0 || e.value > 0xffffffff) continue;
      if (subsysOf(e.value) !== subsys) continue;
      const code = e.value & 0xffff;
      if (/_MAX$/.test(e.name) || !/^_*[A-Za-z0-9_]{1,64}$/.test(e.name)) continue;
      if (!e.name.startsWith('_')) {
        if (!plain.has(code)) plain.set(code, e.name);
      } else if (e.name.startsWith('___') && !e.name.startsWith('____')) {
        if (!stripped.has(code)) stripped.set(code, e.name.slice(3));
      }
    }
  }
  for (const [code, n] of stripped) if (!plain.has(code)) out.set(code, n);
  for (const [code, n] of plain) out.set(code, n);
}

/**
 * The knowledge base: exact lookups by name or alias (correlation, diagnosis,
 * the benign policy), what a name means (`dropmon explain`, the service's
 * /explain), and the relations between reasons and counters. Counter
 * families match by regular expression (driver `ethtool -S` names such as
 * rx_queue_3_drops). And the cause behind a reason several causes share
 * (refine: the rules of kb/refinements.yaml, see refine.ts).
 */
import type { Benign, KnowledgeView, RefineContext } from '../core/knowledge-view.js';
import { ENTRY_KINDS, normalizeCounterName, normalizeReasonName, normalizeSymbolName, type EntryKind, type KnowledgeEntry } from './entry.js';
import { evidenceOf, fillTemplate, matchWhen, movedCounterNames, type Bindings } from './refine.js';
import { SearchIndex, type SearchHit } from './search.js';
import { unknownReasonEntry } from './unknown.js';

/** The answer to "what is NAME?" (dropmon explain, the service's /explain). */
export interface Explanation {
  /** exact: an entry is named so; unknown: a reason of the running kernel with no entry; fuzzy: the closest entry. */
  readonly match: 'exact' | 'unknown' | 'fuzzy';
  readonly entry: KnowledgeEntry;
  /** How close the entry's name is to the query, 0..1 (1 for exact and unknown). */
  readonly score: number;
  /** Other close entries, best first. */
  readonly hits: readonly SearchHit[];
}

export class KnowledgeBase implements KnowledgeView {
  private readonly byKind = new Map<EntryKind, Map<string, KnowledgeEntry>>();
  private readonly patterns: { re: RegExp; entry: KnowledgeEntry }[] = [];
  private readonly entries: readonly KnowledgeEntry[];
  /** Refined causes by the reason they refine, in file order (the first that applies wins). */
  private readonly refinements = new Map<string, KnowledgeEntry[]>();
  /** Built on the first search: lookups by name never need it. */
  private searchIndex: SearchIndex | undefined;

  constructor(compiled: readonly KnowledgeEntry[]) {
    for (const e of compiled) {
      if (!e.refines || !e.when) continue;
      const list = this.refinements.get(e.refines) ?? [];
      list.push(e);
      this.refinements.set(e.refines, list);
    }
    // Looked up by name (dropmon explain, search), a refined cause reads with stand-ins for what a match fills in.
    const entries = compiled.map((e) => (e.refines ? filled(e, {}, undefined) : e));
    this.entries = entries;
    for (const kind of ENTRY_KINDS) this.byKind.set(kind, new Map());
    for (const e of entries) {
      const map = this.byKind.get(e.kind)!;
      // Names first, then aliases: an alias never shadows another entry's name.
      map.set(this.key(e.kind, e.name), e);
      if (e.pattern) this.patterns.push({ re: new RegExp(e.pattern, 'i'), entry: e });
    }
    for (const e of entries) {
      const map = this.byKind.get(e.kind)!;
      for (const a of e.aliases) if (!map.has(this.key(e.kind, a))) map.set(this.key(e.kind, a), e);
    }
  }

  private key(kind: EntryKind, name: string): string {
    switch (kind) {
      case 'reason':
        return normalizeReasonName(name);
      case 'symbol':
        return normalizeSymbolName(name).toLowerCase();
      case 'counter':
        return normalizeCounterName(name).toLowerCase();
      case 'trap':
        return name.trim().replace(/^trap:/i, '').toLowerCase();
    }
  }

  private exact(kind: EntryKind, name: string): KnowledgeEntry | undefined {
    return this.byKind.get(kind)!.get(this.key(kind, name));
  }

  /**
   * A reason by name or alias. A subsystem's reason (OPENVSWITCH/OVS_DROP_METER)
   * is also found by its bare name (an alias, as NET_DM spells it), and one
   * this kb does not list (OPENVSWITCH/code 12, a newer kernel's reason)
   * falls back to its subsystem's entry (SUBSYS_OPENVSWITCH).
   */
  reason(name: string): KnowledgeEntry | undefined {
    return this.exact('reason', name) ?? this.subsystemEntry(name);
  }

  private subsystemEntry(name: string): KnowledgeEntry | undefined {
    const slash = name.indexOf('/');
    if (slash <= 0) return undefined;
    const subsys = normalizeReasonName(name.slice(0, slash));
    return /^[A-Z0-9_]+$/.test(subsys) ? this.exact('reason', `SUBSYS_${subsys}`) : undefined;
  }

  /**
   * A reason's entry, or the honest generic one when the knowledge base does
   * not have it (never undefined), with what the drop location's function
   * (`symbol`, in any %pS form) says.
   */
  explainReason(name: string, symbol?: string): KnowledgeEntry {
    return this.reason(name) ?? unknownReasonEntry(name, symbol ? this.symbol(symbol) : undefined);
  }

  /** Exact name (case-insensitive, `@scope` ignored), then the families' patterns. */
  counter(name: string): KnowledgeEntry | undefined {
    const exact = this.exact('counter', name);
    if (exact) return exact;
    const bare = normalizeCounterName(name);
    return this.patterns.find((p) => p.re.test(bare))?.entry;
  }

  trap(name: string): KnowledgeEntry | undefined {
    return this.exact('trap', name);
  }

  /** A kernel function, also in its %pS form "func+0x12/0x80 [module]". */
  symbol(name: string): KnowledgeEntry | undefined {
    return this.exact('symbol', name);
  }

  /**
   * Any kind, by name or alias. Reason names are upper case and functions
   * lower case, so "QDISC_DROP" is the reason and "qdisc_drop" the function.
   * A name like "trap:tail_drop" finds the trap before the trap-counter family.
   */
  lookup(name: string, kind?: EntryKind): KnowledgeEntry | undefined {
    const kinds: readonly EntryKind[] = kind ? [kind] : /[A-Z]/.test(name) ? ENTRY_KINDS : ['symbol', 'trap', 'counter', 'reason'];
    for (const k of kinds) {
      const e = this.exact(k, name);
      if (e) return e;
    }
    if (!kind || kind === 'trap') {
      const t = /^trap:/i.test(name.trim()) ? this.trap(name) : undefined;
      if (t) return t;
    }
    return !kind || kind === 'counter' ? this.counter(name) : undefined;
  }

  /**
   * What a name means: an exact entry; else, when the running kernel has a
   * reason of that name (`isKernelReason`), the honest generic entry rather
   * than a look-alike; else the closest entries. Undefined when nothing is close.
   */
  explain(query: string, limit = 5, kind?: EntryKind, isKernelReason?: (name: string) => boolean): Explanation | undefined {
    const exact = this.lookup(query, kind);
    const hits = this.search(query, limit + 1, kind).filter((h) => h.entry !== exact);
    if (exact) return { match: 'exact', entry: exact, score: 1, hits: hits.slice(0, limit) };
    if ((!kind || kind === 'reason') && isKernelReason?.(normalizeReasonName(query))) {
      return { match: 'unknown', entry: unknownReasonEntry(query), score: 1, hits: hits.slice(0, limit) };
    }
    if (!hits.length) return undefined;
    return { match: 'fuzzy', entry: hits[0].entry, score: hits[0].score, hits: hits.slice(1, limit + 1) };
  }

  /** All entries, or those of one kind, in file order. */
  all(kind?: EntryKind): KnowledgeEntry[] {
    return this.entries.filter((e) => !kind || e.kind === kind);
  }

  /** Fuzzy search: typos, case, partial words ("rcvbuf", "listen overflow"). Best first. */
  search(query: string, limit = 5, kind?: EntryKind): SearchHit[] {
    return (this.searchIndex ??= new SearchIndex(this.entries)).search(query, limit, kind);
  }

  /**
   * The refined cause behind drops of `reason`: the first rule of
   * kb/refinements.yaml for that reason whose conditions hold, with its texts
   * naming what matched (the nftables rule, the qdisc, sysctl values).
   * Undefined when none applies: the reason's own entry stands.
   */
  refine(reason: string, context: RefineContext): (KnowledgeEntry & { evidence?: readonly string[]; confirmedBy?: readonly string[] }) | undefined {
    const r = this.reason(reason);
    if (r?.refines) return undefined;
    const rules = this.refinements.get(r?.name ?? normalizeReasonName(reason));
    if (!rules) return undefined;
    const moved = movedCounterNames(context.countersMoved);
    for (const e of rules) {
      const bind = matchWhen(e.when ?? [], context, moved);
      if (!bind) continue;
      const evidence = evidenceOf(e.sysctls, bind, context.config, context.packets);
      return { ...filled(e, bind, context.config), ...(evidence.length ? { evidence } : {}), ...(bind.counters?.length ? { confirmedBy: bind.counters } : {}) };
    }
    return undefined;
  }

  /** The refined causes of a reason, in the order they are tried. */
  refinementsOf(reason: string): readonly KnowledgeEntry[] {
    return this.refinements.get(this.reason(reason)?.name ?? normalizeReasonName(reason)) ?? [];
  }

  /** The counters that count the drops of a reason: declared on either side. */
  countersForReason(reason: string): string[] {
    const r = this.reason(reason);
    const name = r?.name ?? normalizeReasonName(reason);
    const out = new Set(r?.counters ?? []);
    for (const c of this.all('counter')) if (c.reasons.some((x) => normalizeReasonName(x) === name)) out.add(c.name);
    return [...out].sort();
  }

  /**
   * The drop reasons behind a counter: declared on either side. Old spellings
   * of a reason (aliases such as PTYPE_ABSENT) are included, so that events of
   * older kernels pair too.
   */
  reasonsForCounter(counter: string): string[] {
    const c = this.counter(counter);
    const names = new Set([normalizeCounterName(counter).toLowerCase()]);
    if (c) names.add(c.name.toLowerCase());
    const out = new Set<string>();
    const add = (reasonName: string) => {
      const r = this.reason(reasonName);
      if (!r) {
        out.add(normalizeReasonName(reasonName));
        return;
      }
      out.add(r.name);
      for (const a of r.aliases) if (!/^SKB_DROP_REASON_/i.test(a)) out.add(normalizeReasonName(a));
    };
    for (const r of c?.reasons ?? []) add(r);
    // Refined causes have no counters of their own (validated): the scan meets only reasons.
    const scanned = this.all('reason').filter((r) => r.counters.some((x) => names.has(x.toLowerCase())));
    for (const r of scanned.sort((a, b) => a.name.localeCompare(b.name))) add(r.name);
    // The counter's own list first, in its order: a counter-only cause is named after the first (the most general).
    return [...out];
  }

  /**
   * Is a drop with this reason (at this function) usually harmless? A symbol
   * entry decides when it lists the reason, or when it lists no reasons and is
   * itself benign (a function whose every drop is housekeeping); otherwise the
   * reason's entry decides. Unknown reasons are never called benign.
   */
  benign(reasonName: string, symbol?: string): Benign {
    const r = this.reason(reasonName);
    if (symbol) {
      const s = this.symbol(symbol);
      const reason = r?.name ?? normalizeReasonName(reasonName);
      if (s && s.reasons.some((x) => normalizeReasonName(x) === reason)) return s.benign;
      if (s && s.reasons.length === 0 && s.benign !== 'no') return s.benign;
    }
    return r?.benign ?? 'no';
  }

  /** References (counters/reasons/symbols of entries) that name no entry: the kb's own consistency check. */
  danglingReferences(): string[] {
    const out: string[] = [];
    for (const e of this.entries) {
      for (const c of e.counters) if (!this.counter(c)) out.push(`${e.file} ${e.name}: counter ${c}`);
      for (const r of e.reasons) if (!this.reason(r)) out.push(`${e.file} ${e.name}: reason ${r}`);
      for (const s of e.symbols) if (!this.symbol(s)) out.push(`${e.file} ${e.name}: symbol ${s}`);
    }
    return out;
  }
}

/** A refined cause's texts with what matched filled in (or stand-ins: TABLE, IFACE, <sysctl>). */
function filled(e: KnowledgeEntry, bind: Bindings, config: RefineContext['config']): KnowledgeEntry {
  const fill = (t: string) => fillTemplate(t, bind, config);
  return {
    ...e,
    summary: fill(e.summary),
    ...(e.meaning ? { meaning: fill(e.meaning) } : {}),
    ...(e.benignWhen ? { benignWhen: fill(e.benignWhen) } : {}),
    check: e.check.map(fill),
    fix: e.fix.map(fill),
  };
}

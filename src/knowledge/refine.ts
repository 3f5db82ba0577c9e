/**
 * Refinement rules: how the knowledge base tells apart the causes of a reason
 * that several causes share (kb/refinements.yaml, schema in kb/README.md).
 * A rule names the reason it refines and when it applies: where the drops
 * happened (the function of the drop location), which counters moved with
 * them, and the configuration read at the time (sysctls, the nftables rules
 * that can drop and whose counters moved, the qdiscs that dropped, the tc
 * filters on the hooks). Its texts may name what matched ({{rule}},
 * {{qdisc}}, {{sysctl:net.ipv4.ip_forward}}), filled in when the rule
 * applies, and what matched becomes evidence lines of the finding.
 *
 * Here: the conditions' validation at build time (compile.ts), matching them
 * against what a diagnosis knows, filling the texts and the evidence (base.ts).
 */
import type { ConfigFacts, NftRuleFact, QdiscFact, TcFilterFact } from '../core/config-facts.js';
import type { RefineContext } from '../core/knowledge-view.js';
import { normalizeCounterName, normalizeSymbolName, type NftFlag, type RefineCondition } from './entry.js';

/** What each nft flag of a condition means. */
export const NFT_FLAGS: Readonly<Record<NftFlag, string>> = {
  present: 'the ruleset was read',
  absent: 'the ruleset could not be read (no nft, no permission)',
  'rule-moved': 'the counter of a drop or reject rule (not a ct state invalid one) moved',
  'ct-invalid-rule': 'a drop or reject rule matches ct state invalid',
  'ct-invalid-rule-moved': 'the counter of a drop or reject rule matching ct state invalid moved',
  'ct-invalid-rule-uncounted': 'a drop or reject rule matching ct state invalid has no counter',
  uncounted: 'a drop or reject rule without a counter, or a base chain with policy drop, exists',
  'no-drop-rules': 'the ruleset was read and nothing in it drops',
};

const CONDITION_KEYS = new Set(['function', 'counters', 'noCounters', 'sysctl', 'nft', 'qdisc', 'qdiscParam', 'qdiscMoved', 'tc']);
const TC_TOKEN = /^(ingress|egress):(bpf|police|drop|any|none)$/;
const COMPARISON = /^(>=|<=|!=|>|<|=)\s*(-?\d+(\.\d+)?)$/;

/**
 * The names a rule's texts may use between {{ }}, and what stands in their
 * place when nothing matched them: placeholders in the knowledge base's own
 * style (IFACE, TABLE), so that commands still read as templates.
 */
export const TEMPLATE_FALLBACK: Readonly<Record<string, string>> = {
  rule: 'RULE',
  'rule.where': 'table FAMILY TABLE, chain CHAIN',
  family: 'FAMILY',
  table: 'TABLE',
  chain: 'CHAIN',
  handle: 'HANDLE',
  moved: 'N',
  candidates: 'the drop rules and drop policies of the ruleset',
  qdisc: 'the qdisc',
  'qdisc.kind': 'KIND',
  'qdisc.handle': 'HANDLE',
  'qdisc.parent': 'PARENT',
  'qdisc.limit': 'LIMIT',
  'qdisc.loss': 'LOSS',
  iface: 'IFACE',
  filter: 'the filter',
  'filter.pref': 'PREF',
  program: 'PROG',
};
const TEMPLATE = /\{\{\s*([a-z.]+|sysctl:[A-Za-z0-9_.*-]+)\s*\}\}/g;

/** Why a rule's `when` is malformed (for the compiler's message), or undefined when it is well formed. */
export function parseWhen(raw: unknown): { conditions?: RefineCondition[]; problem?: string } {
  const alternatives = Array.isArray(raw) ? raw : [raw];
  if (!alternatives.length) return { problem: 'must be a mapping of conditions or a non-empty list of them' };
  const out: RefineCondition[] = [];
  for (const [i, alt] of alternatives.entries()) {
    const where = alternatives.length > 1 ? `alternative ${i + 1}: ` : '';
    if (typeof alt !== 'object' || alt === null || Array.isArray(alt)) return { problem: `${where}must be a mapping of conditions` };
    const o = alt as Record<string, unknown>;
    const keys = Object.keys(o);
    if (!keys.length) return { problem: `${where}has no condition` };
    const c: { -readonly [K in keyof RefineCondition]: RefineCondition[K] } = {};
    for (const k of keys) {
      if (!CONDITION_KEYS.has(k)) return { problem: `${where}"${k}" is not a condition (${[...CONDITION_KEYS].join(', ')})` };
      const v = o[k];
      switch (k) {
        case 'function':
        case 'counters':
        case 'noCounters':
        case 'qdisc': {
          const list = stringList(v);
          if (!list) return { problem: `${where}"${k}" must be a non-empty list of names` };
          c[k] = list;
          break;
        }
        case 'nft': {
          const list = stringList(v);
          const bad = list?.find((f) => !(f in NFT_FLAGS));
          if (!list || bad !== undefined) return { problem: `${where}"nft" must list flags of ${Object.keys(NFT_FLAGS).join(', ')}${bad !== undefined ? ` (not ${bad})` : ''}` };
          c.nft = list as NftFlag[];
          break;
        }
        case 'sysctl': {
          if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.keys(v).length) return { problem: `${where}"sysctl" must map sysctl names to a value or a list of values` };
          const m: Record<string, string[]> = {};
          for (const [name, val] of Object.entries(v as Record<string, unknown>)) {
            if (!/^[a-z0-9_]+(\.([A-Za-z0-9_-]+|\*))+$/.test(name)) return { problem: `${where}"sysctl" name ${JSON.stringify(name)} is not a dotted sysctl name` };
            const vals = (Array.isArray(val) ? val : [val]).map((x) => (typeof x === 'number' ? String(x) : x));
            if (!vals.length || vals.some((x) => typeof x !== 'string' || !x.trim())) return { problem: `${where}"sysctl" ${name} must be a value or a list of values` };
            m[name] = (vals as string[]).map((x) => x.trim());
          }
          c.sysctl = m;
          break;
        }
        case 'tc': {
          const list = stringList(v);
          const bad = list?.find((t) => !TC_TOKEN.test(t));
          if (!list || bad !== undefined) return { problem: `${where}"tc" must list HOOK:WHAT tokens (ingress or egress; bpf, police, drop, any, none)${bad !== undefined ? ` (not ${bad})` : ''}` };
          c.tc = list;
          break;
        }
        case 'qdiscParam':
        case 'qdiscMoved': {
          if (typeof v !== 'object' || v === null || Array.isArray(v) || !Object.keys(v).length) return { problem: `${where}"${k}" must map parameter names to comparisons like ">0"` };
          const m: Record<string, string> = {};
          for (const [name, val] of Object.entries(v as Record<string, unknown>)) {
            const text = typeof val === 'number' ? `=${val}` : val;
            if (typeof text !== 'string' || !COMPARISON.test(text.trim())) return { problem: `${where}"${k}" ${name} must be a comparison like ">0", ">=10" or "=0"` };
            m[name] = text.trim();
          }
          c[k] = m;
          break;
        }
      }
    }
    if ((c.qdiscParam || c.qdiscMoved) && !c.qdisc) return { problem: `${where}"qdiscParam" and "qdiscMoved" need "qdisc" (the kinds they apply to)` };
    out.push(c);
  }
  return { conditions: out };
}

function stringList(v: unknown): string[] | undefined {
  const list = Array.isArray(v) ? v : typeof v === 'string' ? [v] : undefined;
  if (!list?.length || list.some((x) => typeof x !== 'string' || !x.trim())) return undefined;
  return list.map((x: string) => x.trim());
}

/** The {{names}} of a text that are not template names. */
export function unknownTemplateNames(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g)) if (!(m[1] in TEMPLATE_FALLBACK) && !/^sysctl:[A-Za-z0-9_.*-]+$/.test(m[1])) out.push(m[1]);
  return out;
}

/** "ip_forward+0x1c/0x90 [kernel]", "ip_forward.cold" -> "ip_forward". */
function functionName(location: string): string {
  return normalizeSymbolName(location)
    .replace(/\.(cold|isra|part|constprop|llvm)(\.\d+)*$/g, '')
    .toLowerCase();
}

function compare(value: number, expr: string): boolean {
  const m = COMPARISON.exec(expr);
  if (!m) return false;
  const n = Number(m[2]);
  switch (m[1]) {
    case '>':
      return value > n;
    case '>=':
      return value >= n;
    case '<':
      return value < n;
    case '<=':
      return value <= n;
    case '=':
      return value === n;
    default:
      return value !== n;
  }
}

function sysctlValueMatches(actual: string, wanted: string): boolean {
  if (COMPARISON.test(wanted)) {
    const n = Number(actual.trim().split(/\s+/)[0]);
    return Number.isFinite(n) && compare(n, wanted);
  }
  return actual.trim() === wanted;
}

/** The sysctls (name and value) a name with `*` parts matches. */
function sysctlMatches(sysctls: Readonly<Record<string, string>>, name: string): [string, string][] {
  if (!name.includes('*')) return name in sysctls ? [[name, sysctls[name]]] : [];
  const re = new RegExp(`^${name.split('.').map((p) => (p === '*' ? '[^.]+' : p.replace(/[-]/g, '\\-'))).join('\\.')}$`);
  return Object.keys(sysctls)
    .filter((k) => re.test(k))
    .map((k) => [k, sysctls[k]]);
}

function sysctlValues(sysctls: Readonly<Record<string, string>>, name: string): string[] {
  return sysctlMatches(sysctls, name).map(([, v]) => v);
}

/** What a matching rule's texts can name: the nft rule, the qdisc, the candidates. */
export interface Bindings {
  rule?: NftRuleFact;
  candidates?: string[];
  qdisc?: QdiscFact;
  /** The sysctls whose values made the conditions hold, and those values. */
  sysctls?: [string, string][];
  /** The tc filter that made a tc condition hold. */
  filter?: TcFilterFact;
  /** The counters whose move made a counters condition hold. */
  counters?: string[];
}

const isCtInvalid = (r: NftRuleFact) => r.ctStates?.includes('invalid') ?? false;
/** What a rule's counter counted: since the first reading, or on a single reading (no baseline) its whole value. */
const counted = (r: NftRuleFact) => r.moved ?? r.packets ?? 0;
const mostMoved = (rs: readonly NftRuleFact[]) => [...rs].sort((a, b) => counted(b) - counted(a))[0];

function nftHolds(flag: NftFlag, config: ConfigFacts | undefined, bind: Bindings): boolean {
  const nft = config?.nft;
  if (flag === 'absent') return config !== undefined && nft === undefined;
  if (!nft) return false;
  const rules = nft.dropRules;
  switch (flag) {
    case 'present':
      return true;
    case 'rule-moved': {
      const moved = rules.filter((r) => !isCtInvalid(r) && counted(r) > 0);
      if (moved.length) bind.rule = mostMoved(moved);
      return moved.length > 0;
    }
    case 'ct-invalid-rule': {
      const ct = rules.filter(isCtInvalid);
      if (ct.length) bind.rule ??= mostMoved(ct);
      return ct.length > 0;
    }
    case 'ct-invalid-rule-moved': {
      const ct = rules.filter((r) => isCtInvalid(r) && counted(r) > 0);
      if (ct.length) bind.rule = mostMoved(ct);
      return ct.length > 0;
    }
    case 'ct-invalid-rule-uncounted': {
      const ct = rules.filter((r) => isCtInvalid(r) && r.packets === undefined);
      if (ct.length) bind.rule ??= ct[0];
      return ct.length > 0;
    }
    case 'uncounted': {
      const c = [
        ...rules.filter((r) => r.packets === undefined).map((r) => `${r.family} ${r.table} ${r.chain}: ${r.text} (handle ${r.handle})`),
        ...nft.dropPolicies.map((p) => `${p.family} ${p.table} ${p.chain}: policy drop${p.hook ? ` (hook ${p.hook})` : ''}`),
      ];
      if (c.length) bind.candidates = c;
      return c.length > 0;
    }
    case 'no-drop-rules':
      return rules.length === 0 && nft.dropPolicies.length === 0 && !nft.truncated;
  }
}

/** The qdiscs of these kinds that dropped: those whose drops moved, or, on a single reading, those with drops. */
function droppingQdiscs(qdiscs: readonly QdiscFact[], kinds: readonly string[]): QdiscFact[] {
  const diffed = qdiscs.some((q) => q.moved !== undefined);
  const dropped = qdiscs.filter((q) => (diffed ? (q.moved ?? 0) > 0 : (q.drops ?? 0) > 0));
  return dropped.filter((q) => kinds.includes(q.kind)).sort((a, b) => (b.moved ?? b.drops ?? 0) - (a.moved ?? a.drops ?? 0));
}

/** Does a `HOOK:WHAT` token hold for the filters read? Binds the filter that makes it hold. */
function tcHolds(token: string, filters: readonly TcFilterFact[], bind: Bindings): boolean {
  const m = TC_TOKEN.exec(token);
  if (!m) return false;
  const onHook = filters.filter((f) => f.direction === m[1]);
  if (m[2] === 'none') return onHook.length === 0;
  const test: Record<string, (f: TcFilterFact) => boolean> = {
    bpf: (f) => f.kind === 'bpf',
    police: (f) => f.actions.includes('police'),
    drop: (f) => f.dropAction === true,
    any: () => true,
  };
  const f = onHook.find(test[m[2]]);
  if (f) bind.filter = f;
  return f !== undefined;
}

function conditionHolds(c: RefineCondition, ctx: RefineContext, moved: ReadonlySet<string>, bind: Bindings): boolean {
  if (c.function) {
    if (!ctx.function) return false;
    const fn = functionName(ctx.function);
    if (!c.function.some((f) => f.toLowerCase() === fn)) return false;
  }
  if (c.counters) {
    const hit = c.counters.filter((n) => moved.has(n.toLowerCase()));
    if (!hit.length) return false;
    (bind.counters ??= []).push(...hit);
  }
  if (c.noCounters?.some((n) => moved.has(n.toLowerCase()))) return false;
  if (c.sysctl) {
    const sysctls = ctx.config?.sysctls;
    if (!sysctls) return false;
    for (const [name, wanted] of Object.entries(c.sysctl)) {
      const hits = sysctlMatches(sysctls, name).filter(([, v]) => wanted.some((w) => sysctlValueMatches(v, w)));
      if (!hits.length) return false;
      (bind.sysctls ??= []).push(...hits.slice(0, 4));
    }
  }
  if (c.nft && !c.nft.every((f) => nftHolds(f, ctx.config, bind))) return false;
  if (c.tc) {
    const filters = ctx.config?.tcFilters;
    if (!filters || !c.tc.every((t) => tcHolds(t, filters, bind))) return false;
  }
  if (c.qdisc) {
    const qdiscs = ctx.config?.qdiscs;
    if (!qdiscs) return false;
    const q = droppingQdiscs(qdiscs, c.qdisc).find(
      (x) =>
        Object.entries(c.qdiscParam ?? {}).every(([k, e]) => x.params?.[k] !== undefined && compare(x.params[k], e)) &&
        Object.entries(c.qdiscMoved ?? {}).every(([k, e]) => x.movedParams?.[k] !== undefined && compare(x.movedParams[k], e)),
    );
    if (!q) return false;
    bind.qdisc = q;
  }
  return true;
}

/** Counter names as conditions compare them: lower case, without an `@scope`. */
export function movedCounterNames(names: Iterable<string> | undefined): Set<string> {
  const out = new Set<string>();
  for (const n of names ?? []) out.add(normalizeCounterName(n).toLowerCase());
  return out;
}

/** The bindings of the first alternative that holds, or undefined when none does. */
export function matchWhen(when: readonly RefineCondition[], ctx: RefineContext, moved: ReadonlySet<string>): Bindings | undefined {
  for (const alt of when) {
    const bind: Bindings = {};
    if (conditionHolds(alt, ctx, moved, bind)) return bind;
  }
  return undefined;
}

/** "bpf filter pref 49152 (program tc_ingress, direct action) on the ingress of eth0". */
function filterText(f: TcFilterFact): string {
  const prog = f.program || f.directAction ? ` (${[f.program ? `program ${f.program}` : '', f.directAction ? 'direct action' : ''].filter(Boolean).join(', ')})` : '';
  const acts = f.actions.length ? `, actions ${f.actions.join(' ')}` : '';
  return `${f.kind} filter pref ${f.pref}${prog}${acts} on the ${f.direction} of ${f.iface}`;
}

function fmtNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(2).replace(/\.?0+$/, '');
}

/**
 * A rule's text with its {{names}} filled from what matched (or their
 * stand-ins). Without a configuration (`dropmon explain`), a sysctl reads as
 * <its name>; with one that lacks it, as "?".
 */
export function fillTemplate(text: string, bind: Bindings, config: ConfigFacts | undefined): string {
  if (!text.includes('{{')) return text;
  const r = bind.rule;
  const q = bind.qdisc;
  const values: Record<string, string | undefined> = {
    rule: r?.text,
    'rule.where': r ? `table ${r.family} ${r.table}, chain ${r.chain}, handle ${r.handle}` : undefined,
    family: r?.family,
    table: r?.table,
    chain: r?.chain,
    handle: r ? String(r.handle) : undefined,
    moved: r?.moved !== undefined ? String(r.moved) : undefined,
    candidates: bind.candidates ? bind.candidates.slice(0, 4).join('; ') + (bind.candidates.length > 4 ? `; and ${bind.candidates.length - 4} more` : '') : undefined,
    qdisc: q ? `${q.kind} ${q.handle} on ${q.iface}` : undefined,
    'qdisc.kind': q?.kind,
    'qdisc.handle': q?.handle,
    'qdisc.parent': q?.parent,
    'qdisc.limit': q?.params?.limit !== undefined ? fmtNumber(q.params.limit) : undefined,
    'qdisc.loss': q?.params?.lossModel ? 'a loss model' : q?.params?.loss !== undefined ? `${fmtNumber(q.params.loss)}%` : undefined,
    iface: q?.iface ?? bind.filter?.iface,
    filter: bind.filter ? filterText(bind.filter) : undefined,
    'filter.pref': bind.filter ? String(bind.filter.pref) : undefined,
    program: bind.filter?.program,
  };
  return text.replace(TEMPLATE, (_all, name: string) => {
    if (name.startsWith('sysctl:')) {
      const key = name.slice(7);
      if (!config) return `<${key}>`;
      const vals = sysctlValues(config.sysctls, key);
      return vals.length ? [...new Set(vals)].join('/') : '?';
    }
    return values[name] ?? TEMPLATE_FALLBACK[name] ?? name;
  });
}

/**
 * What the configuration showed, for a finding's evidence: the sysctls that
 * made the rule hold and those it asks to show, the nft rule (its counter's
 * move), the candidates when no counted rule moved, the qdisc that dropped.
 */
export function evidenceOf(show: readonly string[] | undefined, bind: Bindings, config: ConfigFacts | undefined, packets?: number): string[] {
  const out: string[] = [];
  const r = bind.rule;
  if (r) {
    const moved = r.moved !== undefined ? `: +${r.moved} packets` : r.packets === undefined ? ': no counter' : `: ${r.packets} packets (one reading: no baseline)`;
    out.push(`nft rule "${r.text}" (table ${r.family} ${r.table}, chain ${r.chain}, handle ${r.handle})${moved}`);
    const rest = r.moved !== undefined && packets !== undefined ? unexplainedDrops(config, packets) : undefined;
    if (rest) out.push(rest);
  }
  if (bind.candidates) out.push(`nft: no counted drop rule moved; could have dropped: ${bind.candidates.slice(0, 4).join('; ')}${bind.candidates.length > 4 ? `; and ${bind.candidates.length - 4} more` : ''}`);
  const q = bind.qdisc;
  if (q) {
    const params = Object.entries(q.params ?? {}).map(([k, v]) => `${k} ${fmtNumber(v)}`);
    out.push(`qdisc ${q.kind} ${q.handle} on ${q.iface} (parent ${q.parent}): ${q.moved !== undefined ? `+${q.moved}` : `${q.drops ?? 0}`} drops${params.length ? `; ${params.join(', ')}` : ''}`);
  }
  if (bind.filter) out.push(`tc ${filterText(bind.filter)}`);
  const sysctls = new Map<string, string>(bind.sysctls ?? []);
  for (const name of show ?? []) for (const [k, v] of config ? sysctlMatches(config.sysctls, name) : []) if (!sysctls.has(k)) sysctls.set(k, v);
  if (sysctls.size) out.push(`sysctl ${[...sysctls].map(([k, v]) => `${k} = ${v}`).join(', ')}`);
  return out;
}

/**
 * When the counted rules that moved explain clearly fewer packets than were
 * dropped, the rest came from rules without a counter or a drop policy: say
 * how many and which could have, so that a counter can be added to them.
 */
function unexplainedDrops(config: ConfigFacts | undefined, packets: number): string | undefined {
  const nft = config?.nft;
  if (!nft) return undefined;
  const counted = nft.dropRules.reduce((n, x) => n + (x.moved ?? 0), 0);
  const rest = packets - counted;
  if (rest <= Math.max(5, packets * 0.1)) return undefined; // counters and drop events are read at slightly different moments
  const bind: Bindings = {};
  if (!nftHolds('uncounted', config, bind)) return undefined;
  const c = bind.candidates ?? [];
  return `${rest} of the ${packets} drops are counted by no rule: a rule without a counter or a drop policy dropped them (${c.slice(0, 4).join('; ')}${c.length > 4 ? `; and ${c.length - 4} more` : ''}); add counter to those rules to see which`;
}

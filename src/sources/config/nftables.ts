/**
 * The nftables rules that can drop, from `nft -j list ruleset`: every rule
 * with a drop or reject verdict (also inside a verdict map), its counter when
 * it has one, the conntrack states it matches, and the base chains whose
 * policy is drop. A diagnosis reads the ruleset twice and names the rule
 * whose counter moved (see core/config-facts.ts configMoved).
 *
 * The ruleset is read with the nft program (no shell, a timeout, a bounded
 * output): the nftables netlink protocol is large, and nft's JSON is its own
 * stable rendering of it. Run synchronously, so that a caller inside another
 * network namespace (src/kernel/setns.ts) reads that namespace's ruleset:
 * the child is forked from the thread that joined it.
 */
import { spawnSync } from 'node:child_process';
import type { NftFacts, NftPolicyFact, NftRuleFact } from '../../core/config-facts.js';

/** Drop rules kept at most: a ruleset of thousands of drop rules (a blocklist) is summarised. */
export const MAX_DROP_RULES = 2000;
/** nft's output read at most. */
const MAX_OUTPUT = 32 * 1024 * 1024;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: Json | undefined): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Does an expression (or anything nested in it: a verdict map's values) hold this verdict? */
function holdsVerdict(v: Json | undefined, verdict: 'drop' | 'reject'): boolean {
  if (Array.isArray(v)) return v.some((x) => holdsVerdict(x, verdict));
  if (!isObject(v)) return false;
  if (verdict in v) return true;
  return Object.values(v).some((x) => holdsVerdict(x, verdict));
}

/** A match's left side as nft prints it: "udp dport", "ct state", "iifname", "meta l4proto". */
function leftText(l: Json | undefined): string {
  if (!isObject(l)) return valueText(l);
  const p = l.payload;
  if (isObject(p)) return p.protocol !== undefined ? `${String(p.protocol)} ${String(p.field)}` : `@${String(p.base)},${String(p.offset)},${String(p.len)}`;
  const ct = l.ct;
  if (isObject(ct)) return `ct${ct.dir !== undefined ? ` ${String(ct.dir)}` : ''} ${String(ct.key)}`;
  const meta = l.meta;
  if (isObject(meta)) return ['iif', 'oif', 'iifname', 'oifname', 'mark'].includes(String(meta.key)) ? String(meta.key) : `meta ${String(meta.key)}`;
  for (const [k, v] of Object.entries(l)) if (isObject(v) && 'key' in v) return `${k} ${String(v.key)}`;
  return JSON.stringify(l);
}

/** A value as nft prints it: 9999, "eth0", { 22, 80 }, 10.1.0.0/16, 1000-2000. */
function valueText(v: Json | undefined, quote = false): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return quote ? JSON.stringify(v) : v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => valueText(x, quote)).join(', ');
  if (Array.isArray(v.set)) return `{ ${v.set.map((x) => valueText(x, quote)).join(', ')} }`;
  if (isObject(v.prefix)) return `${valueText(v.prefix.addr)}/${valueText(v.prefix.len)}`;
  if (Array.isArray(v.range)) return v.range.map((x) => valueText(x)).join('-');
  return JSON.stringify(v);
}

function matchText(m: JsonObject): string {
  const left = leftText(m.left);
  const op = typeof m.op === 'string' && m.op !== '==' && m.op !== 'in' ? `${m.op} ` : '';
  return `${left} ${op}${valueText(m.right, /name$/.test(left))}`;
}

/** One statement of a rule as nft prints it (close enough to recognise the rule; exact text: nft -a list chain). */
function exprText(e: Json): string {
  if (!isObject(e)) return valueText(e);
  const [key, val] = Object.entries(e)[0] ?? ['', null];
  switch (key) {
    case 'match':
      return isObject(val) ? matchText(val) : 'match';
    case 'counter':
      return typeof val === 'string' ? `counter name ${JSON.stringify(val)}` : 'counter';
    case 'log':
      return isObject(val) && typeof val.prefix === 'string' ? `log prefix ${JSON.stringify(val.prefix)}` : 'log';
    case 'limit':
      return isObject(val) ? `limit rate ${val.inv ? 'over ' : ''}${valueText(val.rate)}/${valueText(val.per)}` : 'limit';
    case 'reject':
      return isObject(val) && typeof val.type === 'string' ? `reject with ${val.type}` : 'reject';
    case 'jump':
    case 'goto':
      return isObject(val) ? `${key} ${valueText(val.target)}` : key;
    case 'vmap':
      return isObject(val) ? `${leftText(val.key)} vmap ${valueText(val.data)}` : 'vmap';
    case 'xt':
      return isObject(val) ? `xt ${valueText(val.type)} ${valueText(val.name)}` : 'xt';
    default:
      return val === null ? key : `${key} ${valueText(val)}`;
  }
}

/** The conntrack states a rule matches positively ("ct state invalid", "ct state { invalid, untracked }"). */
function ctStates(exprs: readonly Json[]): string[] | undefined {
  for (const e of exprs) {
    const m = isObject(e) ? e.match : undefined;
    if (!isObject(m) || !isObject(m.left) || !isObject(m.left.ct) || m.left.ct.key !== 'state') continue;
    if (m.op !== '==' && m.op !== 'in') continue;
    const r = m.right;
    const values = typeof r === 'string' ? [r] : Array.isArray(r) ? r : isObject(r) && Array.isArray(r.set) ? r.set : [];
    return values.filter((x): x is string => typeof x === 'string');
  }
  return undefined;
}

/**
 * The drop-capable rules and drop policies of a `nft -j list ruleset`
 * output. Throws a SyntaxError for output that is not JSON; objects it does
 * not know are skipped.
 */
export function parseNftRuleset(text: string): NftFacts {
  const doc = JSON.parse(text) as Json;
  const items = isObject(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  // Named counters ("counter name x" in a rule) keep their values in their own objects.
  const named = new Map<string, number>();
  for (const it of items) {
    const c = isObject(it) ? it.counter : undefined;
    if (isObject(c) && typeof c.name === 'string' && typeof c.packets === 'number') named.set(`${String(c.family)}\0${String(c.table)}\0${c.name}`, c.packets);
  }
  const dropRules: NftRuleFact[] = [];
  const dropPolicies: NftPolicyFact[] = [];
  let rules = 0;
  let truncated = false;
  for (const it of items) {
    if (!isObject(it)) continue;
    const chain = it.chain;
    if (isObject(chain) && chain.policy === 'drop' && typeof chain.hook === 'string')
      dropPolicies.push({ family: String(chain.family), table: String(chain.table), chain: String(chain.name), hook: chain.hook });
    const rule = it.rule;
    if (!isObject(rule) || !Array.isArray(rule.expr)) continue;
    rules++;
    const exprs = rule.expr;
    const verdict = exprs.some((e) => holdsVerdict(e, 'drop')) ? 'drop' : exprs.some((e) => holdsVerdict(e, 'reject')) ? 'reject' : undefined;
    if (!verdict) continue;
    if (dropRules.length >= MAX_DROP_RULES) {
      truncated = true;
      continue;
    }
    const family = String(rule.family);
    const table = String(rule.table);
    let packets: number | undefined;
    for (const e of exprs) {
      const c = isObject(e) ? e.counter : undefined;
      if (isObject(c) && typeof c.packets === 'number') packets = c.packets;
      else if (typeof c === 'string') packets = named.get(`${family}\0${table}\0${c}`);
    }
    const states = ctStates(exprs);
    dropRules.push({
      family,
      table,
      chain: String(rule.chain),
      handle: typeof rule.handle === 'number' ? rule.handle : -1,
      text: exprs.map(exprText).join(' '),
      verdict,
      ...(states ? { ctStates: states } : {}),
      ...(packets !== undefined ? { packets } : {}),
    });
  }
  return { dropRules, dropPolicies, rules, ...(truncated ? { truncated } : {}) };
}

/** What reading the ruleset gave: the facts, or why there are none. */
export type NftReadResult = { readonly facts: NftFacts } | { readonly error: string };

/**
 * Run `nft -j list ruleset` in the calling thread's network namespace and
 * parse it. Never throws: a missing nft, a refusal (not root), a timeout or
 * output that does not parse is an error line, and the facts are absent.
 */
export function readNftRuleset(opts: { readonly timeoutMs?: number; readonly nft?: string } = {}): NftReadResult {
  const r = spawnSync(opts.nft ?? 'nft', ['-j', 'list', 'ruleset'], { encoding: 'utf8', timeout: opts.timeoutMs ?? 2000, maxBuffer: MAX_OUTPUT, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? 'nft is not installed' : code === 'ETIMEDOUT' ? `nft -j list ruleset took longer than ${opts.timeoutMs ?? 2000} ms` : `nft: ${r.error.message}` };
  }
  if (r.status !== 0) return { error: `nft -j list ruleset failed: ${(r.stderr || `exit status ${r.status}`).trim().split('\n')[0]}` };
  try {
    return { facts: parseNftRuleset(r.stdout || '{"nftables":[]}') };
  } catch (err) {
    return { error: `nft -j list ruleset printed what is not JSON: ${(err as Error).message}` };
  }
}

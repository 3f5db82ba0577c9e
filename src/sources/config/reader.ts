/**
 * The configuration of one network namespace, read beside the drops: its
 * sysctls, its nftables ruleset (the rules that can drop and their counters)
 * and its qdiscs (see core/config-facts.ts for what each is for). One reading
 * is bounded (a timeout for nft, a cap on interfaces and rules) and never
 * fatal: what cannot be read is an error line and its facts are absent. A
 * ConfigSampler reads twice (when a diagnosis starts and when it ends) and
 * says which rule and qdisc counters moved in between.
 */
import { configMoved, type ConfigFacts, type NftFacts, type QdiscFact, type TcFilterFact } from '../../core/config-facts.js';
import { DropmonError, ParseError } from '../../core/errors.js';
import { NETLINK_ROUTE, NetlinkError, NetlinkSocket } from '../../kernel/netlink/socket.js';
import { withNetns, type NetnsTarget } from '../../kernel/setns.js';
import { readNftRuleset } from './nftables.js';
import { readQdiscFacts } from './qdiscs.js';
import { readSysctls } from './sysctls.js';
import { readTcFilters } from './tcfilters.js';

export interface ConfigReadOptions {
  /** The namespace to read; the calling thread's own when absent. */
  readonly netns?: NetnsTarget;
  /** Read the nftables ruleset (default on). */
  readonly nft?: boolean;
  /** How long nft may take (default 2000 ms). */
  readonly nftTimeoutMs?: number;
  /** The nft program (default "nft", found on PATH). */
  readonly nftPath?: string;
  /** Read the qdiscs and tc filters (default on). */
  readonly qdiscs?: boolean;
}

/** The qdiscs, and the tc filters of the interfaces with tc hooks; each absent when it could not be read. */
function readQdiscs(errors: string[]): { qdiscs?: QdiscFact[]; tcFilters?: TcFilterFact[] } {
  let sock: NetlinkSocket | undefined;
  const expected = (err: unknown): err is Error => err instanceof NetlinkError || err instanceof ParseError || err instanceof DropmonError;
  try {
    sock = new NetlinkSocket(NETLINK_ROUTE);
    const { qdiscs, hooked } = readQdiscFacts(sock, errors);
    try {
      return { qdiscs, tcFilters: readTcFilters(sock, hooked, errors) };
    } catch (err) {
      if (!expected(err)) throw err;
      errors.push(`tc filters: ${err.message}`);
      return { qdiscs };
    }
  } catch (err) {
    if (!expected(err)) throw err;
    errors.push(`qdiscs: ${err.message}`);
    return {};
  } finally {
    sock?.close();
  }
}

/**
 * One reading of a namespace's configuration. Never throws for what the host
 * lacks or refuses; a namespace that cannot be entered (it went away) is an
 * error line and empty facts.
 */
export function readConfigFacts(opts: ConfigReadOptions = {}): ConfigFacts {
  const errors: string[] = [];
  try {
    return withNetns(opts.netns, () => {
      const { values, truncated } = readSysctls();
      if (truncated) errors.push('sysctls: more interfaces than read; the others were left out');
      let nft: NftFacts | undefined;
      if (opts.nft !== false) {
        const r = readNftRuleset({ ...(opts.nftTimeoutMs !== undefined ? { timeoutMs: opts.nftTimeoutMs } : {}), ...(opts.nftPath ? { nft: opts.nftPath } : {}) });
        if ('facts' in r) nft = r.facts;
        else errors.push(`nftables: ${r.error}`);
      }
      const tc = opts.qdiscs !== false ? readQdiscs(errors) : {};
      return { sysctls: values, ...(nft ? { nft } : {}), ...tc, ...(errors.length ? { errors } : {}) };
    });
  } catch (err) {
    if (!(err instanceof DropmonError)) throw err;
    return { sysctls: {}, errors: [...errors, err.message] };
  }
}

/**
 * Two readings of one namespace's configuration, the second saying what
 * moved since the first: the rule whose counter moved is the rule that
 * dropped. `sample()` without a `baseline()` is a single reading.
 */
export class ConfigSampler {
  private first: ConfigFacts | undefined;

  constructor(
    readonly options: ConfigReadOptions = {},
    private readonly read: (o: ConfigReadOptions) => ConfigFacts = readConfigFacts,
  ) {}

  baseline(): ConfigFacts {
    return (this.first = this.read(this.options));
  }

  sample(): ConfigFacts {
    return configMoved(this.first, this.read(this.options));
  }
}

/**
 * The configuration of every namespace a diagnosis is about: dropmon's own
 * (or the one --netns names) and every namespace the host holds when the
 * diagnosis starts or that appears during it (read at once, so that what
 * their nft rules and qdiscs drop later moves against a baseline), up to
 * `maxEarly`; and a namespace first met through its drops, up to `max` in
 * all. Such a late one is read once, at the end: a single reading, whose
 * counters are taken whole (its drops came before any baseline could be
 * taken). Bounded because a reading runs nft; namespaces beyond the bounds
 * are diagnosed by location and counters alone.
 */
export class NamespaceConfigs {
  private readonly samplers = new Map<number | undefined, ConfigSampler>();
  private early = 0;

  constructor(
    /** The held target of a namespace by inode (the registry of host-wide counters), when there is one. */
    private readonly targetOf: ((inode: number) => NetnsTarget | undefined) | undefined,
    /** The inode of the namespace read without a target (dropmon's own, or the one given). */
    private readonly home: number | undefined,
    homeTarget?: NetnsTarget,
    private readonly max = 32,
    private readonly maxEarly = 16,
  ) {
    const s = new ConfigSampler(homeTarget ? { netns: homeTarget } : {});
    s.baseline();
    this.samplers.set(home, s);
  }

  /** Namespaces the host holds (before their drops, as far as anyone knows): the new ones get a baseline. */
  discovered(inodes: Iterable<number>): void {
    for (const inode of inodes) {
      if (this.early >= this.maxEarly || this.samplers.size >= this.max) return;
      if (inode === 0 || this.samplers.has(inode)) continue;
      const target = this.targetOf?.(inode);
      if (!target) continue;
      const s = new ConfigSampler({ netns: target });
      s.baseline();
      this.samplers.set(inode, s);
      this.early++;
    }
  }

  /** Namespaces whose drops were seen: the ones without a baseline get a single reading at the end. */
  seen(inodes: Iterable<number | undefined>): void {
    for (const inode of inodes) {
      if (inode === undefined || inode === 0 || this.samplers.has(inode) || this.samplers.size >= this.max) continue;
      const target = this.targetOf?.(inode);
      if (!target) continue;
      this.samplers.set(inode, new ConfigSampler({ netns: target }));
    }
  }

  /** The second readings: what each namespace's configuration is now, and what moved. */
  finish(): (netns: number | undefined) => ConfigFacts | undefined {
    const facts = new Map<number | undefined, ConfigFacts>();
    for (const [inode, s] of this.samplers) facts.set(inode, s.sample());
    return (netns) => facts.get(netns === undefined || netns === 0 ? this.home : netns);
  }
}

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

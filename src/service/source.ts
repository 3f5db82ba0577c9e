/**
 * From the service's configuration to a drop source and its filter, through
 * the source plan every command uses (src/sources/plan.ts): the same choice
 * of source, the same validation of reasons against the running kernel's
 * table, the same filter pushed into the kernel. Here only the configuration
 * becomes a request, and a problem is named by its configuration key.
 *
 * `planSource` does everything that can fail on bad input before anything
 * changes on the host, so that a bad `PUT /api/v1/config` is refused while
 * the running pipeline goes on untouched.
 */
import { parseProtocol } from '../core/drop.js';
import type { KallsymsTable } from '../kernel/kallsyms.js';
import type { KernelReasons } from '../sources/kernel-reasons.js';
import { planSource as planRequest, SourceProblem, type SourceChoice, type SourcePlan, type SourceProvider, type SourceRequest } from '../sources/plan.js';
import { chooseSource, nextPreferred } from '../sources/select.js';
import { ConfigError, type ServiceConfig } from './config.js';

export type { SourcePlan };

/** The configuration keys a source problem is about, in the service's words. */
const CONFIG_WORDING: Record<string, (p: SourceProblem) => string> = {
  'needs-netdm': () => 'mode: packet needs the netdm source (source: netdm or auto)',
  'reasons-unseen': () => 'filters.reasons: NET_DM summary mode reports no reasons; use mode: packet or source: tracefs',
  'no-reasons': (p) => `filters.reasons: ${p.message}`,
  'unknown-reason': (p) => `filters.reasons: ${p.message}`,
  'no-kallsyms': () => 'filters.locations: needs /proc/kallsyms, which could not be read',
  'bad-location': (p) => `filters.locations: ${p.message}`,
};

function sourceRequest(config: ServiceConfig): SourceRequest {
  const f = config.filters;
  const protocols = f.protocols.map((p, i) => {
    const n = parseProtocol(p);
    if (n === undefined) throw new ConfigError(`filters.protocols[${i}]: unknown protocol ${JSON.stringify(p)}; use ipv4, ipv6, arp or an EtherType like 0x88b5`);
    return n;
  });
  return {
    software: true,
    hardware: false,
    reasons: f.reasons,
    protocols,
    locations: f.locations,
    // Summary is NET_DM's default: only packet mode asks for NET_DM.
    ...(config.mode === 'packet' ? { netdm: { mode: 'packet' } } : {}),
  };
}

/**
 * Validate the source settings and filters of `config`; throws ConfigError
 * with the key (or the host's own error when a source cannot be built here).
 * `requested` replaces config.source (a fallback after the preferred source failed).
 */
export function planSource(config: ServiceConfig, tables: KernelReasons, kallsyms: KallsymsTable | undefined, requested: string = config.source): SourcePlan {
  try {
    const request = sourceRequest(config);
    return planRequest(chooseSource(request, requested), request, tables, kallsyms);
  } catch (err) {
    if (!(err instanceof SourceProblem)) throw err;
    const word = CONFIG_WORDING[err.code];
    throw new ConfigError(word ? word(err) : err.message);
  }
}

/** The source to try when the one `auto` preferred cannot start; undefined when there is none (or it was asked for). */
export function fallbackSource(config: ServiceConfig, failed: SourceChoice): SourceProvider | undefined {
  return config.source === 'auto' ? nextPreferred(failed, sourceRequest(config)) : undefined;
}

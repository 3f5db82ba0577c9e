/**
 * From the service's configuration to a drop source and its filter, the way
 * `dropmon watch` builds them: the same choice of source (NET_DM where the
 * kernel has it, else tracefs), the same validation of reasons against the
 * running kernel's table, the same filter pushed into the kernel.
 *
 * `planSource` does everything that can fail on bad input before anything
 * changes on the host, so that a bad `PUT /api/v1/config` is refused while
 * the running pipeline goes on untouched.
 */
import { join } from 'node:path';
import { parseProtocol, type DropSource } from '../core/drop.js';
import { resolveReasons, type DropFilter } from '../core/filter.js';
import type { KallsymsTable } from '../kernel/kallsyms.js';
import { resolveLocations } from '../cli/watch-source.js';
import { BpfDropSource, reasonNamesFromBtf } from '../sources/bpf/source.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import { chooseSource, type SourceChoice } from '../sources/select.js';
import { TracefsDropSource, readLayout } from '../sources/tracefs/source.js';
import { findTracefs } from '../sources/tracefs/tracefs.js';
import { ConfigError, type ServiceConfig } from './config.js';

/** The tracefs layout is read once per service: it holds this kernel's reason table. */
export interface KernelTables {
  readonly root?: string;
  readonly layout?: ReturnType<typeof readLayout>;
  readonly reasons: ReadonlyMap<number, string>;
}

export function readKernelTables(): KernelTables {
  try {
    const root = findTracefs();
    const layout = readLayout(join(root, 'events'));
    return { root, layout, reasons: layout.kfree.symbolic.get('reason') ?? new Map() };
  } catch {
    // No tracefs: BPF or NET_DM may still work; the tracefs source says why it cannot start.
    let reasons: ReadonlyMap<number, string> = new Map();
    try {
      reasons = reasonNamesFromBtf();
    } catch {
      /* no BTF either: reasons cannot be checked */
    }
    return { reasons };
  }
}

export interface SourcePlan {
  readonly choice: SourceChoice;
  readonly filter: DropFilter;
  /** Build the source (nothing is changed on the host until its start()). */
  create(warn: (m: string) => void): DropSource;
}

/** Validate the source settings and filters of `config`; throws ConfigError with the key. */
export function planSource(config: ServiceConfig, tables: KernelTables, kallsyms: KallsymsTable | undefined): SourcePlan {
  const f = config.filters;
  const choice = chooseSource(config.source, {
    netdmOnly: config.mode === 'packet',
    filtersByReasonOrProtocol: f.reasons.length > 0 || f.protocols.length > 0,
  });
  if (choice.name !== 'netdm' && config.mode === 'packet') throw new ConfigError('mode: packet needs the netdm source (source: netdm or auto)');
  if (f.reasons.length && choice.name === 'netdm' && config.mode === 'summary')
    throw new ConfigError('filters.reasons: NET_DM summary mode reports no reasons; use mode: packet or source: tracefs');
  if (f.reasons.length && tables.layout && !tables.layout.kfree.fields.has('reason'))
    throw new ConfigError('filters.reasons: this kernel reports no drop reasons (they appeared in Linux 5.17)');
  let reasons: number[] = [];
  try {
    if (tables.reasons.size) reasons = resolveReasons(f.reasons, tables.reasons);
  } catch (err) {
    throw new ConfigError(`filters.reasons: ${(err as Error).message}`);
  }
  const protocols = f.protocols.map((p, i) => {
    const n = parseProtocol(p);
    if (n === undefined) throw new ConfigError(`filters.protocols[${i}]: unknown protocol ${JSON.stringify(p)}; use ipv4, ipv6, arp or an EtherType like 0x88b5`);
    return n;
  });
  let locations: Array<[bigint, bigint]> = [];
  if (f.locations.length) {
    if (!kallsyms) throw new ConfigError('filters.locations: needs /proc/kallsyms, which could not be read');
    try {
      locations = resolveLocations(f.locations, kallsyms);
    } catch (err) {
      throw new ConfigError(`filters.locations: ${(err as Error).message}`);
    }
  }
  const filter: DropFilter = {
    reasons,
    reasonNames: f.reasons
      .map((r) => r.trim().toUpperCase().replace(/^SKB_DROP_REASON_/, ''))
      .concat(reasons.map((n) => tables.reasons.get(n) ?? ''))
      .filter(Boolean),
    protocols,
    locations,
  };
  return {
    choice,
    filter,
    create: (warn) =>
      choice.name === 'bpf'
        ? new BpfDropSource({ warn })
        : choice.name === 'tracefs'
        ? new TracefsDropSource({
            ...(tables.root ? { root: tables.root } : {}),
            ...(tables.layout ? { layout: tables.layout } : {}),
            filter,
            warn,
          })
        : new NetdmDropSource({ mode: config.mode, origins: { sw: true, hw: false }, warn }),
  };
}

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
import { resolveLocations, type KallsymsTable } from '../kernel/kallsyms.js';
import { BpfDropSource, dropReasonsFromBtf } from '../sources/bpf/source.js';
import { DropReasons } from '../kernel/drop-reasons.js';
import { NetdmDropSource } from '../sources/netdm/source.js';
import { chooseSource, type SourceChoice } from '../sources/select.js';
import { TracefsDropSource, readLayout } from '../sources/tracefs/source.js';
import { findTracefs } from '../sources/tracefs/tracefs.js';
import { ConfigError, type ServiceConfig } from './config.js';

/** The tracefs layout is read once per service: it holds this kernel's reason table. */
export interface KernelTables {
  readonly root?: string;
  readonly layout?: ReturnType<typeof readLayout>;
  /** Value → name: the core reasons, and the subsystems' whose modules were loaded at start. */
  readonly reasons: ReadonlyMap<number, string>;
  /** The namer every source uses (subsystem reasons decoded from BTF when they show up). */
  readonly namer: DropReasons;
}

export function readKernelTables(): KernelTables {
  try {
    const root = findTracefs();
    const layout = readLayout(join(root, 'events'));
    const core = layout.kfree.symbolic.get('reason') ?? new Map<number, string>();
    const namer = new DropReasons(core.size ? { core } : {});
    return { root, layout, reasons: core, namer };
  } catch {
    // No tracefs: BPF or NET_DM may still work; the tracefs source says why it cannot start.
    let reasons: ReadonlyMap<number, string> = new Map();
    let namer = new DropReasons();
    try {
      namer = dropReasonsFromBtf();
      reasons = namer.table();
    } catch {
      /* no BTF either: reasons cannot be checked */
    }
    return { reasons, namer };
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
  // Subsystem names (OPENVSWITCH/...) are checked only when asked for: reading them costs a BTF parse.
  const table = f.reasons.length ? tables.namer.table() : tables.reasons;
  try {
    if (table.size) reasons = resolveReasons(f.reasons, table);
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
      .concat(reasons.map((n) => table.get(n) ?? ''))
      .filter(Boolean),
    protocols,
    locations,
  };
  return {
    choice,
    filter,
    create: (warn) =>
      choice.name === 'bpf'
        ? new BpfDropSource({ reasons: tables.namer, warn })
        : choice.name === 'tracefs'
        ? new TracefsDropSource({
            ...(tables.root ? { root: tables.root } : {}),
            ...(tables.layout ? { layout: tables.layout } : {}),
            filter,
            reasons: tables.namer,
            warn,
          })
        : new NetdmDropSource({ mode: config.mode, origins: { sw: true, hw: false }, reasons: tables.namer, warn }),
  };
}

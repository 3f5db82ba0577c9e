/**
 * The tracefs drop source: `skb:kfree_skb` in a private instance, read as
 * binary ring-buffer pages.
 *
 * Design rules, each measured on a 2-core machine at ~1.3M drops/s:
 * - binary `trace_pipe_raw`, never the text `trace_pipe` (kernel text
 *   formatting costs ~2 us per event and loses 24-64 % at full rate);
 * - O_NONBLOCK reads on a timer, never a blocking read: a waiting reader must
 *   be woken from the tracing CPU, which added microseconds to every drop;
 * - per CPU, read pages until one comes back partly filled (the writer is on
 *   it: reading it again right away returns a handful of events per syscall).
 */
import { closeSync, constants, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { endianness } from 'node:os';
import { DropmonError, ParseError, errnoCode } from '../../core/errors.js';
import { hardwareSample, type DropSample, type DropSink, type DropSource } from '../../core/drop.js';
import { DropTally } from '../../core/tally.js';
import { isEmptyFilter, type DropFilter } from '../../core/filter.js';
import { parseEventFormat, parseHeaderEvent, parseHeaderPage, type EventFormat } from './format.js';
import { PageDecoder, kernelStackLayout, kfreeSkbLayout } from './ringbuffer.js';
import { TracefsInstance } from './instance.js';
import { compileTracefsFilter } from './filter.js';
import { findTracefs, tracefsError } from './tracefs.js';
import { DropReasons } from '../../kernel/drop-reasons.js';
import { TRAP_REPORT, TrapReportTally, trapReportLayout } from './traps.js';
import { DevlinkCatalog, type TrapCatalog } from '../counters/devlink-catalog.js';

export const KFREE_SKB = 'skb/kfree_skb';
/** Longest pause between two polls when no drops come. */
const IDLE_POLL_MS = 50;

/**
 * Ring buffer per CPU: 64 MiB in all, 4 to 16 MiB per CPU. One CPU here can
 * write ~80 MB/s of kfree_skb events, so 16 MiB is ~0.2 s of the worst storm:
 * four times the longest pause between polls (IDLE_POLL_MS).
 */
export function defaultBufferKb(cpus: number): number {
  return Math.min(16384, Math.max(4096, Math.floor(65536 / Math.max(1, cpus))));
}

export interface TracefsSourceOptions {
  readonly filter?: DropFilter;
  /** Software drops from skb:kfree_skb (default true). */
  readonly software?: boolean;
  /** Hardware drops from devlink:devlink_trap_report (default false). */
  readonly hardware?: boolean;
  /** Where trap types, actions and port ifindexes come from (default: devlink). */
  readonly catalog?: TrapCatalog;
  /** Aggregate by kernel stack too (instance option `stacktrace`). */
  readonly stack?: boolean;
  /** Per-CPU ring buffer size in KiB. */
  readonly bufferKb?: number;
  /** Ring-buffer sub-buffer (page) size in KiB where the kernel lets us choose (6.8+). */
  readonly subbufKb?: number;
  /** Poll period of the non-blocking reads. */
  readonly pollMs?: number;
  /** tracefs root; found (and mounted) when absent. */
  readonly root?: string;
  /** The layout files, when the caller has read them already (readLayout). */
  readonly layout?: TracefsLayout;
  /** Called with a one-line message for conditions worth telling but not fatal. */
  readonly warn?: (message: string) => void;
  /** Reason namer (tests); by default the format's table, and BTF for subsystem reasons. */
  readonly reasons?: DropReasons;
}

/** Counters of the source's own health, cumulative since start. */
export interface TracefsSourceStats {
  pages: number;
  bytes: number;
  drops: number;
  trapReports: number;
  malformedPages: number;
  missedPages: number;
  reads: number;
}

interface CpuReader {
  readonly cpu: number;
  fd: number;
  decoder: PageDecoder;
  /** Cumulative loss counters from per_cpu/cpuN/stats at the last report. */
  lastOverrun: number;
  lastDropped: number;
  /** Missed counts stored in page headers since the last report. */
  pageMissed: number;
}

/** Parse per_cpu/cpuN/stats ("entries: 0", "overrun: 12", "oldest event ts: 1.2"). */
export function parseCpuStats(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    const v = Number(line.slice(i + 1).trim());
    if (Number.isFinite(v)) out.set(line.slice(0, i).trim(), v);
  }
  return out;
}

export type TracefsLayout = ReturnType<typeof readLayout>;

/** Read and parse the layout files of a tracefs root (or a fixture directory). */
export function readLayout(eventsDir: string) {
  const read = (rel: string) => readFileSync(join(eventsDir, rel), 'latin1');
  if (!existsSync(join(eventsDir, KFREE_SKB, 'format'))) {
    throw new DropmonError(
      'this kernel has no skb:kfree_skb trace event',
      'it needs CONFIG_NET and CONFIG_TRACEPOINTS (every distribution kernel has them); check: ls ' + join(eventsDir, 'skb'),
    );
  }
  const kfree = parseEventFormat(read(`${KFREE_SKB}/format`));
  const page = parseHeaderPage(read('header_page'));
  const header = parseHeaderEvent(read('header_event'));
  let stack: EventFormat | undefined;
  try {
    stack = parseEventFormat(read('ftrace/kernel_stack/format'));
  } catch {
    stack = undefined;
  }
  // Absent from kernels without CONFIG_NET_DEVLINK; asked for by --hw only.
  const trapReport = existsSync(join(eventsDir, TRAP_REPORT, 'format')) ? parseEventFormat(read(`${TRAP_REPORT}/format`)) : undefined;
  return { kfree, page, header, stack, trapReport };
}

export class TracefsDropSource implements DropSource {
  readonly name = 'tracefs';
  readonly root: string;
  readonly kfreeFormat: EventFormat;
  /** Reason number → name of the running kernel's core reasons (empty before 5.17). */
  readonly reasonNames: ReadonlyMap<number, string>;
  /**
   * Names every reason value: the format's __print_symbolic table lists core
   * reasons only, so subsystem values (openvswitch, mac80211) are decoded
   * from BTF, read only when one shows up.
   */
  readonly reasons: DropReasons;
  readonly stats: TracefsSourceStats = { pages: 0, bytes: 0, drops: 0, trapReports: 0, malformedPages: 0, missedPages: 0, reads: 0 };
  /** The kernel filter expression in force ("" for none). */
  kernelFilter = '';

  private readonly layout: TracefsLayout;
  private instance: TracefsInstance | undefined;
  private readers: CpuReader[] = [];
  private tally: DropTally;
  private readonly traps: TrapReportTally | undefined;
  private catalog: TrapCatalog | undefined;
  private lastTrapOverflow = 0;
  private sink: DropSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private pageSize: number;
  private buf: Buffer;
  private u32: Uint32Array;
  private fullPage: number;
  private readonly warn: (m: string) => void;
  private malformedWarned = 0;
  private idlePoll = 0;

  constructor(private readonly opts: TracefsSourceOptions = {}) {
    if (endianness() !== 'LE') throw new DropmonError('the tracefs source supports little-endian machines only');
    this.warn = opts.warn ?? (() => {});
    this.root = opts.root ?? findTracefs();
    this.layout = opts.layout ?? readLayout(join(this.root, 'events'));
    this.kfreeFormat = this.layout.kfree;
    this.reasonNames = this.kfreeFormat.symbolic.get('reason') ?? new Map();
    if (opts.stack && !this.layout.stack) throw new DropmonError('this kernel has no ftrace:kernel_stack event: --stack is not available');
    if (opts.software === false && !opts.hardware) throw new DropmonError('the tracefs source was asked for neither software nor hardware drops');
    if (opts.hardware) {
      if (!this.layout.trapReport)
        throw new DropmonError(
          'this kernel has no devlink:devlink_trap_report trace event, so the tracefs source cannot see hardware drops',
          `it needs CONFIG_NET_DEVLINK (devices with devlink traps need it too); check: ls ${join(this.root, 'events', 'devlink')}`,
        );
      this.traps = new TrapReportTally(trapReportLayout(this.layout.trapReport));
      this.catalog = opts.catalog;
    }
    this.reasons = opts.reasons ?? new DropReasons({ core: this.reasonNames });
    this.tally = new DropTally((r) => this.reasons.name(r));
    this.pageSize = 0;
    this.buf = Buffer.alloc(0);
    this.u32 = new Uint32Array(0);
    this.fullPage = 0;
    this.setPageSize(this.layout.page.dataOffset + this.layout.page.dataSize);
  }

  private setPageSize(bytes: number): void {
    this.pageSize = bytes;
    // Own ArrayBuffer at offset 0, so the Uint32Array view is aligned.
    this.buf = Buffer.allocUnsafeSlow(bytes);
    this.u32 = new Uint32Array(this.buf.buffer, this.buf.byteOffset, bytes >>> 2);
    // A page with less data than this was still being written when read.
    this.fullPage = bytes - this.layout.page.dataOffset - 64;
  }

  /** Create the instance, install the filter, open the per-CPU pipes, enable the event. */
  async start(sink: DropSink): Promise<void> {
    if (this.instance) throw new Error('source already started');
    this.sink = sink;
    // Instances of dropmons that died were reclaimed when this process started (sources/reclaim.ts).
    const inst = TracefsInstance.createOwned(this.root);
    this.instance = inst;
    try {
      // Larger sub-buffers (Linux 6.8+) mean one read() per ~1500 events
      // instead of per ~90: the syscall was most of the reader's cost.
      if (existsSync(inst.path('buffer_subbuf_size_kb'))) {
        try {
          inst.write('buffer_subbuf_size_kb', String(this.opts.subbufKb ?? 64));
        } catch (err) {
          this.warn(`keeping the default ring-buffer page size: ${(err as Error).message}`);
        }
        const kb = Number(inst.read('buffer_subbuf_size_kb').trim());
        if (!Number.isInteger(kb) || kb < 1 || kb > 1024) throw new DropmonError(`unexpected ring-buffer page size ${kb} KiB`);
        this.setPageSize(kb * 1024);
      }
      inst.setBufferKb(this.opts.bufferKb ?? defaultBufferKb(inst.cpus().length));
      const filter = this.opts.filter ?? {};
      const software = this.opts.software !== false;
      if (software && !isEmptyFilter(filter)) {
        const compiled = compileTracefsFilter(filter, this.kfreeFormat);
        if (compiled.expression) inst.setFilter(KFREE_SKB, compiled.expression);
        this.kernelFilter = compiled.expression;
        for (const f of compiled.notInKernel) this.warn(`the ${f} filter is applied in user space (the kernel cannot here)`);
      }
      const kfree = kfreeSkbLayout(this.kfreeFormat);
      const stack = this.opts.stack && this.layout.stack ? kernelStackLayout(this.layout.stack) : undefined;
      if (stack) inst.setOption('stacktrace', true);
      for (const cpu of inst.cpus()) {
        const file = inst.path(`per_cpu/cpu${cpu}/trace_pipe_raw`);
        let fd: number;
        try {
          fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
        } catch (err) {
          if (errnoCode(err) === 'ENODEV') continue; // CPU not present
          throw tracefsError('open the per-CPU trace pipe', file, err);
        }
        const r: CpuReader = {
          cpu,
          fd,
          decoder: new PageDecoder(this.layout.page, this.layout.header, kfree, this.tally, stack, this.traps),
          lastOverrun: 0,
          lastDropped: 0,
          pageMissed: 0,
        };
        this.readers.push(r);
      }
      if (this.readers.length === 0) throw new DropmonError('no per-CPU trace pipes could be opened');
      if (this.traps) {
        this.catalog ??= new DevlinkCatalog({ warn: this.warn });
        inst.enableEvent(TRAP_REPORT);
      }
      if (software) inst.enableEvent(KFREE_SKB);
    } catch (err) {
      this.close();
      throw err;
    }
    this.schedule(this.opts.pollMs ?? 10);
  }

  /**
   * Poll on a timer: every pollMs while drops flow, backing off to
   * IDLE_POLL_MS while nothing comes (a quiet host then costs almost nothing).
   * An 8 MiB buffer per CPU holds ~0.25 s of the fastest drop storm measured
   * here, five times the longest pause between two polls.
   */
  private schedule(ms: number): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      const pages = this.stats.reads;
      const more = this.pump();
      const base = this.opts.pollMs ?? 10;
      if (more) this.idlePoll = 0;
      else if (this.stats.reads !== pages) this.idlePoll = base;
      else this.idlePoll = Math.min(IDLE_POLL_MS, Math.max(base, this.idlePoll * 2));
      this.schedule(this.idlePoll);
    }, ms);
    this.timer.unref?.();
  }

  /**
   * Read what each CPU has buffered, decode it and push the counts. Returns
   * true when a CPU still had full pages after its per-turn bound (read again soon).
   */
  private pump(): boolean {
    // EAGAIN is the normal answer of an empty pipe: do not pay for a stack
    // trace in the error Node builds for it, 100 times a second per CPU.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return this.pumpAll();
    } finally {
      Error.stackTraceLimit = limit;
    }
  }

  private pumpAll(): boolean {
    let more = false;
    for (const r of this.readers) {
      if (r.fd < 0) continue;
      for (let i = 0; ; i++) {
        if (i === 512) {
          more = true;
          break;
        }
        let n: number;
        try {
          n = readSync(r.fd, this.buf, 0, this.pageSize, null);
        } catch (err) {
          const code = errnoCode(err);
          if (code === 'EAGAIN' || code === 'EINTR') break;
          this.warn(`cpu${r.cpu}: reading the trace pipe failed (${code ?? String(err)}); that CPU is no longer read`);
          closeSync(r.fd);
          r.fd = -1;
          break;
        }
        if (n <= 0) break;
        this.stats.reads++;
        let info;
        try {
          info = r.decoder.decode(this.u32, 0, n);
        } catch (err) {
          if (!(err instanceof ParseError)) throw err;
          this.stats.malformedPages++;
          if (this.malformedWarned++ < 5) this.warn(`cpu${r.cpu}: ${err.message}; events before the fault were counted`);
          this.stats.drops += r.decoder.info.drops;
          continue;
        }
        this.stats.pages++;
        this.stats.bytes += info.dataBytes;
        this.stats.drops += info.drops;
        this.stats.trapReports += info.trapReports;
        if (info.missed) {
          this.stats.missedPages++;
          r.pageMissed += info.missedCount;
        }
        if (info.dataBytes < this.fullPage) break;
      }
      r.decoder.flushPending();
    }
    if (this.tally.pending > 0 && this.sink) this.sink.drops(this.tally.take());
    if (this.traps && this.traps.pending > 0 && this.sink) this.sink.drops(this.trapSamples(this.traps));
    return more;
  }

  /**
   * Counted trap reports as hardware drop samples, with what devlink says of
   * the trap (type, action) and of the input port (its ifindex).
   */
  private trapSamples(traps: TrapReportTally): DropSample[] {
    return traps.take().map(({ report: r, count }) => {
      const details = this.catalog?.trap(r.device, r.trap);
      const ifindex = r.input ? this.catalog?.portIfindex(r.device, r.input) : undefined;
      return hardwareSample(
        {
          name: r.trap,
          ...(r.group ? { group: r.group } : {}),
          ...(details ? { type: details.type, action: details.action } : {}),
          device: r.device,
          ...(r.input ? { inputName: r.input } : {}),
        },
        count,
        ifindex !== undefined ? { ifindex } : undefined,
      );
    });
  }

  describe(): string {
    const f = this.kernelFilter ? ` filter "${this.kernelFilter}"` : '';
    const events = [this.opts.software !== false ? `skb:kfree_skb${f}` : '', this.traps ? 'devlink:devlink_trap_report' : ''].filter(Boolean);
    return `${events.join(' and ')} via ${this.instance?.dir ?? this.root}`;
  }

  drain(): void {
    if (!this.instance || this.closed) return;
    this.pump();
    this.reportLoss();
  }

  /**
   * Losses since the last report, per CPU: the larger of what the buffer's
   * stats say (overrun + dropped events) and what page headers said was
   * missed. Both describe the same lost events, so they are not added.
   */
  private reportLoss(): void {
    if (!this.instance || !this.sink) return;
    for (const r of this.readers) {
      let overrun = r.lastOverrun, dropped = r.lastDropped;
      try {
        const s = parseCpuStats(this.instance.read(`per_cpu/cpu${r.cpu}/stats`));
        overrun = s.get('overrun') ?? overrun;
        dropped = s.get('dropped events') ?? dropped;
      } catch {
        /* stats unreadable: fall back on page headers */
      }
      const fromStats = Math.max(0, overrun - r.lastOverrun) + Math.max(0, dropped - r.lastDropped);
      r.lastOverrun = overrun;
      r.lastDropped = dropped;
      const lost = Math.max(fromStats, r.pageMissed);
      r.pageMissed = 0;
      if (lost > 0) this.sink.loss({ lost, cause: `ring-buffer overrun cpu${r.cpu}` });
    }
    if (this.traps && this.traps.overflow > this.lastTrapOverflow) {
      this.sink.loss({ lost: this.traps.overflow - this.lastTrapOverflow, cause: 'trap reports beyond 1024 distinct traps and ports per batch' });
      this.lastTrapOverflow = this.traps.overflow;
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // Stop the event first, so nothing more is written while we tear down.
    for (const ev of [KFREE_SKB, TRAP_REPORT]) {
      try {
        this.instance?.write(`events/${ev}/enable`, '0');
      } catch {
        /* removal below disables it anyway */
      }
    }
    for (const r of this.readers) {
      if (r.fd >= 0) {
        try {
          closeSync(r.fd);
        } catch {
          /* already closed */
        }
        r.fd = -1;
      }
    }
    if (this.instance && !this.instance.remove()) {
      this.warn(`could not remove the tracefs instance ${this.instance.dir}; remove it by hand: rmdir ${this.instance.dir}`);
    }
  }
}

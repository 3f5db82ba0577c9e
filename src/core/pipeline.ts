/**
 * A pipeline wires one source to the aggregator and to outputs:
 *   source --samples--> filter --> IntervalAggregator --interval reports--> annotate --> outputs
 * It owns the interval clock and the stop conditions (duration, drop count,
 * an explicit stop); it knows nothing about tracefs or about formats.
 */
import type { DropSink, DropSource, DropSample, LossSample } from './drop.js';
import { IntervalAggregator } from './aggregator.js';
import type { IntervalReport } from './interval.js';
import { isEmptyFilter, matches, type DropFilter } from './filter.js';

export interface IntervalOutput {
  interval(report: IntervalReport): void;
}

/** An output of single dropped packets (NET_DM packet mode): lines, JSON, pcap. */
export interface PacketOutput {
  packets(samples: readonly DropSample[]): void;
}

export type StopReason = 'duration' | 'count' | 'signal' | 'error' | 'output-closed';

export interface PipelineOptions {
  readonly source: DropSource;
  readonly outputs: readonly IntervalOutput[];
  /** Receive every sample that carries a packet, as it arrives (after filtering). */
  readonly packetOutputs?: readonly PacketOutput[];
  readonly intervalMs: number;
  readonly maxPoints?: number;
  readonly filter?: DropFilter;
  /** Stop after this long (ms). */
  readonly durationMs?: number;
  /** Stop once this many drops were seen (dropwatch's alert limit). */
  readonly countLimit?: number;
  /** Called once the source is running, before the first interval. */
  readonly onStarted?: () => void;
  /**
   * Outputs need this first (e.g. the kernel symbol table, loaded in the
   * background): intervals closed before it settles are held, then emitted.
   */
  readonly outputsReady?: Promise<unknown>;
  /**
   * Called with each interval as it closes, before the outputs see it, to add
   * what was measured beside the drops (counter deltas, correlation). Runs at
   * the interval's close so counters and drops cover the same span of time.
   */
  readonly annotate?: (report: IntervalReport) => IntervalReport;
}

export class Pipeline {
  private readonly aggregator: IntervalAggregator;
  private totalDrops = 0;
  private totalLost = 0;
  private stopReason: StopReason | undefined;
  private wake: (() => void) | undefined;
  private held: IntervalReport[] | undefined;
  private heldPackets: DropSample[] | undefined;

  constructor(private readonly opts: PipelineOptions) {
    this.aggregator = new IntervalAggregator(opts.maxPoints ?? 64);
    if (opts.outputsReady) {
      this.held = [];
      this.heldPackets = [];
      const release = () => {
        const held = this.held ?? [];
        const packets = this.heldPackets ?? [];
        this.held = undefined;
        this.heldPackets = undefined;
        if (packets.length) for (const o of this.opts.packetOutputs ?? []) o.packets(packets);
        for (const r of held) this.emit(r);
      };
      opts.outputsReady.then(release, release);
    }
  }

  get drops(): number {
    return this.totalDrops;
  }

  get lost(): number {
    return this.totalLost;
  }

  /** Ask the pipeline to end after flushing the current interval. */
  stop(reason: StopReason): void {
    this.stopReason ??= reason;
    this.wake?.();
  }

  async run(): Promise<StopReason> {
    const { source, filter } = this.opts;
    const filtering = filter !== undefined && !isEmptyFilter(filter);
    const sink: DropSink = {
      drops: (samples: readonly DropSample[]) => {
        const packets: DropSample[] = [];
        for (const s of samples) {
          if (filtering && !matches(filter, s)) continue;
          this.aggregator.add(s);
          this.totalDrops += s.count;
          if (s.packet) packets.push(s);
        }
        if (packets.length) {
          if (this.heldPackets) this.heldPackets.push(...packets);
          else for (const o of this.opts.packetOutputs ?? []) o.packets(packets);
        }
        if (this.opts.countLimit !== undefined && this.totalDrops >= this.opts.countLimit) this.stop('count');
      },
      loss: (l: LossSample) => {
        this.aggregator.addLoss(l);
        this.totalLost += l.lost;
      },
    };
    await source.start(sink);
    this.opts.onStarted?.();
    const started = Date.now();
    // Restart the interval clock now that the source runs: the first interval is whole.
    this.aggregator.reset(started);
    const tick = setInterval(() => this.flush(), this.opts.intervalMs);
    const deadline =
      this.opts.durationMs !== undefined ? setTimeout(() => this.stop('duration'), this.opts.durationMs) : undefined;
    try {
      if (this.stopReason === undefined) await new Promise<void>((resolve) => (this.wake = resolve));
    } finally {
      clearInterval(tick);
      if (deadline) clearTimeout(deadline);
    }
    this.flush(true);
    if (this.held) await this.opts.outputsReady?.catch(() => undefined);
    return this.stopReason ?? 'signal';
  }

  /** Drain the source and hand a closed interval to every output. */
  private flush(final = false): void {
    this.opts.source.drain(final);
    let report = this.aggregator.close();
    if (this.opts.annotate) report = this.opts.annotate(report);
    // A short last interval with nothing in it says nothing: skip it.
    if (final && report.drops === 0 && report.lostTotal === 0 && !report.counters?.length) return;
    if (this.held) this.held.push(report);
    else this.emit(report);
  }

  private emit(report: IntervalReport): void {
    for (const o of this.opts.outputs) o.interval(report);
  }
}

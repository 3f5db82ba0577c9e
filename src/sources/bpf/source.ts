/**
 * The BPF drop source: a program on the kfree_skb tracepoint counts drops in
 * the kernel, per CPU, by (location, reason, protocol, ifindex, netns); each
 * drain() reads the map and hands out the differences since the last read.
 * User space therefore does work per drop point and per interval, never per
 * drop. With `packets`, a ring buffer also carries a rate-limited sample of
 * the dropped packets (their first bytes), polled on a timer.
 *
 * Everything is owned by file descriptors and nothing is pinned: when the
 * process ends, however it ends, the kernel detaches the program and frees
 * the maps.
 */
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { DropmonError } from '../../core/errors.js';
import type { DropSample, DropSink, DropSource, DroppedPacket } from '../../core/drop.js';
import { BpfError, BpfMap, MapType, ProgType, AttachType, attachTracing, closeFd, loadProgram, possibleCpus, rawTracepointOpen } from '../../kernel/bpf/syscall.js';
import { RingBuffer } from '../../kernel/bpf/ringbuf.js';
import { attribution } from '../../kernel/namespaces.js';
import { MappedArray } from '../../kernel/bpf/mapped.js';
import { KEY, RECORD, RECORD_HAS_MAC, SLOT, STATE, dropProgram, type ProgramFlavour } from './programs.js';
import { RunTally, SlotReader } from './slots.js';
import { readKernelLayout, type KernelLayout } from './layout.js';
import { bpfPermissionProblem, btfParseMs, vmlinuxBtf } from './availability.js';
import { DropReasons } from '../../kernel/drop-reasons.js';
import { TrapCounter } from './trap-counter.js';
import { DevlinkCatalog, type TrapCatalog } from '../counters/devlink-catalog.js';

export const PROGRAM_NAME = 'dropmon_drops';
/**
 * Distinct drop points the kernel map holds; past it, drops are counted as
 * "map full" (idle keys are pruned long before). The map is preallocated
 * (no allocation in the drop path), which costs start-up time per entry:
 * about 20 ms per 4096 on a 2-core VM.
 */
export const DEFAULT_MAX_KEYS = 8192;
const DEFAULT_SNAP_LEN = 128;
const DEFAULT_PACKET_RATE = 1000;
const RING_BYTES = 1 << 20;
/** Drains a key may stay unchanged before it is removed (when the map is half full). */
const IDLE_DRAINS = 10;

const ETH_HLEN = 14;

/** `bytes` behind an Ethernet header with zero addresses and EtherType `protocol`. */
export function withEthernetHeader(bytes: Uint8Array, protocol: number): Uint8Array {
  const out = new Uint8Array(ETH_HLEN + bytes.length);
  out[12] = protocol >> 8;
  out[13] = protocol & 0xff;
  out.set(bytes, ETH_HLEN);
  return out;
}

const keyView = (hex: string) => {
  const b = Buffer.from(hex, 'hex');
  return new DataView(b.buffer, b.byteOffset, b.length);
};

export interface BpfSourceOptions {
  /** Count only drops of this network namespace (inode), filtered in the kernel. */
  readonly netns?: number;
  /** Count only drops on this interface index (of `netns`), filtered in the kernel. */
  readonly ifindex?: number;
  /** Per-packet records: bytes kept per packet and records per second per CPU. */
  readonly packets?: { readonly snapLen?: number; readonly perSecondPerCpu?: number };
  readonly maxKeys?: number;
  /** Key by interface and namespace too (default true); false is the cheapest program (benchmarks). */
  readonly attribution?: boolean;
  /** tp_btf (default, falls back to raw_tp when the kernel refuses it) or raw_tp. */
  readonly flavour?: ProgramFlavour;
  /** Count runs of the same key in per-CPU slots before the hash map (default true; false: the slower program, for benchmarks). */
  readonly slots?: boolean;
  /** Ring-buffer poll period. */
  readonly pollMs?: number;
  /** Software drops: the kfree_skb program (default true). */
  readonly software?: boolean;
  /** Hardware drops: the devlink_trap_report program (trap-counter.ts; default false). */
  readonly hardware?: boolean;
  /** Trap actions and devices of input ports (default: devlink). */
  readonly catalog?: TrapCatalog;
  readonly warn?: (message: string) => void;
  /** Reason namer (tests); by default over the kernel's BTF. */
  readonly reasons?: DropReasons;
}

/** Start-up timings (ms), to check the start-up budget. */
export interface BpfStartup {
  btfMs: number;
  loadMs: number;
  attachMs: number;
}

/** The reason namer of the running kernel over the BPF source's (cached) vmlinux BTF; `core` when the caller has that table. */
export function dropReasonsFromBtf(core?: ReadonlyMap<number, string>): DropReasons {
  return new DropReasons({ vmlinux: vmlinuxBtf, ...(core?.size ? { core } : {}) });
}

/**
 * Reason names of the running kernel from BTF: enum skb_drop_reason (prefix
 * stripped), and the reasons of subsystems whose enums are readable now.
 */
export function reasonNamesFromBtf(): Map<number, string> {
  return dropReasonsFromBtf().table();
}

export class BpfDropSource implements DropSource {
  readonly name = 'bpf';
  readonly layout: KernelLayout;
  /** Names reason values, core and subsystem (OPENVSWITCH/OVS_DROP_LAST_ACTION). */
  readonly reasons: DropReasons;
  readonly startup: BpfStartup = { btfMs: 0, loadMs: 0, attachMs: 0 };
  /** The flavour that loaded, and how it was attached. */
  flavour: ProgramFlavour | undefined;
  attachedBy = '';
  private readonly cpus: number;
  private counts: BpfMap | undefined;
  private state: BpfMap | undefined;
  private slots: MappedArray | undefined;
  private slotReader: SlotReader | undefined;
  private ring: RingBuffer | undefined;
  private progFd = -1;
  private linkFd = -1;
  private sink: DropSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly tally = new RunTally();
  private lastState = { mapFull: 0, rateLimited: 0, ringFull: 0 };
  /** CLOCK_MONOTONIC → epoch offset (ns) for packet timestamps. */
  private readonly epochOffsetNs: bigint;
  private closed = false;
  private readonly warn: (m: string) => void;
  private readonly traps: TrapCounter | undefined;

  constructor(private readonly opts: BpfSourceOptions = {}) {
    this.warn = opts.warn ?? (() => {});
    const denied = bpfPermissionProblem();
    if (denied) throw new DropmonError(`the BPF source cannot run here: ${denied}`, 'use --source tracefs');
    const t0 = performance.now();
    const cached = btfParseMs() > 0;
    this.layout = readKernelLayout(vmlinuxBtf());
    this.reasons = opts.reasons ?? dropReasonsFromBtf();
    this.reasons.coreTable();
    // The parse counts even when `--source auto` did it earlier (it is cached).
    this.startup.btfMs = performance.now() - t0 + (cached ? btfParseMs() : 0);
    this.cpus = possibleCpus(readFileSync('/sys/devices/system/cpu/possible', 'latin1'));
    if (opts.software === false && !opts.hardware) throw new DropmonError('the BPF source was asked for neither software nor hardware drops');
    if (opts.hardware) {
      const catalog = opts.catalog ?? new DevlinkCatalog({ warn: this.warn });
      this.traps = new TrapCounter(vmlinuxBtf(), this.cpus, { ...(opts.flavour ? { flavour: opts.flavour } : {}), catalog, warn: this.warn });
    }
    // process.hrtime is CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns.
    this.epochOffsetNs = BigInt(Date.now()) * 1_000_000n - process.hrtime.bigint();
  }

  async start(sink: DropSink): Promise<void> {
    if (this.sink) throw new Error('source already started');
    this.sink = sink;
    if (this.opts.software !== false) this.startDrops();
    try {
      this.traps?.start();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** The kfree_skb program, its maps and (with `packets`) its ring buffer. */
  private startDrops(): void {
    try {
      const t0 = performance.now();
      const maxKeys = this.opts.maxKeys ?? DEFAULT_MAX_KEYS;
      this.counts = new BpfMap({ type: MapType.PERCPU_HASH, keySize: KEY.size, valueSize: 8, maxEntries: maxKeys, name: 'dropmon_counts' }, this.cpus);
      this.state = new BpfMap({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: STATE.size, maxEntries: 1, name: 'dropmon_state' }, this.cpus);
      if (this.opts.slots !== false) this.mapSlots();
      const packets = this.opts.packets;
      if (packets) this.ring = new RingBuffer(RING_BYTES, 'dropmon_packets');
      const build = (flavour: ProgramFlavour) =>
        dropProgram({
          flavour,
          layout: this.layout,
          countsMapFd: this.counts!.fd,
          stateMapFd: this.state!.fd,
          ...(this.slots ? { slotsMapFd: this.slots.map.fd, fencedSlots: arch() !== 'x64' } : {}),
          attribution: this.opts.attribution ?? true,
          ...(this.opts.netns !== undefined ? { netns: this.opts.netns } : {}),
          ...(this.opts.ifindex !== undefined ? { ifindex: this.opts.ifindex } : {}),
          ...(packets && this.ring
            ? { packets: { ringMapFd: this.ring.map.fd, snapLen: packets.snapLen ?? DEFAULT_SNAP_LEN, perSecondPerCpu: packets.perSecondPerCpu ?? DEFAULT_PACKET_RATE } }
            : {}),
        });
      const order: ProgramFlavour[] = this.opts.flavour === 'raw_tp' ? ['raw_tp'] : ['tp_btf', 'raw_tp'];
      let firstError: unknown;
      for (const flavour of order) {
        try {
          this.progFd =
            flavour === 'tp_btf'
              ? loadProgram({ type: ProgType.TRACING, insns: build(flavour), name: PROGRAM_NAME, expectedAttachType: AttachType.TRACE_RAW_TP, attachBtfId: this.layout.tracepointBtfId })
              : loadProgram({ type: ProgType.RAW_TRACEPOINT, insns: build(flavour), name: PROGRAM_NAME });
          this.flavour = flavour;
          break;
        } catch (err) {
          firstError ??= err;
          // Permission errors will not go away with the other flavour.
          if (err instanceof BpfError && (err.errno === 1 || err.errno === 13) && !err.verifierLog) throw err;
          if (flavour === 'tp_btf' && order.length > 1) this.warn(`tp_btf program refused (${(err as Error).message}); using raw_tp with bpf_probe_read_kernel`);
        }
      }
      if (this.progFd < 0) throw firstError;
      this.startup.loadMs = performance.now() - t0;
      const t1 = performance.now();
      if (this.flavour === 'tp_btf') {
        const link = attachTracing(this.progFd);
        this.linkFd = link.fd;
        this.attachedBy = link.how;
      } else {
        this.linkFd = rawTracepointOpen(this.progFd, 'kfree_skb');
        this.attachedBy = 'raw_tracepoint_open';
      }
      this.startup.attachMs = performance.now() - t1;
    } catch (err) {
      this.close();
      throw err;
    }
    if (this.ring) this.schedule();
  }

  /** The per-CPU slots, mapped; without them (the kernel refuses) the program counts in the map directly. */
  private mapSlots(): void {
    try {
      this.slots = new MappedArray(SLOT.size, this.cpus, 'dropmon_slots');
      this.slotReader = SlotReader.of(this.slots.words, this.cpus);
    } catch (err) {
      this.warn(`per-CPU slots unavailable (${(err as Error).message}): every drop goes to the hash map`);
    }
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.pollPackets();
      this.schedule();
    }, this.opts.pollMs ?? 100);
    this.timer.unref?.();
  }

  describe(): string {
    const f = [
      this.opts.netns !== undefined ? `netns ${this.opts.netns}` : '',
      this.opts.ifindex !== undefined ? `ifindex ${this.opts.ifindex}` : '',
    ].filter(Boolean);
    const pk = this.opts.packets ? `, packets (${this.opts.packets.perSecondPerCpu ?? DEFAULT_PACKET_RATE}/s per CPU, ${this.opts.packets.snapLen ?? DEFAULT_SNAP_LEN} bytes)` : '';
    const t = this.startup;
    const hw = this.traps ? this.traps.describe() : '';
    if (this.opts.software === false) return hw;
    return `${hw ? `${hw} and ` : ''}kfree_skb via BPF (${this.flavour ?? '?'}, ${this.attachedBy}${f.length ? `, in-kernel filter ${f.join(' ')}` : ''}${pk}; start-up ${Math.round(t.btfMs + t.loadMs + t.attachMs)} ms)`;
  }

  drain(final = false): void {
    if (this.closed || !this.sink) return;
    if (final) this.detach();
    if (this.traps) {
      const sink = this.sink;
      const hw = this.traps.drain((l) => sink.loss(l));
      if (hw.length) sink.drops(hw);
    }
    if (!this.counts) return;
    this.pollPackets();
    const samples: DropSample[] = [];
    const cpus = this.cpus;
    const totals = new Map<string, number>();
    // The map, then the slots: see slots.ts for why this order counts each drop once.
    this.counts.forEach((key, value, off) => {
      let total = 0;
      for (let c = 0; c < cpus; c++) total += Number(value.getBigUint64(off + 8 * c, true));
      totals.set(Buffer.from(key.buffer, key.byteOffset, key.length).toString('hex'), total);
    });
    const slots = this.slotReader?.read() ?? [];
    const { grown, held } = this.tally.update(totals, slots);
    for (const [k, delta] of grown) samples.push(this.sample(keyView(k), delta));
    this.prune(samples, held, slots.every((r) => r.consistent));
    // Biggest first: the aggregator keeps the first --max-points points of an
    // interval, and the map's order says nothing about size.
    samples.sort((x, y) => y.count - x.count);
    if (samples.length) this.sink.drops(samples);
    this.reportState();
  }

  /**
   * Stop the program before the last drain. A drain counts a run that moves
   * from its CPU's slot into the map while the drain reads (another drop
   * point came on that CPU) in the next drain (slots.ts); after the last
   * one there is none, and a whole run was lost: 300 forwarded packets with
   * nothing else on their CPU, then one drop elsewhere as the last drain
   * read. Once no program runs, no run moves, and the drain is exact.
   */
  private detach(): void {
    if (this.linkFd < 0) return;
    closeFd(this.linkFd);
    this.linkFd = -1;
    // A program that started before the detach may still be finishing on another CPU (it runs for
    // microseconds); the slot reader skips a slot caught mid-change, so give it that long.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2);
  }

  /** A key of the counts map (the program's layout, KEY) and its count as a sample. */
  sample(k: DataView, count: number): DropSample {
    const reason = k.getUint32(KEY.reason, true);
    return {
      location: k.getBigUint64(KEY.location, true),
      reason,
      reasonName: this.reasons.name(reason),
      protocol: k.getUint16(KEY.protocol, false),
      origin: 'software',
      count,
      ...(this.opts.attribution === false ? {} : { ifindex: k.getUint32(KEY.ifindex, true), netns: k.getUint32(KEY.netns, true) }),
    };
  }

  /**
   * Keep the map from filling up with drop points that stopped: when it is
   * half full, remove keys idle for IDLE_DRAINS reads, counting what they
   * gained since the last read. A key some CPU's slot holds is kept (its run
   * will move into the map), and nothing is removed when a slot could not be
   * read (it might hold the key). (A drop landing in the map on a key in the
   * microseconds between its read and its removal would be lost; idle keys
   * make that unlikely, and a full map is counted, never silent.)
   */
  private prune(samples: DropSample[], held: ReadonlySet<string>, slotsRead: boolean): void {
    const map = this.counts!;
    const tracked = this.tally.tracked;
    if (tracked.size < map.spec.maxEntries / 2 || !slotsRead) return;
    for (const [k, t] of tracked) {
      if (t.idle < IDLE_DRAINS || held.has(k)) continue;
      map.key.bytes.set(Buffer.from(k, 'hex'));
      if (map.lookupAndDelete()) {
        let total = 0;
        for (let c = 0; c < this.cpus; c++) total += Number(map.value.view.getBigUint64(8 * c, true));
        if (total > t.reported) samples.push(this.sample(keyView(k), total - t.reported));
      }
      tracked.delete(k);
    }
  }

  private reportState(): void {
    const st = this.state;
    if (!st || !this.sink) return;
    st.key.clear();
    if (!st.lookup()) return;
    const sum = (field: number) => {
      let n = 0;
      const stride = (STATE.size + 7) & ~7;
      for (let c = 0; c < this.cpus; c++) n += Number(st.value.view.getBigUint64(c * stride + field, true));
      return n;
    };
    const now = { mapFull: sum(STATE.mapFull), rateLimited: sum(STATE.rateLimited), ringFull: sum(STATE.ringFull) };
    const d = (k: keyof typeof now) => Math.max(0, now[k] - this.lastState[k]);
    if (d('mapFull')) this.sink.loss({ lost: d('mapFull'), cause: `bpf counts map full (${this.counts?.spec.maxEntries} drop points)` });
    if (d('rateLimited')) this.sink.loss({ lost: d('rateLimited'), cause: 'packet records over the rate limit' });
    if (d('ringFull')) this.sink.loss({ lost: d('ringFull'), cause: 'packet records: ring buffer full' });
    this.lastState = now;
  }

  /**
   * Packet records to samples carrying the packet. Their count is 0: the
   * drops themselves are counted by the map (exactly, rate limit or not).
   */
  private pollPackets(): void {
    if (!this.ring || !this.sink || this.closed) return;
    const out: DropSample[] = [];
    this.ring.poll((v, o, len) => {
      if (len < RECORD.data) return;
      const reason = v.getUint32(o + KEY.reason, true);
      const captured = Math.min(v.getUint16(o + RECORD.captured, true), len - RECORD.data);
      const ifindex = v.getUint32(o + KEY.ifindex, true);
      const bytes = new Uint8Array(v.buffer, v.byteOffset + o + RECORD.data, captured);
      const protocol = v.getUint16(o + KEY.protocol, false);
      // Without a MAC header (output path, tunnels), the bytes start at the network
      // header: a synthetic Ethernet header (zero addresses, skb->protocol) in front
      // lets every packet output and pcap decode them like the others.
      const hasMac = (v.getUint16(o + RECORD.flags, true) & RECORD_HAS_MAC) !== 0;
      const payload = hasMac ? bytes.slice() : withEthernetHeader(bytes, protocol);
      const netns = v.getUint32(o + KEY.netns, true);
      const ifname = netns && ifindex ? attribution().ifname(netns, ifindex) : undefined;
      const packet: DroppedPacket = {
        timestamp: v.getBigUint64(o + RECORD.timestamp, true) + this.epochOffsetNs,
        ifindex,
        ...(ifname !== undefined ? { ifname } : {}),
        origLen: v.getUint32(o + RECORD.len, true) + (hasMac ? 0 : ETH_HLEN),
        payload,
      };
      out.push({
        location: v.getBigUint64(o + KEY.location, true),
        reason,
        reasonName: this.reasons.name(reason),
        protocol,
        origin: 'software',
        count: 0,
        ifindex,
        netns,
        packet,
      });
    });
    if (out.length) this.sink.drops(out);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    // The link first: from then on the program no longer runs.
    closeFd(this.linkFd);
    closeFd(this.progFd);
    this.linkFd = this.progFd = -1;
    this.ring?.close();
    this.counts?.close();
    this.state?.close();
    this.slots?.close();
    this.slotReader = undefined;
    this.traps?.close();
  }
}

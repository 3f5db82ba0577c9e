/**
 * Hardware drops in the BPF source: loads and attaches the trap program
 * (trap-program.ts), and turns its map into DropSamples once per drain, as
 * the drop program's map is. The map is bounded (MAX_TRAP_KEYS); reports
 * that find it full are counted and reported as lost, never silently.
 * Nothing is pinned: closing the file descriptors detaches and frees all.
 */
import type { DropSample, LossSample } from '../../core/drop.js';
import { hardwareSample } from '../../core/drop.js';
import { BpfError, BpfMap, MapType, ProgType, AttachType, attachTracing, closeFd, loadProgram, rawTracepointOpen } from '../../kernel/bpf/syscall.js';
import type { Btf } from '../../kernel/bpf/btf.js';
import { currentNetnsInode } from '../../kernel/setns.js';
import { TRAP_TYPES } from '../counters/devlink.js';
import type { TrapCatalog } from '../counters/devlink-catalog.js';
import type { ProgramFlavour } from './programs.js';
import { TRAP_KEY, TRAP_STATE, TRAP_TRACEPOINT, readTrapLayout, trapProgram, type TrapLayout } from './trap-program.js';

export const TRAP_PROGRAM_NAME = 'dropmon_traps';
/** Distinct (trap, group, port, namespace, type) keys the kernel map holds. */
export const MAX_TRAP_KEYS = 1024;

/** Bytes up to the first NUL. */
function cString(b: Uint8Array, at: number, len: number): string {
  let s = '';
  for (let i = at; i < at + len && b[i] !== 0; i++) s += String.fromCharCode(b[i]);
  return s;
}

export class TrapCounter {
  readonly layout: TrapLayout;
  flavour: ProgramFlavour | undefined;
  attachedBy = '';
  private counts: BpfMap | undefined;
  private state: BpfMap | undefined;
  private progFd = -1;
  private linkFd = -1;
  private readonly last = new Map<string, number>();
  private lastMapFull = 0;
  private readonly ownNetns: number;

  constructor(
    btf: Btf,
    private readonly cpus: number,
    private readonly opts: { readonly flavour?: ProgramFlavour; readonly catalog?: TrapCatalog; readonly warn?: (m: string) => void } = {},
  ) {
    this.layout = readTrapLayout(btf);
    this.ownNetns = currentNetnsInode();
  }

  /** Create the maps, load the program (tp_btf, else raw_tp) and attach it. */
  start(): void {
    try {
      this.counts = new BpfMap({ type: MapType.PERCPU_HASH, keySize: TRAP_KEY.size, valueSize: 8, maxEntries: MAX_TRAP_KEYS, name: 'dropmon_tcounts' }, this.cpus);
      this.state = new BpfMap({ type: MapType.PERCPU_ARRAY, keySize: 4, valueSize: TRAP_STATE.size, maxEntries: 1, name: 'dropmon_tstate' }, this.cpus);
      const order: ProgramFlavour[] = this.opts.flavour === 'raw_tp' ? ['raw_tp'] : ['tp_btf', 'raw_tp'];
      let firstError: unknown;
      for (const flavour of order) {
        const insns = trapProgram({ flavour, layout: this.layout, countsMapFd: this.counts.fd, stateMapFd: this.state.fd });
        try {
          this.progFd =
            flavour === 'tp_btf'
              ? loadProgram({ type: ProgType.TRACING, insns, name: TRAP_PROGRAM_NAME, expectedAttachType: AttachType.TRACE_RAW_TP, attachBtfId: this.layout.tracepointBtfId })
              : loadProgram({ type: ProgType.RAW_TRACEPOINT, insns, name: TRAP_PROGRAM_NAME });
          this.flavour = flavour;
          break;
        } catch (err) {
          firstError ??= err;
          if (err instanceof BpfError && (err.errno === 1 || err.errno === 13) && !err.verifierLog) throw err;
          if (flavour === 'tp_btf' && order.length > 1) this.opts.warn?.(`tp_btf trap program refused (${(err as Error).message}); using raw_tp`);
        }
      }
      if (this.progFd < 0) throw firstError;
      if (this.flavour === 'tp_btf') {
        const link = attachTracing(this.progFd);
        this.linkFd = link.fd;
        this.attachedBy = link.how;
      } else {
        this.linkFd = rawTracepointOpen(this.progFd, TRAP_TRACEPOINT);
        this.attachedBy = 'raw_tracepoint_open';
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  describe(): string {
    return `${TRAP_TRACEPOINT} via BPF (${this.flavour ?? '?'}, ${this.attachedBy})`;
  }

  /** Reports counted since the last drain, as hardware drop samples; losses through `loss`. */
  drain(loss: (l: LossSample) => void): DropSample[] {
    const out: DropSample[] = [];
    if (!this.counts) return out;
    const seen = new Set<string>();
    this.counts.forEach((key, value, off) => {
      let total = 0;
      for (let c = 0; c < this.cpus; c++) total += Number(value.getBigUint64(off + 8 * c, true));
      const k = Buffer.from(key.buffer, key.byteOffset, TRAP_KEY.size).toString('latin1');
      seen.add(k);
      const delta = total - (this.last.get(k) ?? 0);
      this.last.set(k, total);
      if (delta > 0) out.push(this.sample(key, delta));
    });
    for (const k of this.last.keys()) if (!seen.has(k)) this.last.delete(k);
    const st = this.state;
    if (st) {
      st.key.clear();
      if (st.lookup()) {
        let full = 0;
        for (let c = 0; c < this.cpus; c++) full += Number(st.value.view.getBigUint64(c * 8 + TRAP_STATE.mapFull, true));
        if (full > this.lastMapFull) loss({ lost: full - this.lastMapFull, cause: `bpf trap map full (${MAX_TRAP_KEYS} traps and ports)` });
        this.lastMapFull = full;
      }
    }
    return out;
  }

  private sample(key: Uint8Array, count: number): DropSample {
    const v = new DataView(key.buffer, key.byteOffset, TRAP_KEY.size);
    const name = cString(key, TRAP_KEY.name, TRAP_KEY.nameLen);
    const group = cString(key, TRAP_KEY.group, TRAP_KEY.groupLen);
    const ifindex = v.getUint32(TRAP_KEY.ifindex, true);
    const netns = v.getUint32(TRAP_KEY.netns, true);
    const typeNum = v.getUint32(TRAP_KEY.type, true);
    // devlink answers for the devices of dropmon's own namespace only.
    const details = ifindex && netns === this.ownNetns ? this.opts.catalog?.trapOnPort(ifindex, name) : undefined;
    return hardwareSample(
      {
        name,
        ...(group ? { group } : {}),
        type: TRAP_TYPES[typeNum] ?? `type ${typeNum}`,
        ...(details ? { action: details.action, device: details.device } : {}),
      },
      count,
      ifindex ? { ifindex, netns } : undefined,
    );
  }

  close(): void {
    closeFd(this.linkFd);
    closeFd(this.progFd);
    this.linkFd = this.progFd = -1;
    this.counts?.close();
    this.state?.close();
    this.counts = this.state = undefined;
  }
}

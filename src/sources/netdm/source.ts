/**
 * The NET_DM drop source: the kernel's drop_monitor batches drops per CPU
 * (summary mode, ~1 s hysteresis, 64 points) or queues each dropped packet
 * (packet mode), including hardware drops from devlink traps.
 *
 * NET_DM state is global and outlives us: the mode is set explicitly before
 * START, monitoring started by someone else is left alone unless forced,
 * and close() STOPs exactly what start() started. Who started it is
 * recorded (NETDM_OWNER_RECORD), so that a dropmon killed with -9 has its
 * monitoring stopped by the next one.
 */
import { DropmonError, ParseError } from '../../core/errors.js';
import { NO_REASON, type DropSample, type DropSink, type DropSource } from '../../core/drop.js';
import { parseMessages } from '../../kernel/netlink/message.js';
import { parseGenl } from '../../kernel/netlink/genl.js';
import { NETLINK_GENERIC, NetlinkSocket } from '../../kernel/netlink/socket.js';
import { selfIdentity } from '../../kernel/process-identity.js';
import { ownerRecords } from '../owner-records.js';
import { NETDM_OWNER_RECORD, NetdmClient, originsText } from './client.js';
import { decodeAlert, type AlertMode, type Origins, type PacketAlert } from './protocol.js';
import { DropReasons } from '../../kernel/drop-reasons.js';

export interface NetdmSourceOptions {
  readonly mode?: AlertMode;
  readonly origins?: Origins;
  /** Packet mode: bytes of each packet to receive (0: all). */
  readonly truncLen?: number;
  /** Packet mode: the kernel's per-CPU queue length (default 1000). */
  readonly queueLen?: number;
  /** Take over monitoring that another program started. */
  readonly force?: boolean;
  /** Only listen to alerts: never configure, start or stop NET_DM (another program runs it). */
  readonly passive?: boolean;
  /** Keep the raw netlink messages on samples (for pcap). */
  readonly keepRaw?: boolean;
  readonly pollMs?: number;
  /** Socket receive buffer for alerts. */
  readonly rcvbuf?: number;
  readonly warn?: (message: string) => void;
  /**
   * Maps the reason strings of packet alerts onto the names the other
   * sources give (a subsystem's reason gets its SUBSYS/ prefix); by default
   * over the kernel's BTF, read at the first reason that is not a core one.
   */
  readonly reasons?: DropReasons;
}

export class NetdmDropSource implements DropSource {
  readonly name = 'netdm';
  private client: NetdmClient | undefined;
  private events: NetlinkSocket | undefined;
  private sink: DropSink | undefined;
  private timer: NodeJS.Timeout | undefined;
  private started: Origins | undefined;
  /** This process is recorded as the owner of NET_DM monitoring. */
  private recorded = false;
  private closed = false;
  private lastOverruns = 0;
  private lastSocketDrops = 0;
  private lastTailDrops = { sw: 0n, hw: 0n };
  readonly mode: AlertMode;
  readonly origins: Origins;
  /** Alerts received, by kind. */
  readonly stats = { summaryAlerts: 0, packetAlerts: 0, malformed: 0 };

  private readonly reasons: DropReasons;

  constructor(private readonly opts: NetdmSourceOptions = {}) {
    this.reasons = opts.reasons ?? new DropReasons();
    this.mode = opts.mode ?? 'summary';
    this.origins = opts.origins ?? { sw: true, hw: false };
  }

  async start(sink: DropSink): Promise<void> {
    this.sink = sink;
    const client = NetdmClient.open();
    this.client = client;
    if (this.opts.passive) {
      this.events = new NetlinkSocket(NETLINK_GENERIC, { groups: [client.eventsGroup], rcvbuf: this.opts.rcvbuf ?? 16 << 20 });
      // Tail drops count from module load: report only those from now on.
      if (this.mode === 'packet') this.lastTailDrops = this.tailDrops() ?? this.lastTailDrops;
      this.schedule();
      return;
    }
    try {
      const busy = client.isMonitoring();
      if (busy) {
        if (!this.opts.force)
          throw new DropmonError(
            'NET_DM monitoring is already running, started by another program (dropwatch, dwdump, another dropmon?)',
            'dropmon leaves it alone; to take it over (this changes it for everyone): --force',
          );
        this.opts.warn?.('NET_DM was already monitoring; --force: stopping it to reconfigure');
        client.stop({ sw: true, hw: true });
      }
      client.configure({
        mode: this.mode,
        ...(this.mode === 'packet' ? { truncLen: this.opts.truncLen ?? 0, queueLen: this.opts.queueLen ?? 1000 } : {}),
      });
      // Join the alert group before START, so the first alerts are not missed.
      this.events = new NetlinkSocket(NETLINK_GENERIC, {
        groups: [client.eventsGroup],
        rcvbuf: this.opts.rcvbuf ?? (this.mode === 'packet' ? 16 << 20 : 4 << 20),
      });
      if (this.mode === 'packet') {
        const s = client.getStats();
        this.lastTailDrops = { sw: s.swDropped, hw: s.hwDropped };
      }
      // Recorded before START: a kill -9 right after it must find the record.
      this.recordOwner();
      client.start(this.origins);
      this.started = this.origins;
    } catch (err) {
      this.close();
      throw err;
    }
    this.schedule();
  }

  private recordOwner(): void {
    try {
      ownerRecords.write(NETDM_OWNER_RECORD, { sw: this.origins.sw, hw: this.origins.hw });
      this.recorded = true;
    } catch (err) {
      this.opts.warn?.(
        `cannot record this dropmon as the owner of NET_DM monitoring (${(err as Error).message}); if it is killed, stop NET_DM by hand: dropmon netdm stop`,
      );
    }
  }

  private tailDrops(): { sw: bigint; hw: bigint } | undefined {
    try {
      const s = this.client?.getStats();
      return s ? { sw: s.swDropped, hw: s.hwDropped } : undefined;
    } catch {
      return undefined; // stats are best effort
    }
  }

  /** The kernel's NEWFAMILY message for NET_DM (pcap files start with it). */
  get familyMessage(): Uint8Array | undefined {
    return this.client?.family.raw;
  }

  /** Human description for the start-up line. */
  describe(): string {
    if (this.opts.passive) return 'NET_DM alerts (passive: another program controls NET_DM)';
    return `NET_DM ${this.mode} mode, ${originsText(this.origins)} drops`;
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.pump();
      this.schedule();
    }, this.opts.pollMs ?? 10);
    this.timer.unref?.();
  }

  private pump(): void {
    const ev = this.events, sink = this.sink, famId = this.client?.family.id;
    if (!ev || !sink || famId === undefined) return;
    const samples: DropSample[] = [];
    for (let n = 0; n < 100_000; n++) {
      const dgram = ev.receive();
      if (!dgram) break;
      let msgs;
      try {
        msgs = parseMessages(dgram);
      } catch (err) {
        this.badMessage(err);
        continue;
      }
      for (const m of msgs) {
        if (m.type !== famId) continue;
        try {
          const alert = decodeAlert(parseGenl(m));
          if (!alert) continue;
          if (alert.kind === 'summary') {
            this.stats.summaryAlerts++;
            for (const p of alert.points)
              samples.push({ location: p.pc, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'software', count: p.count });
            for (const h of alert.hw)
              samples.push({ location: 0n, reason: NO_REASON, reasonName: '', protocol: 0, origin: 'hardware', count: h.count, trap: { name: h.trap } });
          } else {
            this.stats.packetAlerts++;
            samples.push(packetAlertSample(alert, this.opts.keepRaw ? dgram.slice(0, m.length) : undefined, this.reasons));
          }
        } catch (err) {
          this.badMessage(err);
        }
      }
    }
    if (samples.length) sink.drops(samples);
  }

  private badMessage(err: unknown): void {
    if (!(err instanceof ParseError)) throw err;
    if (this.stats.malformed++ < 5) this.opts.warn?.(`skipping a malformed NET_DM message: ${err.message}`);
  }



  drain(): void {
    if (this.closed) return;
    this.pump();
    const sink = this.sink;
    if (!sink || !this.events) return;
    // Alerts the kernel could not queue on our socket: exact from
    // /proc/net/netlink; else at least one per ENOBUFS we saw.
    const dropped = this.events.drops();
    if (dropped !== undefined) {
      if (dropped > this.lastSocketDrops) {
        const n = dropped - this.lastSocketDrops;
        // a summary alert carries many drops; a packet alert, one
        sink.loss({ lost: n, cause: this.mode === 'packet' ? 'netlink socket full (packet alerts lost)' : 'netlink socket full (summary alerts lost)' });
      }
      this.lastSocketDrops = dropped;
    } else if (this.events.overruns > this.lastOverruns) {
      sink.loss({ lost: this.events.overruns - this.lastOverruns, cause: 'netlink socket overruns (ENOBUFS; at least this many alerts lost)' });
    }
    this.lastOverruns = this.events.overruns;
    if (this.mode === 'packet' && this.client) {
      try {
        const s = this.client.getStats();
        const sw = Number(s.swDropped - this.lastTailDrops.sw), hw = Number(s.hwDropped - this.lastTailDrops.hw);
        if (sw > 0) sink.loss({ lost: sw, cause: 'NET_DM software queue full (tail drops)' });
        if (hw > 0) sink.loss({ lost: hw, cause: 'NET_DM hardware queue full (tail drops)' });
        this.lastTailDrops = { sw: s.swDropped, hw: s.hwDropped };
      } catch {
        /* stats are best effort */
      }
    }
  }

  /** STOP what we started, close the sockets. Synchronous, idempotent. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    let stopped = true;
    if (this.started && this.client) {
      try {
        this.client.stop(this.started);
      } catch (err) {
        stopped = false; // the record stays: the next dropmon tries again
        this.opts.warn?.(`could not stop NET_DM: ${(err as Error).message}; stop it by hand: dropmon netdm stop`);
      }
      this.started = undefined;
    }
    if (this.recorded && stopped) ownerRecords.remove(NETDM_OWNER_RECORD, selfIdentity());
    this.recorded = false;
    this.events?.close();
    this.client?.close();
  }
}

/** A packet alert as a sample of one drop; its reason named like the other sources name it. */
export function packetAlertSample(a: PacketAlert, raw: Uint8Array | undefined, reasons: DropReasons): DropSample {
  return {
    location: a.pc ?? 0n,
    reason: NO_REASON,
    reasonName: a.reason ? reasons.netdmName(a.reason) : '',
    protocol: a.proto ?? 0,
    origin: a.origin,
    count: 1,
    ...(a.trapName ? { trap: { name: a.trapName, ...(a.trapGroup ? { group: a.trapGroup } : {}) } } : {}),
    packet: {
      ...(a.timestamp !== undefined ? { timestamp: a.timestamp } : {}),
      ...(a.ifindex !== undefined ? { ifindex: a.ifindex } : {}),
      ...(a.ifname !== undefined ? { ifname: a.ifname } : {}),
      ...(a.origLen !== undefined ? { origLen: a.origLen } : {}),
      ...(a.payload !== undefined ? { payload: a.payload.slice() } : {}),
      ...(a.symbol !== undefined ? { kernelSymbol: a.symbol } : {}),
      ...(raw ? { raw } : {}),
    },
  };
}

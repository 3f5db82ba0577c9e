/**
 * NET_DM control: family resolution, CONFIG/START/STOP, CONFIG_GET/STATS_GET,
 * with every error of the kernel (net/core/drop_monitor.c) turned into one
 * line that says what to do. NET_DM state is global to the host and outlives
 * its client: callers must STOP what they started (see NetdmDropSource).
 */
import { readlinkSync } from 'node:fs';
import { DropmonError } from '../../core/errors.js';
import { parseGenl, resolveFamily, type GenlFamily } from '../../kernel/netlink/genl.js';
import { NETLINK_GENERIC, NetlinkError, NetlinkSocket, errnoName } from '../../kernel/netlink/socket.js';
import {
  NET_DM_FAMILY,
  configGetRequest,
  configRequest,
  decodeConfig,
  decodeStats,
  startRequest,
  statsGetRequest,
  stopRequest,
  type ConfigRequest,
  type NetdmConfig,
  type NetdmStats,
  type Origins,
} from './protocol.js';

/**
 * Where the dropmon that started NET_DM monitoring records itself (in
 * sources/owner-records.ts), with the origins it started: NET_DM keeps
 * monitoring after a kill -9, and this is how the next dropmon knows it may
 * stop it (reclaim.ts), and that monitoring without a record is someone else's.
 */
export const NETDM_OWNER_RECORD = 'netdm.owner';

/** True when this process is not in the initial network namespace (best effort). */
export function inChildNetns(): boolean {
  try {
    return readlinkSync('/proc/self/ns/net') !== readlinkSync('/proc/1/ns/net');
  } catch {
    return false;
  }
}

/** Why NET_DM is not there, for messages and for --source auto. */
export function netdmAbsentReason(): string {
  if (inChildNetns()) return 'NET_DM exists only in the initial network namespace, and dropmon runs in another one (run it on the host network)';
  return 'the kernel has no NET_DM family: drop_monitor is not built or cannot be loaded (try: modprobe drop_monitor)';
}

/** One line, with what to do, for each error of drop_monitor (protocol notes §5.3). */
export function explain(err: NetlinkError, action: string): DropmonError {
  const k = err.extack ? ` (kernel: ${err.extack})` : '';
  switch (err.errno) {
    case 1: // EPERM
      return new DropmonError(`${action}: permission denied${k}`, 'controlling NET_DM needs CAP_NET_ADMIN in the initial user namespace: run as root');
    case 16: // EBUSY
      return new DropmonError(`${action}: NET_DM is monitoring, so it cannot be configured${k}`, 'stop it first (dropmon netdm stop), or pass --force');
    case 11: // EAGAIN
      return new DropmonError(`${action}: NET_DM is already in that state${k}`);
    case 95: // EOPNOTSUPP
      return new DropmonError(`${action}: not supported by this kernel${k}`, 'hardware drops need CONFIG_NET_DEVLINK and a driver with devlink traps; try --sw only');
    case 115: // EINPROGRESS: the kernel's odd code for a failed probe registration
    case 19: // ENODEV
      return new DropmonError(`${action}: the kernel could not attach its drop probes${k}`, 'check dmesg; another tracer may hold the tracepoints, or the module is being unloaded');
    case 22: // EINVAL
      return new DropmonError(`${action}: the kernel rejected the request${k}`, 'this is a dropmon bug or a kernel older than 5.4: please report it with the kernel version');
    case 524: // ENOTSUPP (kernels before 5.4)
      return new DropmonError(`${action}: this kernel's NET_DM predates configuration (before Linux 5.4)${k}`, 'only summary mode of software drops works here');
    default:
      return new DropmonError(`${action}: ${errnoName(err.errno)}${k}`);
  }
}

export class NetdmClient {
  private constructor(
    private readonly sock: NetlinkSocket,
    readonly family: GenlFamily,
  ) {}

  /** Resolve NET_DM (this autoloads drop_monitor); undefined when the family is absent. */
  static tryOpen(): NetdmClient | undefined {
    const sock = new NetlinkSocket(NETLINK_GENERIC);
    try {
      const family = resolveFamily(sock, NET_DM_FAMILY);
      if (!family) {
        sock.close();
        return undefined;
      }
      return new NetdmClient(sock, family);
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  static open(): NetdmClient {
    const c = NetdmClient.tryOpen();
    if (!c) throw new DropmonError(netdmAbsentReason(), 'use the tracefs source instead: dropmon watch --source tracefs');
    return c;
  }

  /** Multicast group id of the alerts (fixed at 1 by the kernel, read anyway). */
  get eventsGroup(): number {
    return this.family.groups.get('events') ?? 1;
  }

  private call(payload: Uint8Array, action: string) {
    try {
      return this.sock.request(this.family.id, 0, payload, action);
    } catch (err) {
      if (err instanceof NetlinkError) throw explain(err, action);
      throw err;
    }
  }

  getConfig(): NetdmConfig {
    const r = this.call(configGetRequest(), 'reading the NET_DM configuration').find((m) => m.type === this.family.id);
    if (!r) throw new DropmonError('NET_DM sent no configuration');
    return decodeConfig(parseGenl(r));
  }

  getStats(): NetdmStats {
    const r = this.call(statsGetRequest(), 'reading NET_DM statistics').find((m) => m.type === this.family.id);
    if (!r) throw new DropmonError('NET_DM sent no statistics');
    return decodeStats(parseGenl(r));
  }

  configure(c: ConfigRequest): void {
    this.call(configRequest(c), 'configuring NET_DM');
  }

  start(o: Origins): void {
    this.call(startRequest(o), `starting NET_DM (${originsText(o)})`);
  }

  /** STOP; stopping what is already stopped is success (0 on current kernels, EAGAIN before 5.4). */
  stop(o: Origins): void {
    try {
      this.sock.request(this.family.id, 0, stopRequest(o), 'stopping NET_DM');
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 11) return;
      if (err instanceof NetlinkError) throw explain(err, 'stopping NET_DM');
      throw err;
    }
  }

  /**
   * Is monitoring on (by anyone)? NET_DM has no query for it; a CONFIG with no
   * attributes changes nothing and fails with EBUSY exactly when monitoring
   * runs. Needs CAP_NET_ADMIN; undefined when the kernel would not say.
   */
  isMonitoring(): boolean | undefined {
    try {
      this.sock.request(this.family.id, 0, configRequest({}), 'probing NET_DM');
      return false;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === 16) return true;
      return undefined;
    }
  }

  close(): void {
    this.sock.close();
  }
}

export function originsText(o: Origins): string {
  return [o.sw ? 'software' : '', o.hw ? 'hardware' : ''].filter(Boolean).join(' and ') || 'software';
}


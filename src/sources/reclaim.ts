/**
 * Reclaim what dead dropmons left on the host. kill -9, the OOM killer or a
 * crash give a dropmon no chance to undo its changes, and two of them cost
 * every packet of the host until someone does:
 *  - its tracefs instance (instances/dropmon-PID), with skb:kfree_skb enabled;
 *  - NET_DM monitoring it started (one state for the whole host).
 * BPF needs nothing: the BPF source holds its programs and links by file
 * descriptor only, never pinned, so the kernel detaches and frees them when
 * the process dies (test/sources/bpf/bpf-source.test.ts checks it).
 *
 * Every dropmon that touches the kernel calls reclaimLeftovers() once at
 * start, before it changes anything (the CLI's entry point for its commands,
 * the service when it is made), so whatever runs next cleans up after
 * whatever died, whichever source either used. It costs a readdir and a few
 * small reads, and never throws: what cannot be judged or removed is left.
 *
 * Whose is an instance, and is its owner dead? The rule:
 *  1. The name gives the owner's pid and PID namespace: dropmon-PID is the
 *     initial namespace's, dropmon-PID-pidnsINODE another's (ownInstanceName).
 *     An instance of a PID namespace other than ours is never touched: its pid
 *     means nothing in our /proc and may be a live process of ours. (So the
 *     host's dropmons leave a container's instances alone, and the other way
 *     round; one that dies in a container is reclaimed by the next one there.)
 *  2. With an owner record (owner-records.ts) for it that we can trust and
 *     that agrees with the name: the owner is dead when our /proc has no such
 *     pid, or the pid's process started at another time (the pid was reused).
 *  3. Without one (an instance of a dropmon from before the records, or that
 *     could not write to /run): the owner is dead when our /proc has no such
 *     pid, or the process there is not a dropmon (the pid was reused by
 *     another program); a live dropmon keeps its instance. Our own pid is a
 *     dead namesake's: this runs before we create our own instance.
 *
 * NET_DM monitoring is stopped only when its owner record names a dead
 * dropmon (rule 2): the record is the only sign a dropmon started it. No
 * record, a live owner or one we cannot judge: someone else's (dropwatch,
 * dwdump, a live dropmon, a dropmon in another PID namespace), never touched.
 * One window remains: monitoring the dead dropmon left, stopped and started
 * again by a program that knows nothing of the record (dropwatch), is
 * stopped; `dropmon netdm stop` removes the record, so a stop made with it
 * closes that window.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveness, processStart, procShowsOwnPids, selfIdentity, type ProcessIdentity } from '../kernel/process-identity.js';
import { NETDM_OWNER_RECORD, NetdmClient, inChildNetns, originsText } from './netdm/client.js';
import { ownerRecords, sameProcess, type OwnerRecords } from './owner-records.js';
import { instanceOwner, instanceRecord, removeInstanceDir } from './tracefs/instance.js';
import { mountedTracefsRoot } from './tracefs/tracefs.js';

export interface ReclaimOptions {
  /** The tracefs root; default the mounted one; null: leave instances alone. */
  readonly tracefs?: string | null;
  /** Where owners are recorded (tests use their own). */
  readonly records?: OwnerRecords;
  /** Stop a dead dropmon's NET_DM monitoring (default true). */
  readonly netdm?: boolean;
}

/** Reclaim what dead dropmons left; one phrase per thing reclaimed ("removed tracefs instance dropmon-123"). */
export function reclaimLeftovers(opts: ReclaimOptions = {}): string[] {
  const me = selfIdentity();
  if (!me) return []; // without /proc no owner can be judged
  const records = opts.records ?? ownerRecords;
  const done: string[] = [];
  try {
    const root = opts.tracefs === undefined ? mountedTracefsRoot() : opts.tracefs;
    if (root) done.push(...reclaimInstances(root, records, me));
  } catch {
    /* never fatal: what could not be read stays for the next start */
  }
  if (opts.netdm !== false) {
    try {
      const netdm = reclaimNetdm(records, me);
      if (netdm) done.push(netdm);
    } catch {
      /* the same */
    }
  }
  return done;
}

/** The one line a start reports, or undefined when nothing was reclaimed. */
export function reclaimedLine(done: readonly string[]): string | undefined {
  return done.length ? `cleaned up after dropmons that died: ${done.join(', ')}` : undefined;
}

/** Is the process behind `pid` (of our /proc) a dropmon, by its command line? */
function runsDropmon(pid: number): boolean {
  let argv: string[];
  try {
    argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
  } catch {
    return false;
  }
  // An installed dropmon or dwdump (`node /usr/bin/dropmon watch`), or node running the built CLI.
  return argv.slice(0, 2).some((a) => a.includes('dropmon') || a.includes('dwdump') || /\/src\/cli\/main\.js$/.test(a));
}

/** Rules 1 to 3 of the file comment: is the owner of instance `name` dead? */
function instanceOwnerDead(name: string, records: OwnerRecords, me: ProcessIdentity): boolean {
  const owner = instanceOwner(name);
  if (!owner || owner.pidns !== me.pidns) return false;
  const rec = records.read(instanceRecord(name));
  if (rec && rec.owner.boot === me.boot) {
    if (rec.owner.pid !== owner.pid || rec.owner.pidns !== owner.pidns) return false; // a record that contradicts the name: leave both
    return liveness(rec.owner, me) === 'dead';
  }
  if (!procShowsOwnPids()) return false; // our /proc cannot say
  if (owner.pid === me.pid) return true;
  let start: number | undefined;
  try {
    start = processStart(owner.pid);
  } catch {
    return false; // /proc would not say
  }
  return start === undefined || !runsDropmon(owner.pid);
}

function reclaimInstances(root: string, records: OwnerRecords, me: ProcessIdentity): string[] {
  const done: string[] = [];
  const names = readdirSync(join(root, 'instances'));
  for (const name of names) {
    if (!instanceOwnerDead(name, records, me)) continue;
    if (!removeInstanceDir(join(root, 'instances', name))) continue;
    records.remove(instanceRecord(name));
    done.push(`removed tracefs instance ${name}`);
  }
  // Records whose instance is gone (removed by hand, or by a dropmon that
  // died between the two steps): drop those of dead owners.
  const present = new Set(names);
  for (const rec of records.list('tracefs', '.owner')) {
    const name = rec.slice('tracefs/'.length, -'.owner'.length);
    if (present.has(name)) continue;
    const r = records.read(rec);
    if (r && liveness(r.owner, me) === 'dead') records.remove(rec, r.owner);
  }
  return done;
}

function reclaimNetdm(records: OwnerRecords, me: ProcessIdentity): string | undefined {
  const rec = records.read(NETDM_OWNER_RECORD);
  if (!rec || liveness(rec.owner, me) !== 'dead') return undefined;
  if (rec.owner.boot !== me.boot) {
    records.remove(NETDM_OWNER_RECORD, rec.owner); // NET_DM state does not outlive a boot
    return undefined;
  }
  if (inChildNetns()) return undefined; // NET_DM exists in the initial network namespace only: a dropmon there will do it
  const client = NetdmClient.tryOpen();
  if (!client) {
    records.remove(NETDM_OWNER_RECORD, rec.owner); // no NET_DM at all: nothing is monitoring
    return undefined;
  }
  try {
    const origins = { sw: rec.detail.sw !== false, hw: rec.detail.hw === true };
    if (client.isMonitoring() === false) {
      records.remove(NETDM_OWNER_RECORD, rec.owner);
      return undefined;
    }
    // Another dropmon starting now may have reclaimed it and started its own: only stop what the record still says.
    const still = records.read(NETDM_OWNER_RECORD);
    if (!still || !sameProcess(still.owner, rec.owner)) return undefined;
    client.stop(origins);
    records.remove(NETDM_OWNER_RECORD, rec.owner);
    return `stopped NET_DM monitoring (${originsText(origins)} drops) of pid ${rec.owner.pid}`;
  } finally {
    client.close();
  }
}

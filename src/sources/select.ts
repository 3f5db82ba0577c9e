/**
 * Which drop source `--source auto` uses, and why (printed once at start).
 * Order: NET_DM where the kernel has it and we may use it (the kernel
 * batches drops itself and it alone sees hardware drops and packet bytes),
 * else tracefs. Options only one source has decide it.
 */
import { NetdmClient, netdmAbsentReason } from './netdm/client.js';

export type SourceName = 'tracefs' | 'netdm';

export interface SourceNeeds {
  /** --stack: only tracefs records stacks. */
  readonly stack?: boolean;
  /** --mode, --hw, --trunc, --queue, --pcap: only NET_DM. */
  readonly netdmOnly?: boolean;
  /** --reason or --protocol: NET_DM's summary mode cannot tell them. */
  readonly filtersByReasonOrProtocol?: boolean;
}

export interface SourceChoice {
  readonly name: SourceName;
  readonly why: string;
}

export function chooseSource(requested: SourceName | 'auto', needs: SourceNeeds): SourceChoice {
  if (requested !== 'auto') return { name: requested, why: 'asked for' };
  if (needs.stack) return { name: 'tracefs', why: '--stack needs the tracefs source' };
  if (needs.filtersByReasonOrProtocol && !needs.netdmOnly)
    return { name: 'tracefs', why: 'NET_DM summary alerts carry no reason or protocol to filter on' };
  const root = process.getuid?.() === 0;
  let present: boolean;
  try {
    const c = NetdmClient.tryOpen();
    present = c !== undefined;
    c?.close();
  } catch {
    present = false;
  }
  if (needs.netdmOnly) return { name: 'netdm', why: 'the options given need NET_DM' };
  if (!present) return { name: 'tracefs', why: netdmAbsentReason() };
  if (!root) return { name: 'tracefs', why: 'NET_DM needs root (CAP_NET_ADMIN to control it, CAP_SYS_ADMIN to receive alerts)' };
  return { name: 'netdm', why: 'the kernel has NET_DM (drop_monitor)' };
}

/**
 * A BPF array map mapped into this process (BPF_F_MMAPABLE, Linux 5.5+):
 * user space reads the values the programs write with plain loads, in an
 * order it chooses, without a syscall and without the kernel's copy (whose
 * word order is not specified). Read-only: programs are the only writers.
 */
import { DropmonError } from '../../core/errors.js';
import { errnoName, loadLibc } from './native.js';
import { BpfMap, MapType } from './syscall.js';

/** BPF_F_MMAPABLE map flag. */
export const MAP_MMAPABLE = 1 << 10;
const PROT_READ = 1, MAP_SHARED = 1;
const PAGE = 4096;

export class MappedArray {
  readonly map: BpfMap;
  /** The values, 64-bit words: read them with Atomics.load so that the loads stay in program order. */
  readonly words: BigUint64Array;
  private ptr: unknown;
  private readonly len: number;

  /** `valueSize`: a multiple of 8 bytes. */
  constructor(valueSize: number, entries: number, name: string) {
    if (valueSize % 8 !== 0) throw new Error(`mapped array value size ${valueSize} is not a multiple of 8`);
    this.map = new BpfMap({ type: MapType.ARRAY, keySize: 4, valueSize, maxEntries: entries, name, flags: MAP_MMAPABLE });
    this.len = Math.ceil((valueSize * entries) / PAGE) * PAGE;
    const c = loadLibc();
    const ptr = c.mmap(this.len, PROT_READ, MAP_SHARED, this.map.fd, 0);
    const addr = ptr === null ? 0n : c.koffi.address(ptr);
    if (addr === 0n || addr === 0xffffffffffffffffn) {
      const err = errnoName(c.errno());
      this.map.close();
      throw new DropmonError(`cannot map the BPF array ${name}: ${err}`);
    }
    this.ptr = ptr;
    this.words = new BigUint64Array(c.koffi.view(ptr, this.len), 0, (valueSize * entries) / 8);
  }

  close(): void {
    if (this.ptr !== undefined) loadLibc().munmap(this.ptr, this.len);
    this.ptr = undefined;
    this.map.close();
  }
}

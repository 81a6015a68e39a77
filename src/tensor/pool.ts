/**
 * Size-bucketed buffer pool. Typed arrays are garbage collected too lazily for multi-GB training,
 * so tensors released by a scope or by the tape hand their ArrayBuffer back here and the next
 * tensor of a similar size reuses it. Buckets round the byte length up to 1/8-octave steps
 * (at most 12.5% slack); a tensor sees a view of exactly its length.
 */
import { type AnyArray, BYTES_PER_ELEMENT, type DType, viewOf } from './dtype.ts';

const MIN_BUCKET_BYTES = 64;

/** Round a byte length up to its bucket size. */
export function bucketBytes(bytes: number): number {
  if (bytes <= MIN_BUCKET_BYTES) return MIN_BUCKET_BYTES;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = Math.max(MIN_BUCKET_BYTES, octave / 8);
  return Math.ceil(bytes / step) * step;
}

export interface PoolStats {
  /** Bytes currently lent to live tensors. */
  liveBytes: number;
  /** Bytes held in free lists, ready for reuse. */
  freeBytes: number;
  /** ArrayBuffers ever allocated by the pool. */
  allocations: number;
  /** Requests served from a free list. */
  reuses: number;
  /** Highest liveBytes seen (reset with resetPeak). */
  peakLiveBytes: number;
}

class BufferPool {
  private free = new Map<number, ArrayBuffer[]>();
  private stats: PoolStats = { liveBytes: 0, freeBytes: 0, allocations: 0, reuses: 0, peakLiveBytes: 0 };
  /** Free bytes kept at most; beyond this, released buffers are left to the GC. */
  maxFreeBytes = Number(process.env.ATTUNE_POOL_MAX_FREE_MB ?? 512) * 2 ** 20;

  /** A zero-filled (when `zero`) array of `length` elements of `dtype`. */
  acquire(dtype: DType, length: number, zero: boolean): AnyArray {
    const bytes = bucketBytes(Math.max(1, length) * BYTES_PER_ELEMENT[dtype]);
    const list = this.free.get(bytes);
    let buffer = list?.pop();
    if (buffer) {
      this.stats.reuses++;
      this.stats.freeBytes -= bytes;
    } else {
      buffer = new ArrayBuffer(bytes);
      this.stats.allocations++;
      zero = false; // fresh ArrayBuffers are zeroed already
    }
    this.stats.liveBytes += bytes;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    const view = viewOf(dtype, buffer, length);
    if (zero) view.fill(0);
    return view;
  }

  /** Return an array obtained from `acquire`. The caller must not touch it afterwards. */
  release(array: AnyArray): void {
    const buffer = array.buffer as ArrayBuffer;
    const bytes = buffer.byteLength;
    this.stats.liveBytes -= bytes;
    if (this.stats.freeBytes + bytes > this.maxFreeBytes) return;
    let list = this.free.get(bytes);
    if (!list) {
      list = [];
      this.free.set(bytes, list);
    }
    list.push(buffer);
    this.stats.freeBytes += bytes;
  }

  /** Drop every free buffer (the GC reclaims them). */
  trim(): void {
    this.free.clear();
    this.stats.freeBytes = 0;
  }

  /** Start measuring peakLiveBytes afresh. */
  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}

/** The process-wide pool. */
export const pool = new BufferPool();

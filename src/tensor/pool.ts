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

/** The pool (one per process: `pool`; tests make their own). */
export class BufferPool {
  private free = new Map<number, ArrayBuffer[]>();
  private stats: PoolStats = { liveBytes: 0, freeBytes: 0, allocations: 0, reuses: 0, peakLiveBytes: 0 };
  /** Most bytes ever lent at once (not reset by resetPeak). */
  private highWaterBytes = 0;
  /**
   * Free bytes kept at most; beyond this, released buffers are left to the GC. `null` (the default,
   * unless ATTUNE_POOL_MAX_FREE_MB sets a fixed number): the larger of 512 MB and twice the most
   * bytes ever lent at once. Why: a training step frees its activations after backward and needs
   * the same buffers again in the next forward; a buffer left to the GC comes back as a fresh
   * ArrayBuffer whose pages the kernel must fault in and zero again. Twice, because a step cycles
   * through more buffers than are live at its peak (sizes freed early are not the sizes needed
   * later): the full fine-tuning bench of the SmolLM2-135M shape peaks at 1.13 GB lent and settles
   * at 1.67 GB free, with no new allocation per step; with the cap at its peak it still made 212
   * fresh buffers a step, with a fixed 512 MB ran 315 tokens/s against 469 (2026-12-04, docs/kernels.md).
   */
  maxFreeBytes: number | null = process.env.ATTUNE_POOL_MAX_FREE_MB
    ? Number(process.env.ATTUNE_POOL_MAX_FREE_MB) * 2 ** 20
    : null;

  /** A pool whose default cap on free bytes is at least `floorBytes` (512 MB). */
  constructor(private readonly floorBytes = 512 * 2 ** 20) {}

  /** The cap on free bytes in force now (see maxFreeBytes). */
  freeCap(): number {
    return this.maxFreeBytes ?? Math.max(this.floorBytes, 2 * this.highWaterBytes);
  }

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
    if (this.stats.liveBytes > this.highWaterBytes) this.highWaterBytes = this.stats.liveBytes;
    const view = viewOf(dtype, buffer, length);
    if (zero) view.fill(0);
    return view;
  }

  /** Return an array obtained from `acquire`. The caller must not touch it afterwards. */
  release(array: AnyArray): void {
    const buffer = array.buffer as ArrayBuffer;
    const bytes = buffer.byteLength;
    this.stats.liveBytes -= bytes;
    if (this.stats.freeBytes + bytes > this.freeCap()) return;
    let list = this.free.get(bytes);
    if (!list) {
      list = [];
      this.free.set(bytes, list);
    }
    list.push(buffer);
    this.stats.freeBytes += bytes;
  }

  /** Drop every free buffer (the GC reclaims them) and forget the high-water mark. */
  trim(): void {
    this.free.clear();
    this.stats.freeBytes = 0;
    this.highWaterBytes = this.stats.liveBytes;
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

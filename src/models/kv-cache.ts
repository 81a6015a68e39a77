/**
 * Key/value cache for generation (one sequence), for any architecture. Keys are stored as attention
 * reads them (after RoPE for the llama family), in the [T, kvHeads, headDim] layout, so each step
 * appends rows and attention runs on the cached prefix without copies.
 */
import { Tensor } from '../tensor/index.ts';

/** The sizes a KV cache needs (a model config has them all). */
export interface KvCacheShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

export class KvCache {
  /** Tokens already in the cache. */
  length = 0;
  private capacity: number;
  private keys: Float32Array[] | Float64Array[];
  private values: Float32Array[] | Float64Array[];
  private readonly rowSize: number;

  /** An empty cache for a model of `config`'s sizes, for `capacity` tokens (grows when exceeded). */
  constructor(
    private readonly config: KvCacheShape,
    capacity = 256,
    private readonly dtype: 'f32' | 'f64' = 'f32',
  ) {
    this.capacity = Math.max(1, capacity);
    this.rowSize = config.numKvHeads * config.headDim;
    this.keys = this.allocate(this.capacity);
    this.values = this.allocate(this.capacity);
  }

  private allocate(tokens: number): Float32Array[] | Float64Array[] {
    const Ctor = this.dtype === 'f64' ? Float64Array : Float32Array;
    return Array.from({ length: this.config.numLayers }, () => new Ctor(tokens * this.rowSize)) as
      | Float32Array[]
      | Float64Array[];
  }

  private grow(needed: number): void {
    let capacity = this.capacity;
    while (capacity < needed) capacity *= 2;
    const keys = this.allocate(capacity);
    const values = this.allocate(capacity);
    for (let l = 0; l < this.config.numLayers; l++) {
      keys[l]!.set(this.keys[l]!.subarray(0, this.length * this.rowSize) as Float32Array & Float64Array);
      values[l]!.set(this.values[l]!.subarray(0, this.length * this.rowSize) as Float32Array & Float64Array);
    }
    this.keys = keys;
    this.values = values;
    this.capacity = capacity;
  }

  /**
   * Store k, v [1, T, kvHeads, headDim] of `layer` after the cached tokens and return the whole
   * cached k, v [1, length + T, kvHeads, headDim] (views of the cache). Call `advance(T)` once all
   * layers have appended.
   */
  append(layer: number, k: Tensor, v: Tensor): { k: Tensor; v: Tensor } {
    const T = k.shape[1]!;
    const total = this.length + T;
    if (total > this.capacity) this.grow(total);
    const kc = this.keys[layer]!;
    const vc = this.values[layer]!;
    kc.set(k.data as Float32Array & Float64Array, this.length * this.rowSize);
    vc.set(v.data as Float32Array & Float64Array, this.length * this.rowSize);
    const shape = [1, total, this.config.numKvHeads, this.config.headDim];
    return {
      k: Tensor.wrap(kc.subarray(0, total * this.rowSize), shape),
      v: Tensor.wrap(vc.subarray(0, total * this.rowSize), shape),
    };
  }

  /** Mark T more tokens as cached. */
  advance(T: number): void {
    this.length += T;
  }

  /** Forget everything (keeps the memory). */
  reset(): void {
    this.length = 0;
  }
}

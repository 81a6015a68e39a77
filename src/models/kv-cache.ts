/**
 * Key/value cache for generation (one sequence), for any architecture. Keys are stored as attention
 * reads them (after RoPE for the llama family), in the [T, kvHeads, headDim] layout, so each step
 * appends rows and attention runs on the cached prefix without copies.
 */
import { type AttentionOptions, attention, concat, slice, Tensor } from '../tensor/index.ts';

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

  /** An independent copy holding the same cached tokens (e.g. one prompt's prefix for N samples). */
  clone(capacity = this.capacity): KvCache {
    const copy = new KvCache(this.config, Math.max(capacity, this.length), this.dtype);
    for (let l = 0; l < this.config.numLayers; l++) {
      const n = this.length * this.rowSize;
      copy.keys[l]!.set(this.keys[l]!.subarray(0, n) as Float32Array & Float64Array);
      copy.values[l]!.set(this.values[l]!.subarray(0, n) as Float32Array & Float64Array);
    }
    copy.length = this.length;
    return copy;
  }

  /** Forget everything (keeps the memory). */
  reset(): void {
    this.length = 0;
  }
}

/** One cache for a batch-1 forward, or one cache per batch row (rows may hold different lengths). */
export type KvCaches = KvCache | readonly KvCache[];

/**
 * Attention of one layer through KV cache(s): q [B, T, Hq, D], k and v [B, T, Hkv, D] of the new
 * tokens. With one cache (B = 1) the new k, v are appended and q attends the whole cache; with one
 * cache per row, each row appends to and attends its own cache only, so rows of different lengths
 * share the batched projections without padding and a row's result never depends on the others
 * (rows of equal length attend in one call).
 */
export function cachedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  caches: KvCaches,
  layer: number,
  options: AttentionOptions,
): Tensor {
  if (!Array.isArray(caches)) {
    const kv = (caches as KvCache).append(layer, k, v);
    return attention(q, kv.k, kv.v, options);
  }
  const rows = caches as readonly KvCache[];
  const B = q.shape[0]!;
  if (rows.length !== B) throw new RangeError(`KV caches: ${rows.length} caches for a batch of ${B} rows`);
  if (B === 1) {
    const kv = rows[0]!.append(layer, k, v);
    return attention(q, kv.k, kv.v, options);
  }
  const cached = rows.map((cache, b) => cache.append(layer, slice(k, 0, b, b + 1), slice(v, 0, b, b + 1)));
  // rows holding as many tokens share one attention call over their caches stacked along the
  // batch (a copy of the caches, far cheaper than a kernel call per row); N samples of one
  // prompt always form one group
  const groups = new Map<number, number[]>();
  cached.forEach((kv, b) => {
    const L = kv.k.shape[1]!;
    groups.set(L, [...(groups.get(L) ?? []), b]);
  });
  const attend = (members: readonly number[], rowsQ: Tensor) =>
    members.length === 1
      ? attention(rowsQ, cached[members[0]!]!.k, cached[members[0]!]!.v, options)
      : attention(
          rowsQ,
          concat(
            members.map((b) => cached[b]!.k),
            0,
          ),
          concat(
            members.map((b) => cached[b]!.v),
            0,
          ),
          options,
        );
  if (groups.size === 1) return attend([...groups.values()][0]!, q);
  const outs = new Array<Tensor>(B);
  for (const members of groups.values()) {
    const rowsQ = concat(
      members.map((b) => slice(q, 0, b, b + 1)),
      0,
    );
    const out = attend(members, rowsQ);
    members.forEach((b, i) => {
      outs[b] = members.length === 1 ? out : slice(out, 0, i, i + 1);
    });
  }
  return concat(outs, 0);
}

/** Per-row start positions of a forward through `caches` (the tokens each row has cached). */
export function cacheStarts(caches: KvCaches | null | undefined, B: number): number[] {
  if (!caches) return new Array<number>(B).fill(0);
  if (!Array.isArray(caches)) {
    if (B !== 1)
      throw new RangeError(`a KV cache holds one sequence, got batch ${B} (pass one cache per row)`);
    return [(caches as KvCache).length];
  }
  const rows = caches as readonly KvCache[];
  if (rows.length !== B) throw new RangeError(`KV caches: ${rows.length} caches for a batch of ${B} rows`);
  return rows.map((c) => c.length);
}

/** Mark T more tokens cached in every cache of `caches`. */
export function advanceCaches(caches: KvCaches | null | undefined, T: number): void {
  if (!caches) return;
  if (Array.isArray(caches)) for (const c of caches as readonly KvCache[]) c.advance(T);
  else (caches as KvCache).advance(T);
}

/**
 * Virtual tokens before every sequence (prompt tuning, prefix tuning), for any architecture. A
 * `SequencePrefix` set on a model (`model.sequencePrefix`) gives n virtual tokens as input
 * embeddings (put before the token embeddings) and/or as each layer's attention keys and values
 * (keys as attention reads them: no RoPE is applied to them, as with PEFT's past_key_values). As in
 * PEFT the virtual tokens take positions 0..n-1 and the real tokens start at position n. The
 * model's output keeps only the real tokens' positions, so labels, losses and scores never see the
 * virtual ones. With a KV cache the prefix goes into the cache on its first (empty) use; later
 * calls continue after it.
 */
import {
  type AttentionOptions,
  attention,
  concat,
  expand,
  reshape,
  slice,
  type Tensor,
} from '../tensor/index.ts';
import { cachedAttention, type KvCache, type KvCaches } from './kv-cache.ts';

/** One layer's prefix keys and values, [n, kvHeads, headDim] each. */
export interface PrefixKeyValues {
  k: Tensor;
  v: Tensor;
}

/** What a prompt-learning method puts before every sequence (see the file comment). */
export interface SequencePrefix {
  /** Number of virtual tokens n. */
  readonly length: number;
  /** [n, hidden] embeddings put before the token embeddings, or null. */
  inputEmbeddings(): Tensor | null;
  /** Every layer's prefix keys and values (differentiable), or null. */
  keyValues(): PrefixKeyValues[] | null;
}

/** What one forward does with the prefix (built by `planPrefix`). */
export interface PrefixPlan {
  /** [B, n, hidden] to put before the token embeddings, or null. */
  embeddings: Tensor | null;
  /** Per-layer [B, n, kvHeads, headDim] keys/values to attend before the tokens (no-cache path), or null. */
  keyValues: PrefixKeyValues[] | null;
  /** Added to every real position (n for a key/value prefix outside the cache, else 0). */
  positionOffset: number;
  /** Leading positions of the output to drop (n for an embedding prefix, else 0). */
  leading: number;
}

const NONE: PrefixPlan = { embeddings: null, keyValues: null, positionOffset: 0, leading: 0 };

function cacheList(caches: KvCaches): readonly KvCache[] {
  return Array.isArray(caches) ? (caches as readonly KvCache[]) : [caches as KvCache];
}

/**
 * Plan one forward of B rows through `prefix` (null: nothing to do). With caches that are all
 * empty, a key/value prefix is appended to each now (so positions continue after it) and an
 * embedding prefix is run with the tokens; caches that all hold tokens already hold the prefix.
 */
export function planPrefix(
  prefix: SequencePrefix | null,
  caches: KvCaches | null,
  B: number,
  hidden: number,
): PrefixPlan {
  if (!prefix || prefix.length === 0) return NONE;
  const n = prefix.length;
  if (caches) {
    const list = cacheList(caches);
    const empty = list.filter((c) => c.length === 0).length;
    if (empty === 0) return NONE;
    if (empty !== list.length)
      throw new RangeError(
        `sequence prefix: ${empty} of ${list.length} KV caches are empty; the prefix goes into all caches at once (start every row from an empty cache)`,
      );
    const kv = prefix.keyValues();
    if (kv) {
      for (const cache of list) {
        kv.forEach((layer, l) => {
          const [, h, d] = layer.k.shape as [number, number, number];
          cache.append(l, reshape(layer.k, [1, n, h, d]), reshape(layer.v, [1, n, h, d]));
        });
        cache.advance(n);
      }
    }
    const emb = prefix.inputEmbeddings();
    return {
      ...NONE,
      embeddings: emb ? expand(reshape(emb, [1, n, hidden]), [B, n, hidden]) : null,
      leading: emb ? n : 0,
    };
  }
  const emb = prefix.inputEmbeddings();
  const kv = prefix.keyValues();
  return {
    embeddings: emb ? expand(reshape(emb, [1, n, hidden]), [B, n, hidden]) : null,
    keyValues: kv
      ? kv.map(({ k, v }) => {
          const [, h, d] = k.shape as [number, number, number];
          return {
            k: expand(reshape(k, [1, n, h, d]), [B, n, h, d]),
            v: expand(reshape(v, [1, n, h, d]), [B, n, h, d]),
          };
        })
      : null,
    positionOffset: kv ? n : 0,
    leading: emb ? n : 0,
  };
}

/** Token embeddings x [B, T, hidden] with the plan's embedding prefix before them. */
export function prependEmbeddings(x: Tensor, plan: PrefixPlan): Tensor {
  return plan.embeddings ? concat([plan.embeddings, x], 1) : x;
}

/** Hidden states [B, leading + T, hidden] -> the real tokens' [B, T, hidden]. */
export function dropLeading(hidden: Tensor, plan: PrefixPlan): Tensor {
  return plan.leading > 0 ? slice(hidden, 1, plan.leading) : hidden;
}

/**
 * One layer's attention: through the KV cache(s) when given (the prefix is in them), else over the
 * plan's prefix keys/values followed by the new ones (causal: query t sees the prefix and keys <= t).
 */
export function layerAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  cache: KvCaches | null,
  layer: number,
  options: AttentionOptions,
  prefixKv: PrefixKeyValues[] | null,
): Tensor {
  if (cache) return cachedAttention(q, k, v, cache, layer, options);
  const p = prefixKv?.[layer];
  if (!p) return attention(q, k, v, options);
  return attention(q, concat([p.k, k], 1), concat([p.v, v], 1), options);
}

/**
 * Next-token choice from one row of logits, in transformers' order: temperature, then top-k,
 * then top-p (nucleus), then a draw from the renormalised distribution. Temperature 0 is greedy.
 */
import type { Rng } from '../tensor/index.ts';

export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens (0 = off). */
  topK: number;
  /** Keep the smallest set whose probability reaches p (1 = off). */
  topP: number;
}

/** Index of the largest value (first on ties). */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i]! > bestValue) {
      bestValue = values[i]!;
      best = i;
    }
  }
  return best;
}

const LOW_BITS = 2 ** 29;
const f64 = new Float64Array(1);
const words = new Uint32Array(f64.buffer);

/**
 * Ids sorted by logit, descending, lower id first on ties. For f32 logits (every f32 is exact in
 * f64 with 29 spare low mantissa bits) the id is packed into those bits of the negated logit, so one
 * native typed-array sort replaces a comparator sort over the vocabulary (the cost of a sampled
 * token); other inputs use the comparator.
 */
export function descendingOrder(logits: ArrayLike<number>): number[] {
  const V = logits.length;
  const byComparator = () =>
    Array.from({ length: V }, (_, i) => i).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (!(logits instanceof Float32Array) || V > LOW_BITS) return byComparator();
  const keys = new Float64Array(V);
  for (let i = 0; i < V; i++) {
    const x = logits[i]!;
    if (!Number.isFinite(x)) return byComparator(); // +-Infinity (masked tokens) or NaN
    f64[0] = x === 0 ? 0 : -x; // -0 sorts as +0
    // little-endian: words[0] holds the low 32 mantissa bits, the low 29 zero for an f32 value; a larger
    // magnitude is a larger key for positive keys and a smaller one for negative keys
    words[0] = (words[0]! & ~(LOW_BITS - 1)) | (f64[0] < 0 ? LOW_BITS - 1 - i : i);
    keys[i] = f64[0];
  }
  keys.sort();
  const order = new Array<number>(V);
  for (let r = 0; r < V; r++) {
    f64[0] = keys[r]!;
    order[r] = f64[0] < 0 ? LOW_BITS - 1 - (words[0]! & (LOW_BITS - 1)) : words[0]! & (LOW_BITS - 1);
  }
  return order;
}

/** Choose the next token id from `logits` (one vocabulary row). */
export function sampleToken(logits: ArrayLike<number>, options: SamplingOptions, rng: Rng): number {
  if (options.temperature < 0 || !Number.isFinite(options.temperature)) {
    throw new RangeError(`temperature must be >= 0, found ${options.temperature}`);
  }
  if (options.topP <= 0 || options.topP > 1)
    throw new RangeError(`top_p must be in (0, 1], found ${options.topP}`);
  if (options.topK < 0 || !Number.isInteger(options.topK))
    throw new RangeError(`top_k must be an integer >= 0, found ${options.topK}`);
  if (options.temperature === 0) return argmax(logits);
  const V = logits.length;
  // candidates sorted by logit, descending (stable: lower id first on ties)
  let order = descendingOrder(logits);
  if (options.topK > 0 && options.topK < V) order = order.slice(0, options.topK);
  const scaled = order.map((i) => logits[i]! / options.temperature);
  const maxLogit = scaled[0]!;
  const probs = scaled.map((z) => Math.exp(z - maxLogit));
  let total = probs.reduce((s, p) => s + p, 0);
  if (options.topP < 1) {
    // keep tokens until the cumulative probability reaches top_p (always at least one)
    let cumulative = 0;
    let keep = 0;
    while (keep < probs.length) {
      cumulative += probs[keep]! / total;
      keep++;
      if (cumulative >= options.topP) break;
    }
    order = order.slice(0, keep);
    probs.length = keep;
    total = probs.reduce((s, p) => s + p, 0);
  }
  let u = rng.uniform() * total;
  for (let i = 0; i < probs.length; i++) {
    u -= probs[i]!;
    if (u < 0) return order[i]!;
  }
  return order[probs.length - 1]!;
}

/**
 * Text generation with a KV cache: greedy or sampled (temperature, top-k, top-p), max new tokens,
 * EOS ids and stop strings, seeded. Each step feeds only the new token; attention reads the cache.
 * `generateBatch` decodes several sequences together (one batched forward per step, a KV cache per
 * sequence); `generate` is a batch of one.
 */
import type { Tokenizer } from '../io/index.ts';
import { fromArray, noGrad, Rng, scope, slice } from '../tensor/index.ts';
import type { CausalLM } from './causal-lm.ts';
import type { KvCache } from './kv-cache.ts';
import { type SamplingOptions, sampleToken } from './sampling.ts';

export interface GenerateOptions extends Partial<SamplingOptions> {
  maxNewTokens?: number;
  seed?: number;
  /** Stop before emitting any of these ids (default: none; pass the model's EOS ids). */
  eosTokenIds?: readonly number[];
  /** Stop once the decoded continuation contains one of these strings (needs a tokenizer). */
  stopStrings?: readonly string[];
  tokenizer?: Tokenizer | null;
  /** Called with each new token id. */
  onToken?: (id: number) => void;
  /** Also return per-token statistics of the predictive distributions (tokenStats). */
  returnStats?: boolean;
}

/** The predictive distribution behind one generated token. */
export interface TokenStats {
  /** log p of the chosen token. */
  logprob: number;
  /** Entropy (nats) of the distribution. */
  entropy: number;
  /** log-probs of the two most likely tokens. */
  top1: number;
  top2: number;
  /**
   * sum_i sqrt(q_i) of q = softmax(logits / 2) (LM-Polygraph's temperature 2): the Bhattacharyya
   * coefficient of q and the uniform distribution times sqrt(vocab). Rényi (alpha 1/2) divergence
   * and Fisher-Rao distance from uniform are functions of it.
   */
  sqrtMass: number;
  /** Vocabulary size of the distribution. */
  vocabSize: number;
}

/** log-prob of `id`, entropy, top-2 log-probs and sqrtMass of the softmax of `logits`. */
export function distributionStats(logits: ArrayLike<number>, id: number): TokenStats {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  let weighted = 0;
  let quarter = 0;
  let half = 0;
  let first = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i]! - max;
    const e = Math.exp(z);
    sum += e;
    weighted += e * z;
    const e4 = Math.exp(z / 4);
    quarter += e4;
    half += e4 * e4;
    if (z > first) {
      second = first;
      first = z;
    } else if (z > second) second = z;
  }
  const logSum = Math.log(sum);
  return {
    logprob: logits[id]! - max - logSum,
    entropy: logSum - weighted / sum,
    top1: first - logSum,
    top2: second - logSum,
    // sqrt(q_i) = exp(z_i / 4) / sqrt(sum_j exp(z_j / 2))
    sqrtMass: quarter / Math.sqrt(half),
    vocabSize: logits.length,
  };
}

export interface GenerateResult {
  /** New token ids (the EOS token is included when generation ended on it). */
  generatedIds: number[];
  /** Decoded continuation (stop string removed) when a tokenizer was given. */
  text: string | null;
  stopReason: 'eos' | 'length' | 'stop_string';
  /** Per generated token (when options.returnStats). */
  tokenStats: TokenStats[] | null;
}

/** One sequence of a batched generation: its prompt, its own sampling seed and token callback. */
export interface BatchSequence {
  promptIds: readonly number[];
  /** Seed of this sequence's sampler (default 0): its draws never depend on the other sequences. */
  seed?: number;
  /** Called with each new token id of this sequence. */
  onToken?: (id: number) => void;
}

/** Options shared by every sequence of a batch (per-sequence seeds and callbacks live on the sequence). */
export type BatchGenerateOptions = Omit<GenerateOptions, 'seed' | 'onToken'>;

/** Decoding state of one sequence. */
interface SequenceState {
  readonly rng: Rng;
  readonly generated: number[];
  readonly stats: TokenStats[] | null;
  cache: KvCache;
  done: boolean;
  stopReason: GenerateResult['stopReason'];
  text: string | null;
}

/**
 * Generate continuations of several sequences together: each prompt is prefilled once (sequences
 * with the same prompt share that pass and copy its KV cache), then every step runs one batched
 * forward over the unfinished sequences, each with its own KV cache and positions, and each row
 * samples with its own seeded generator. A sequence stops on its own (EOS, a stop string, max new
 * tokens), and its result equals `generate` of it alone with the same seed.
 */
export function generateBatch(
  model: CausalLM,
  sequences: readonly BatchSequence[],
  options: BatchGenerateOptions = {},
): GenerateResult[] {
  sequences.forEach((s, i) => {
    if (s.promptIds.length === 0) throw new RangeError(`generate: the prompt of sequence ${i} has no tokens`);
  });
  const maxNew = options.maxNewTokens ?? 64;
  const sampling: SamplingOptions = {
    temperature: options.temperature ?? 0,
    topK: options.topK ?? 0,
    topP: options.topP ?? 1,
  };
  const eos = new Set(options.eosTokenIds ?? []);
  const stops = options.stopStrings ?? [];
  if (stops.length > 0 && !options.tokenizer) throw new RangeError('generate: stop strings need a tokenizer');
  const states: SequenceState[] = sequences.map((s) => ({
    rng: new Rng(s.seed ?? 0),
    generated: [],
    stats: options.returnStats ? [] : null,
    cache: null as unknown as KvCache,
    done: maxNew <= 0,
    stopReason: 'length',
    text: null,
  }));
  // take a sampled token and decide whether the sequence has finished
  const accept = (i: number, logits: Float32Array | Float64Array): void => {
    const st = states[i]!;
    const id = sampleToken(logits, sampling, st.rng);
    st.stats?.push(distributionStats(logits, id));
    st.generated.push(id);
    sequences[i]!.onToken?.(id);
    if (eos.has(id)) {
      st.done = true;
      st.stopReason = 'eos';
    } else if (stops.length > 0) {
      const decoded = options.tokenizer!.decode(st.generated, { skipSpecialTokens: true });
      const hit = stops.map((s) => decoded.indexOf(s)).filter((x) => x >= 0);
      if (hit.length > 0) {
        st.text = decoded.slice(0, Math.min(...hit));
        st.stopReason = 'stop_string';
        st.done = true;
      }
    }
    if (!st.done && st.generated.length >= maxNew) st.done = true;
  };
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      if (maxNew <= 0) return;
      // prefill: one pass per distinct prompt
      const groups = new Map<string, number[]>();
      sequences.forEach((s, i) => {
        const key = s.promptIds.join(',');
        groups.set(key, [...(groups.get(key) ?? []), i]);
      });
      for (const members of groups.values()) {
        const promptIds = sequences[members[0]!]!.promptIds;
        const cache = model.createKvCache(promptIds.length + maxNew);
        scope(() => {
          const ids = fromArray(Int32Array.from(promptIds), [1, promptIds.length], { dtype: 'i32' });
          const hidden = model.forwardHidden(ids, { cache });
          const logits = model.logits(slice(hidden, 1, promptIds.length - 1, promptIds.length));
          members.forEach((i, n) => {
            states[i]!.cache = n === 0 ? cache : cache.clone(promptIds.length + maxNew);
          });
          for (const i of members) accept(i, logits.data as Float32Array);
        });
      }
      // decode: one batched step over every unfinished sequence
      for (;;) {
        const active = states.flatMap((st, i) => (st.done ? [] : [i]));
        if (active.length === 0) break;
        scope(() => {
          const last = Int32Array.from(active, (i) => states[i]!.generated.at(-1)!);
          const ids = fromArray(last, [active.length, 1], { dtype: 'i32' });
          const hidden = model.forwardHidden(ids, { cache: active.map((i) => states[i]!.cache) });
          const logits = model.logits(hidden);
          const V = logits.shape.at(-1)!;
          const data = logits.data as Float32Array;
          active.forEach((i, row) => {
            accept(i, data.subarray(row * V, (row + 1) * V));
          });
        });
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return states.map((st) => {
    let text = st.text;
    if (text === null && options.tokenizer) {
      const body = st.stopReason === 'eos' ? st.generated.slice(0, -1) : st.generated;
      text = options.tokenizer.decode(body, { skipSpecialTokens: true });
    }
    return { generatedIds: st.generated, text, stopReason: st.stopReason, tokenStats: st.stats };
  });
}

/** Generate a continuation of `promptIds` (a batch of one; see generateBatch). */
export function generate(
  model: CausalLM,
  promptIds: readonly number[],
  options: GenerateOptions = {},
): GenerateResult {
  if (promptIds.length === 0) throw new RangeError('generate: the prompt has no tokens');
  const { seed, onToken, ...shared } = options;
  return generateBatch(model, [{ promptIds, seed, onToken }], shared)[0]!;
}

/**
 * Text generation with a KV cache: greedy or sampled (temperature, top-k, top-p), max new tokens,
 * EOS ids and stop strings, seeded. Each step feeds only the new token; attention reads the cache.
 */
import type { Tokenizer } from '../io/index.ts';
import { fromArray, noGrad, Rng, scope, slice } from '../tensor/index.ts';
import type { CausalLM } from './causal-lm.ts';
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
}

/** log-prob of `id`, entropy and top-2 log-probs of the softmax of `logits`. */
export function distributionStats(logits: ArrayLike<number>, id: number): TokenStats {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  let weighted = 0;
  let first = -Infinity;
  let second = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const z = logits[i]! - max;
    const e = Math.exp(z);
    sum += e;
    weighted += e * z;
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

/** Generate a continuation of `promptIds`. */
export function generate(
  model: CausalLM,
  promptIds: readonly number[],
  options: GenerateOptions = {},
): GenerateResult {
  if (promptIds.length === 0) throw new RangeError('generate: the prompt has no tokens');
  const maxNew = options.maxNewTokens ?? 64;
  const sampling: SamplingOptions = {
    temperature: options.temperature ?? 0,
    topK: options.topK ?? 0,
    topP: options.topP ?? 1,
  };
  const rng = new Rng(options.seed ?? 0);
  const eos = new Set(options.eosTokenIds ?? []);
  const stops = options.stopStrings ?? [];
  if (stops.length > 0 && !options.tokenizer) throw new RangeError('generate: stop strings need a tokenizer');
  const cache = model.createKvCache(promptIds.length + maxNew);
  const generated: number[] = [];
  const stats: TokenStats[] | null = options.returnStats ? [] : null;
  let stopReason = 'length' as GenerateResult['stopReason'];
  let text: string | null = null;
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      let input: readonly number[] = promptIds;
      for (let step = 0; step < maxNew; step++) {
        const next = scope(() => {
          const ids = fromArray(Int32Array.from(input), [1, input.length], { dtype: 'i32' });
          const hidden = model.forwardHidden(ids, { cache });
          const last = slice(hidden, 1, input.length - 1, input.length);
          const logits = model.logits(last);
          const id = sampleToken(logits.data as Float32Array, sampling, rng);
          if (stats) stats.push(distributionStats(logits.data as Float32Array, id));
          return id;
        });
        generated.push(next);
        options.onToken?.(next);
        if (eos.has(next)) {
          stopReason = 'eos';
          break;
        }
        if (stops.length > 0) {
          const decoded = options.tokenizer!.decode(generated, { skipSpecialTokens: true });
          const hit = stops.map((s) => decoded.indexOf(s)).filter((i) => i >= 0);
          if (hit.length > 0) {
            text = decoded.slice(0, Math.min(...hit));
            stopReason = 'stop_string';
            break;
          }
        }
        input = [next];
      }
    });
  } finally {
    model.train(wasTraining);
  }
  if (text === null && options.tokenizer) {
    const body = stopReason === 'eos' ? generated.slice(0, -1) : generated;
    text = options.tokenizer.decode(body, { skipSpecialTokens: true });
  }
  return { generatedIds: generated, text, stopReason, tokenStats: stats };
}

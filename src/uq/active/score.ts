/**
 * Uncertainty of a model on pool questions, from its greedy answer (one line, as the bench and
 * `attune eval` answer): the answer's sequence NLL `-sum_t log p_t`, its summed token entropy
 * `sum_t H_t`, its sequence probability `exp(sum_t log p_t)`; and, with MC dropout (T passes with
 * dropout forced on), the mean over passes of the greedy answer's NLL and its summed predictive
 * entropy. Scores are computed lazily per (model, kind) and cached for the round.
 */
import type { Tokenizer } from '../../io/index.ts';
import { type CausalLM, generateBatch } from '../../models/index.ts';
import { mixSeed } from '../../nn/index.ts';
import { mcDropoutScores } from '../mc-dropout.ts';
import type { PoolItem } from './pool.ts';

/** A model's greedy answer to one question and its token statistics. */
export interface GreedyAnswer {
  answerIds: number[];
  /** -sum_t log p_t of the answer tokens. */
  nll: number;
  /** sum_t H_t (nats). */
  entropy: number;
}

/** What scoring a pool needs of a model. */
export interface ScoringModel {
  model: CausalLM;
  tokenizer: Tokenizer;
  eosTokenIds: readonly number[];
}

/** Greedy answers of `items` (batches of 16, stop at a newline); `onProgress(done)` after each batch. */
export function greedyAnswers(
  m: ScoringModel,
  items: readonly PoolItem[],
  maxNewTokens: number,
  onProgress?: (done: number) => void,
): GreedyAnswer[] {
  const out: GreedyAnswer[] = [];
  const batch = 16;
  m.model.eval();
  for (let s = 0; s < items.length; s += batch) {
    const chunk = items.slice(s, s + batch);
    const results = generateBatch(
      m.model,
      chunk.map((q) => ({ promptIds: m.tokenizer.encode(q.prompt) })),
      {
        temperature: 0,
        maxNewTokens,
        eosTokenIds: m.eosTokenIds,
        stopStrings: ['\n'],
        tokenizer: m.tokenizer,
        returnStats: true,
      },
    );
    for (const r of results) {
      const stats = r.tokenStats ?? [];
      out.push({
        answerIds: [...r.generatedIds],
        nll: -stats.reduce((a, t) => a + t.logprob, 0),
        entropy: stats.reduce((a, t) => a + t.entropy, 0),
      });
    }
    onProgress?.(out.length);
  }
  return out;
}

/** MC-dropout uncertainty of each greedy answer: mean NLL over passes, and summed predictive entropy. */
export function mcDropoutUncertainty(
  m: ScoringModel,
  items: readonly PoolItem[],
  answers: readonly GreedyAnswer[],
  options: { passes: number; rate: number; seed: number },
  onProgress?: (done: number) => void,
): { nll: Float64Array; entropy: Float64Array } {
  const nll = new Float64Array(items.length);
  const entropy = new Float64Array(items.length);
  items.forEach((q, i) => {
    const ids = answers[i]!.answerIds;
    const s = mcDropoutScores(m.model, m.tokenizer.encode(q.prompt), ids, {
      passes: options.passes,
      rate: options.rate,
      seed: mixSeed(options.seed >>> 0, i),
    });
    nll[i] = s.nll_mean;
    // mcDropoutScores averages the predictive entropy over tokens; STAR sums over the answer
    entropy[i] = s.predictive_entropy * ids.length;
    if ((i + 1) % 16 === 0 || i + 1 === items.length) onProgress?.(i + 1);
  });
  return { nll, entropy };
}

/**
 * Teacher-forced scoring, the one primitive that training, `attune score` and the uncertainty
 * scores share: `scoreNextTokens` runs the model over [B, T] ids and sends only the positions whose
 * next token is labelled through the fused LM head, which gives per scored token the log-prob, the
 * entropy of the predictive distribution, top-1/top-2 log-probs and the argmax (never
 * full-vocabulary logits for the whole sequence), and on request the log-probs of a few extra ids
 * per token (a teacher's top-k) by a gather matmul. It is differentiable; callers that only read
 * scores wrap it in noGrad.
 */
import {
  add,
  embedding,
  fromArray,
  type LinearCrossEntropyResult,
  matmul,
  noGrad,
  reshape,
  scope,
  slice,
  sub,
  type Tensor,
} from '../tensor/index.ts';
import type { CausalLM } from './causal-lm.ts';

/** Rows (b*T + t) whose next token is labelled (labels[b, t+1] != -100), and those tokens. */
export function supervisedRows(labels: Tensor): { rows: Int32Array; targets: Int32Array } {
  const [B, T] = labels.shape as [number, number];
  const l = labels.data as Int32Array;
  const rows: number[] = [];
  const targets: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let t = 0; t + 1 < T; t++) {
      const next = l[b * T + t + 1]!;
      if (next !== -100) {
        rows.push(b * T + t);
        targets.push(next);
      }
    }
  }
  return { rows: Int32Array.from(rows), targets: Int32Array.from(targets) };
}

/** What `scoreNextTokens` returns: the fused head's per-token terms for the labelled positions. */
export interface NextTokenScores {
  /** Per scored token (in row order): logp, entropy, top1, top2, argmax, correct. */
  result: LinearCrossEntropyResult;
  /** The position (b*T + t) that predicted each scored token. */
  rows: Int32Array;
  /** Scored tokens. */
  count: number;
  /** With `extraIds`: the extra ids asked for and their log-probs [count, perToken] (differentiable). */
  extra?: { ids: Int32Array; perToken: number; logp: Tensor };
}

/** Extra target ids per scored token ([count * perToken], row-major), chosen from the scored rows. */
export type ExtraIdsOf = (
  rows: Int32Array,
  targets: Int32Array,
) => { ids: Int32Array; perToken: number } | null;

/**
 * log p(id) for `perToken` extra ids per scored token, without [N, vocab]: a gather of the LM
 * head's rows of the gold and extra ids and one small batched matmul give their logits z; with the
 * fused head's log p(gold) = z_gold - logsumexp(z), log p(id) = z_id - z_gold + log p(gold). The
 * gradient flows through both the gather matmul and the fused head (d/dh = w_id - E_p[w]).
 */
function extraLogProbs(
  model: CausalLM,
  picked: Tensor,
  targets: Int32Array,
  goldLogp: Tensor,
  ids: Int32Array,
  perToken: number,
): Tensor {
  const n = targets.length;
  const width = perToken + 1;
  if (ids.length !== n * perToken)
    throw new RangeError(
      `extra target ids: expected ${n} x ${perToken} = ${n * perToken} ids, got ${ids.length}`,
    );
  const all = new Int32Array(n * width);
  for (let i = 0; i < n; i++) {
    all[i * width] = targets[i]!;
    all.set(ids.subarray(i * perToken, (i + 1) * perToken), i * width + 1);
  }
  const d = model.config.hiddenSize;
  const rows = reshape(embedding(model.headMatrix(), fromArray(all, [n * width], { dtype: 'i32' })), [
    n,
    width,
    d,
  ]);
  const logits = reshape(
    matmul(reshape(picked, [n, 1, d]), rows, { transB: true, precision: model.lmHeadPrecision }),
    [n, width],
  );
  const shift = sub(reshape(goldLogp, [n, 1]), slice(logits, 1, 0, 1));
  return add(slice(logits, 1, 1, width), shift);
}

/**
 * Score the labelled tokens of `inputIds` [B, T] (i32): `labels` [B, T] is aligned with the ids
 * (labels[b, t] is the token at t, -100 where it is not scored); position t - 1 predicts it.
 * Differentiable; only the labelled positions reach the LM head.
 */
export function scoreNextTokens(
  model: CausalLM,
  inputIds: Tensor,
  labels: Tensor,
  options: { extraIds?: ExtraIdsOf } = {},
): NextTokenScores {
  const { rows, targets } = supervisedRows(labels);
  const asked = options.extraIds?.(rows, targets) ?? null;
  const hidden = model.forwardHidden(inputIds);
  const flat = reshape(hidden, [-1, model.config.hiddenSize]);
  const picked = embedding(flat, fromArray(rows, [rows.length], { dtype: 'i32' }));
  const result = model.scoreTokens(picked, fromArray(targets, [targets.length], { dtype: 'i32' }));
  if (!asked || rows.length === 0) return { result, rows, count: rows.length };
  const logp = extraLogProbs(model, picked, targets, result.logp, asked.ids, asked.perToken);
  return { result, rows, count: rows.length, extra: { ...asked, logp } };
}

export interface TokenScore {
  id: number;
  /** log p(token | previous tokens); null for the first token. */
  logprob: number | null;
  /** Entropy (nats) of the distribution that predicted this token; null for the first token. */
  entropy: number | null;
  /** log-prob of the most likely token at this position (null for the first). */
  top1Logprob: number | null;
  /** log-prob of the second most likely token (null for the first). */
  top2Logprob: number | null;
  /** Whether the token was the argmax prediction (null for the first). */
  isArgmax: boolean | null;
}

export interface SequenceScore {
  tokens: TokenScore[];
  /** Mean log-prob over scored tokens (0 when fewer than 2 tokens). */
  meanLogprob: number;
  sumLogprob: number;
  meanEntropy: number;
  maxEntropy: number;
}

/** Score `ids` (one sequence) with the model in eval mode. */
export function scoreIds(model: CausalLM, ids: readonly number[]): SequenceScore {
  if (ids.length === 0) throw new RangeError('score: no tokens to score');
  const T = ids.length;
  return noGrad(() =>
    scope(() => {
      const input = fromArray(Int32Array.from(ids), [1, T], { dtype: 'i32' });
      const labels = Int32Array.from(ids, (id, i) => (i === 0 ? -100 : id));
      const { result: r } = scoreNextTokens(model, input, fromArray(labels, [1, T], { dtype: 'i32' }));
      const logp = r.logp.data;
      const ent = r.entropy.data;
      const top1 = r.top1.data;
      const top2 = r.top2.data;
      const tokens: TokenScore[] = [
        { id: ids[0]!, logprob: null, entropy: null, top1Logprob: null, top2Logprob: null, isArgmax: null },
      ];
      let sum = 0;
      let entSum = 0;
      let entMax = -Infinity;
      for (let i = 0; i + 1 < T; i++) {
        sum += logp[i]!;
        entSum += ent[i]!;
        entMax = Math.max(entMax, ent[i]!);
        tokens.push({
          id: ids[i + 1]!,
          logprob: logp[i]!,
          entropy: ent[i]!,
          top1Logprob: top1[i]!,
          top2Logprob: top2[i]!,
          isArgmax: r.argmax[i] === ids[i + 1],
        });
      }
      const n = T - 1;
      return {
        tokens,
        meanLogprob: n > 0 ? sum / n : 0,
        sumLogprob: sum,
        meanEntropy: n > 0 ? entSum / n : 0,
        maxEntropy: n > 0 ? entMax : 0,
      };
    }),
  );
}

/** log-probabilities of the next token after `ids` (one forward pass, no gradients). */
export function nextTokenLogProbs(model: CausalLM, ids: readonly number[]): Float64Array {
  return noGrad(() =>
    scope(() => {
      const input = fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' });
      const hidden = model.forwardHidden(input);
      const logits = model.logits(slice(hidden, 1, ids.length - 1, ids.length)).data as Float32Array;
      let max = -Infinity;
      for (const z of logits) if (z > max) max = z;
      let sum = 0;
      for (const z of logits) sum += Math.exp(z - max);
      const logSum = Math.log(sum) + max;
      return Float64Array.from(logits, (z) => z - logSum);
    }),
  );
}

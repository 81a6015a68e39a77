/**
 * One optimizer step's forward/backward on the fused LM head: for each micro-batch, the hidden
 * states of the supervised positions only (label != -100 after the causal shift) go through
 * `linearCrossEntropy`; the loss turns the per-token (logp, H, top1, correct) into coefficients, and
 * a surrogate sum(c * term) carries exactly those coefficients into the fused backward.
 */
import { type CausalLM, scoreNextTokens, supervisedRows } from '../models/index.ts';
import type { Adapter } from '../peft/index.ts';
import {
  add,
  backward,
  embedding,
  fromArray,
  mul,
  noGrad,
  reshape,
  scope,
  sum,
  type Tensor,
} from '../tensor/index.ts';
import type { TokenLoss, TokenTerms } from './losses/index.ts';

/** A micro-batch: token ids and labels [B, T] (labels aligned with ids; -100 = not trained). */
export interface MicroBatch {
  inputIds: Tensor;
  labels: Tensor;
  /** Per position [B*T]: the example index of the token (-1 padding), as the DataLoader's Batch. */
  exampleOf?: Int32Array;
  /** Per position [B*T]: the token's position inside its example (-1 padding). */
  positionOf?: Int32Array;
  /** Per position [B*T]: the loss weight of the label there (data transforms); absent = all 1. */
  weights?: Float32Array;
}

/** Per scored token: the example its target token belongs to and the target's position in it. */
function targetsOf(
  batch: MicroBatch,
  rows: Int32Array,
): Pick<TokenTerms, 'exampleOf' | 'positionOf' | 'weights'> {
  const weighted = weightsOf(batch, rows);
  if (!batch.exampleOf || !batch.positionOf) return weighted;
  const exampleOf = new Int32Array(rows.length);
  const positionOf = new Int32Array(rows.length);
  for (let i = 0; i < rows.length; i++) {
    // row r = b*T + t predicts the token at b*T + t + 1
    exampleOf[i] = batch.exampleOf[rows[i]! + 1]!;
    positionOf[i] = batch.positionOf[rows[i]! + 1]!;
  }
  return { exampleOf, positionOf, ...weighted };
}

/** Per scored token: the weight of its target (the label one position on), when the batch has weights. */
function weightsOf(batch: MicroBatch, rows: Int32Array): Pick<TokenTerms, 'weights'> {
  if (!batch.weights) return {};
  const weights = new Float32Array(rows.length);
  for (let i = 0; i < rows.length; i++) weights[i] = batch.weights[rows[i]! + 1]!;
  return { weights };
}

/**
 * Per-token terms of the supervised positions of one micro-batch (differentiable), plus the
 * log-probs of the extra ids `loss.extraTargets` asks for, when it does.
 */
export function tokenTerms(model: CausalLM, batch: MicroBatch, loss?: TokenLoss) {
  const extraTargets = loss?.extraTargets?.bind(loss);
  const extraIds = extraTargets
    ? (rows: Int32Array, targets: Int32Array) =>
        extraTargets({ count: rows.length, targets, ...targetsOf(batch, rows) })
    : undefined;
  return scoreNextTokens(model, batch.inputIds, batch.labels, { extraIds });
}

export interface StepStats {
  loss: number;
  parts: Record<string, number>;
  /** Supervised tokens in the step. */
  tokens: number;
  /** Tokens fed to the model (all positions of all micro-batches). */
  inputTokens: number;
}

/** Supervised-token and correct-argmax counts of the step, without changing any state. */
function countStep(
  model: CausalLM,
  batches: readonly MicroBatch[],
  needCorrect: boolean,
): { tokens: number; correct: number } {
  let tokens = 0;
  for (const b of batches) tokens += supervisedRows(b.labels).rows.length;
  if (!needCorrect) return { tokens, correct: 0 };
  // same dropout masks as the training pass: run under the same key, then restart it
  const key = model.dropoutKey();
  let correct = 0;
  noGrad(() => {
    for (const b of batches) {
      scope(() => {
        const { result } = tokenTerms(model, b);
        const c = result.correct.data;
        for (let i = 0; i < c.length; i++) correct += c[i]!;
      });
    }
  });
  model.setDropoutKey(key);
  return { tokens, correct };
}

/** Distinct examples (exampleOf) with a supervised token in `batches`; null without exampleOf. */
function countExamples(batches: readonly MicroBatch[]): number | null {
  const seen = new Set<number>();
  for (const b of batches) {
    if (!b.exampleOf) return null;
    const labels = b.labels.data as Int32Array;
    for (let i = 0; i < labels.length; i++)
      if (labels[i]! !== -100 && b.exampleOf[i]! >= 0) seen.add(b.exampleOf[i]!);
  }
  return seen.size;
}

/**
 * Forward + backward of one optimizer step over `batches` (gradient accumulation); gradients are
 * accumulated into the trainable parameters' `.grad`. Returns the step loss.
 */
export function forwardBackwardStep(
  model: CausalLM,
  loss: TokenLoss,
  batches: readonly MicroBatch[],
): StepStats {
  // A loss that averages per correct/incorrect group needs the step's group sizes up front; with
  // one micro-batch they come from the training pass itself.
  const needCorrect = (loss.needsCorrectCounts ?? false) && batches.length > 1;
  const counts = countStep(model, batches, needCorrect);
  const stepExamples = countExamples(batches);
  let value = 0;
  const parts: Record<string, number> = {};
  let inputTokens = 0;
  for (const batch of batches) {
    inputTokens += batch.inputIds.size;
    scope(() => {
      const { result, count, rows, extra } = tokenTerms(model, batch, loss);
      if (count === 0) return;
      let stepCorrect = counts.correct;
      if (!needCorrect) {
        stepCorrect = 0;
        const c = result.correct.data;
        for (let i = 0; i < c.length; i++) stepCorrect += c[i]!;
      }
      const out = loss.compute(
        {
          logp: result.logp.floatData(),
          entropy: result.entropy.floatData(),
          top1: result.top1.floatData(),
          correct: result.correct.floatData(),
          count,
          ...targetsOf(batch, rows),
          ...(extra
            ? { extra: { ids: extra.ids, perToken: extra.perToken, logp: extra.logp.floatData() } }
            : {}),
        },
        { stepTokens: counts.tokens, stepCorrect, ...(stepExamples === null ? {} : { stepExamples }) },
      );
      value += out.value;
      for (const [k, v] of Object.entries(out.parts)) parts[k] = (parts[k] ?? 0) + v;
      const dtype = result.logp.dtype;
      let surrogate = sum(mul(result.logp, fromArray(out.cLogp, [count], { dtype })));
      if (out.cEntropy)
        surrogate = add(surrogate, sum(mul(result.entropy, fromArray(out.cEntropy, [count], { dtype }))));
      if (out.cTop1)
        surrogate = add(surrogate, sum(mul(result.top1, fromArray(out.cTop1, [count], { dtype }))));
      if (extra && out.cExtraLogp)
        surrogate = add(
          surrogate,
          sum(mul(extra.logp, fromArray(out.cExtraLogp, [count, extra.perToken], { dtype }))),
        );
      backward(surrogate);
    });
  }
  return { loss: value, parts, tokens: counts.tokens, inputTokens };
}

/**
 * Add `adapter`'s auxiliary loss (a tuner's regulariser, e.g. KaSA's), once per optimizer step:
 * its gradient is accumulated into the trainable parameters and its value and parts into `stats`.
 * No-op for adapters without one.
 */
export function addAuxiliaryLoss(adapter: Pick<Adapter, 'auxiliaryLoss'>, stats: StepStats): void {
  scope(() => {
    const aux = adapter.auxiliaryLoss?.();
    if (!aux) return;
    stats.loss += aux.value.floatData()[0]!;
    for (const [k, v] of Object.entries(aux.parts)) stats.parts[k] = (stats.parts[k] ?? 0) + v;
    backward(aux.value);
  });
}

/** Mean NLL of the supervised tokens of `batches` (no gradient). */
export function evaluateLoss(
  model: CausalLM,
  batches: Iterable<MicroBatch>,
): { loss: number; tokens: number } {
  let nll = 0;
  let tokens = 0;
  noGrad(() => {
    for (const b of batches) {
      scope(() => {
        const { result, count } = tokenTerms(model, b);
        const lp = result.logp.data;
        for (let i = 0; i < count; i++) nll -= lp[i]!;
        tokens += count;
      });
    }
  });
  return { loss: tokens > 0 ? nll / tokens : Number.NaN, tokens };
}

/**
 * What selection measures of a record with a reference model: the mean NLL of its trained tokens
 * (the completion of a {prompt, completion} record, every token after the first of a {text} one:
 * the tokens fine-tuning would train), the mean-pooled final hidden state of the whole sequence (its
 * embedding), and the oracle influence of one small SGD step on it over the trainable parameters.
 */
import { type DataRecord, type TokenizedExample, tokenizeRecord } from '../../data/index.ts';
import type { Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';
import type { Parameter } from '../../nn/index.ts';
import { fromArray } from '../../tensor/index.ts';
import { createLoss, evaluateLoss, forwardBackwardStep, type MicroBatch } from '../../train/index.ts';
import { sequenceInternals } from '../internals.ts';

/** A record tokenized as fine-tuning would see it. */
export function tokenizeForSelection(record: DataRecord, tokenizer: Tokenizer): TokenizedExample {
  return tokenizeRecord(record, tokenizer);
}

/** A batch of one example. */
export function singleBatch(example: TokenizedExample): MicroBatch {
  const T = example.inputIds.length;
  return {
    inputIds: fromArray(example.inputIds, [1, T], { dtype: 'i32' }),
    labels: fromArray(example.labels, [1, T], { dtype: 'i32' }),
  };
}

/** Mean NLL (nats per trained token) of `example` under `model`. */
export function meanNll(model: CausalLM, example: TokenizedExample): number {
  return evaluateLoss(model, [singleBatch(example)]).loss;
}

/** Mean NLL over the trained tokens of all `examples` together (token-weighted). */
export function pooledNll(model: CausalLM, examples: readonly TokenizedExample[]): number {
  return evaluateLoss(model, examples.map(singleBatch)).loss;
}

/** The mean-pooled final hidden state of `example`'s whole sequence (f64). */
export function recordEmbedding(model: CausalLM, example: TokenizedExample): Float64Array {
  return sequenceInternals(model, Array.from(example.inputIds)).meanHidden;
}

/**
 * The oracle influence of `example` on the target: the target's pooled NLL before minus after one
 * plain SGD step of learning rate `lr` on the example's CE loss over `params` (restored afterwards).
 * Positive = the step lowers the target loss.
 */
export function oracleInfluence(
  model: CausalLM,
  params: readonly Parameter[],
  example: TokenizedExample,
  target: readonly TokenizedExample[],
  lr: number,
  before: number = pooledNll(model, target),
): number {
  for (const p of params) p.grad = null;
  forwardBackwardStep(model, createLoss('ce'), [singleBatch(example)]);
  const saved: Float32Array[] = [];
  for (const p of params) {
    const data = p.data as Float32Array;
    saved.push(data.slice());
    const g = p.grad?.floatData();
    if (g) for (let j = 0; j < data.length; j++) data[j] = data[j]! - lr * g[j]!;
    p.grad = null;
  }
  const after = pooledNll(model, target);
  params.forEach((p, i) => {
    (p.data as Float32Array).set(saved[i]!);
  });
  return before - after;
}

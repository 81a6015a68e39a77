/** Small models and comparisons shared by the peft/ tests. */
import {
  type CausalLM,
  createModel,
  type LlamaForCausalLM,
  llamaConfigJson,
} from '../../../src/models/index.ts';
import type { Module } from '../../../src/nn/index.ts';
import { fromArray, noGrad, Rng, scope } from '../../../src/tensor/index.ts';

/** A 2-layer llama (hidden 32, 4 heads, 2 kv heads, vocab 50), tied embeddings unless `tied: false`. */
export function tinyLlama(
  options: { seed?: number; tied?: boolean; dtype?: 'f32' | 'bf16' | 'f64' } = {},
): LlamaForCausalLM {
  const config = llamaConfigJson({
    vocabSize: 50,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    tieWordEmbeddings: options.tied ?? true,
  });
  return createModel(config, { seed: options.seed ?? 7, dtype: options.dtype ?? 'f32' }) as LlamaForCausalLM;
}

/** A fixed token sequence of length `n` (ids < 50). */
export function tokens(n: number, seed = 3): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(50));
}

/** Full logits [T * vocab] of one sequence, as a plain array (inference mode, no grad). */
export function logitsOf(model: CausalLM, ids: readonly number[]): Float64Array {
  return noGrad(() =>
    scope(() => {
      const hidden = model.forwardHidden(fromArray(Int32Array.from(ids), [1, ids.length], { dtype: 'i32' }));
      return Float64Array.from(model.logits(hidden).data as Float32Array);
    }),
  );
}

/** max |a - b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

/** Fill every LoRA B matrix (and A) of a model with seeded random values, so the update is non-zero. */
export function randomizeLora(model: Module, seed: number, scale = 0.05): void {
  const rng = new Rng(seed);
  for (const [name, p] of model.namedParameters()) {
    if (name.endsWith('.lora_B.weight') || name.endsWith('.lora_A.weight'))
      p.fillWith(() => scale * rng.normal());
  }
}

/** Copies of every parameter's values by name. */
export function snapshotParameters(model: Module): Map<string, number[]> {
  return new Map(model.namedParameters().map(([n, p]) => [n, p.toArray()]));
}

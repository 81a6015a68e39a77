/** Random (non-zero) LoRA adapters of a model directory, written in PEFT's layout, for serve tests. */
import { join } from 'node:path';
import { loadModel } from '../../src/models/index.ts';
import { applyLora } from '../../src/peft/index.ts';
import { Rng } from '../../src/tensor/index.ts';

/** One adapter to write: PEFT's target_modules (a list or a regex string) and the LoRA's rank. */
export interface RandomAdapterSpec {
  name: string;
  seed: number;
  targets: string[] | string;
  r?: number;
  std?: number;
  /** PEFT's ensure_weight_tying (default false). */
  ensureWeightTying?: boolean;
  /** PEFT's rank_pattern (default none). */
  rankPattern?: Record<string, number>;
}

/**
 * Write one adapter per entry of `specs` under `outDir/<name>` over the model in `modelDir`: LoRA
 * with the given targets and rank, A kaiming, B drawn N(0, std^2) so each adapter changes answers
 * (an Embedding's lora_embedding_A, zeros at PEFT's start, drawn N(0, std^2) too).
 * Returns [{name, dir}].
 */
export function writeRandomAdapters(
  modelDir: string,
  outDir: string,
  specs: readonly RandomAdapterSpec[],
): { name: string; dir: string }[] {
  return specs.map((spec) => {
    const { model } = loadModel(modelDir);
    const adapter = applyLora(model, {
      r: spec.r ?? 4,
      loraAlpha: 8,
      targetModules: spec.targets,
      seed: spec.seed,
      ensureWeightTying: spec.ensureWeightTying ?? false,
      rankPattern: spec.rankPattern ?? null,
    });
    const rng = new Rng(spec.seed + 1000);
    const std = spec.std ?? 0.3;
    for (const [, layer] of adapter.layers()) layer.lora_B.weight.fillWith(() => std * rng.normal());
    for (const [, e] of adapter.embeddingLayers()) e.lora_embedding_A.fillWith(() => std * rng.normal());
    const dir = join(outDir, spec.name);
    adapter.save(dir);
    return { name: spec.name, dir };
  });
}

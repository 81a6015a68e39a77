/** Random (non-zero) LoRA adapters of a model directory, written in PEFT's layout, for serve tests. */
import { join } from 'node:path';
import { loadModel } from '../../src/models/index.ts';
import { applyLora } from '../../src/peft/index.ts';
import { Rng } from '../../src/tensor/index.ts';

/**
 * Write one adapter per entry of `specs` under `outDir/<name>` over the model in `modelDir`: LoRA
 * with the given targets and rank, A kaiming, B drawn N(0, std^2) so each adapter changes answers.
 * Returns [{name, dir}].
 */
export function writeRandomAdapters(
  modelDir: string,
  outDir: string,
  specs: readonly { name: string; seed: number; targets: string[]; r?: number; std?: number }[],
): { name: string; dir: string }[] {
  return specs.map((spec) => {
    const { model } = loadModel(modelDir);
    const adapter = applyLora(model, {
      r: spec.r ?? 4,
      loraAlpha: 8,
      targetModules: spec.targets,
      seed: spec.seed,
    });
    const rng = new Rng(spec.seed + 1000);
    const std = spec.std ?? 0.3;
    for (const [, layer] of adapter.layers()) layer.lora_B.weight.fillWith(() => std * rng.normal());
    const dir = join(outDir, spec.name);
    adapter.save(dir);
    return { name: spec.name, dir };
  });
}

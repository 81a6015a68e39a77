/** The tiny method-bench options the bench-unit tests share: lora + ce, 2 seeds, 2 steps, 2 questions per split. */
import { join } from 'node:path';
import type { MethodsBenchOptions } from '../../src/bench/methods.ts';
import { worldFinetuneFile } from '../../src/world/demo.ts';

/** Options of a tiny bench on `base` and `worldDir`, written under `root/out` (override anything). */
export function tinyBenchOptions(
  base: string,
  worldDir: string,
  root: string,
  out: string,
  partial: Partial<MethodsBenchOptions> = {},
): MethodsBenchOptions {
  return {
    base,
    worldDir,
    trainFile: worldFinetuneFile(worldDir),
    out: join(root, out),
    specs: [{ method: 'lora', loss: 'ce' }],
    seeds: [0, 1],
    budget: {
      steps: 2,
      batchSize: 2,
      lr: 1e-2,
      fullLr: 1e-3,
      warmupSteps: 0,
      maxLength: 64,
      evalPerSplit: 2,
    },
    experiments: ['masked_thought'],
    ...partial,
  };
}

/**
 * PortLLM ("PortLLM: Personalizing Evolving Large Language Models with Training-Free and Portable
 * Model Patches"): a LoRA patch trained on one base is added, without training, to an evolved base.
 * The evolved base is the bench's base pretrained further on the world's corpus (full fine-tuning,
 * `EVOLVE` below, a different data order; built once and kept). Rows, per seed of the patch:
 * `port(lora)` (the bench's lora + ce adapter of that seed ported to the evolved base),
 * `lora(evolved)` (LoRA fine-tuned on the evolved base with the bench's recipe) and `evolved_base`
 * (the evolved base alone; one model, so every seed gives the same value). `extra.drift` is the
 * evolution's relative weight change ||W' - W|| / ||W|| over every matrix.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openCheckpoint, writeJsonAtomic } from '../../io/index.ts';
import { readFloat64 } from '../../merge/compress-tau.ts';
import { portAdapter } from '../../merge/index.ts';
import { registerExperiment } from '../experiment.ts';

const PAPER =
  'PortLLM: Personalizing Evolving Large Language Models with Training-Free and Portable Model Patches';

/**
 * How the base evolves: continued pretraining on the world corpus, a third of the bench's step budget
 * (100 steps with --quick, about 8% of the small base's 1200 pretraining steps) at a third of the
 * small recipe's peak learning rate.
 */
export const EVOLVE = {
  stepsPerBenchStep: 1 / 3,
  batchSize: 24,
  maxLength: 192,
  lr: 1e-3,
  warmupSteps: 5,
  seed: 1000,
};

/** ||after - before|| / ||before|| over every 2-D tensor the two checkpoints share. */
export function relativeDrift(beforeDir: string, afterDir: string): number {
  const a = openCheckpoint(beforeDir);
  const b = openCheckpoint(afterDir);
  let diff = 0;
  let norm = 0;
  try {
    for (const name of a.names()) {
      if (a.info(name).shape.length !== 2 || !b.has(name)) continue;
      const x = readFloat64(a, name);
      const y = readFloat64(b, name);
      for (let i = 0; i < x.length; i++) {
        diff += (y[i]! - x[i]!) ** 2;
        norm += x[i]! ** 2;
      }
    }
  } finally {
    a.close();
    b.close();
  }
  return Math.sqrt(diff / Math.max(norm, Number.MIN_VALUE));
}

registerExperiment({
  name: 'portllm',
  description: 'a LoRA patch ported, training-free, to an evolved base vs LoRA trained on the evolved base',
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  run(ctx) {
    const evolved = ctx.train('evolved-base', EVOLVE.seed, {
      method: { name: 'full' },
      data: {
        train: join(ctx.worldDir, 'pretrain.jsonl'),
        train_on: 'all',
        packing: true,
        max_length: EVOLVE.maxLength,
      },
      schedule: {
        name: 'cosine',
        warmup_steps: Math.min(EVOLVE.warmupSteps, Math.round(ctx.budget.steps / 10)),
      },
      train: {
        steps: Math.max(1, Math.round(ctx.budget.steps * EVOLVE.stepsPerBenchStep)),
        batch_size: EVOLVE.batchSize,
        lr: EVOLVE.lr,
      },
    });
    const evolvedDir = join(evolved.runDir, 'model');
    const driftFile = join(ctx.work, 'drift.json');
    if (!existsSync(driftFile)) writeJsonAtomic(driftFile, { drift: relativeDrift(ctx.base, evolvedDir) });
    const drift = (JSON.parse(readFileSync(driftFile, 'utf8')) as { drift: number }).drift;
    ctx.note(`evolved base: relative weight drift ${drift.toFixed(4)}`);
    const none = { trainable_params: 0, adapter_bytes: 0, step_s: 0, peak_rss_mb: null };
    const alone = ctx.evaluate(
      { method: 'evolved_base', loss: 'ce' },
      EVOLVE.seed,
      { modelDir: evolvedDir, adapterDir: null },
      none,
      () => ({ drift }),
    );
    const ported = ctx.seeds.map((seed) => {
      const patch = ctx.methodRun('lora', 'ce', seed);
      const out = join(ctx.work, `ported-seed${seed}`);
      if (!existsSync(join(out, 'config.json')))
        portAdapter({ adapter: patch.adapterDir!, toBase: evolvedDir, fromBase: ctx.base, out });
      return ctx.evaluate(
        { method: 'port(lora)', loss: 'ce' },
        seed,
        { modelDir: out, adapterDir: null },
        { ...patch.cost, step_s: 0 },
        () => ({ drift }),
      );
    });
    const retrained = ctx.seeds.map((seed) => {
      const run = ctx.train('lora-on-evolved', seed, { model: evolvedDir });
      return ctx.evaluate({ method: 'lora(evolved)', loss: 'ce' }, seed, run, run.cost, () => ({ drift }));
    });
    return [ctx.seeds.map((seed) => ({ ...alone, seed })), ported, retrained];
  },
  headlines: [
    {
      paper: PAPER,
      claim:
        'A LoRA patch ported to the evolved base without training comes within 0.05 of LoRA fine-tuned on the evolved base',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: { method: 'lora(evolved)', loss: 'ce' },
      treatment: { method: 'port(lora)', loss: 'ce' },
    },
    {
      paper: PAPER,
      claim: 'The ported patch personalises the evolved base: taught accuracy above the evolved base alone',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'evolved_base', loss: 'ce' },
      treatment: { method: 'port(lora)', loss: 'ce' },
    },
  ],
});

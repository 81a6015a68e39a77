/**
 * Bench experiment `first`: FIRST distillation ("Teach A Reliable Large Language Model Through
 * Efficient Trustworthy Distillation"). The teacher is the large world base + LoRA trained with CE
 * on the taught facts (once, with the first seed); its top-5 on the taught-facts training set is
 * cached; the student is the small base + LoRA trained with the `first` loss (the paper's recipe:
 * KL only, softmax normalisation at T = 1), with plain renormalisation instead (METHODS.md's
 * wording), with KL mixed with CE, and with the top-k + "other" bin. All are compared with the method rows' LoRA + CE student
 * (accuracy and ECE, the paper's +2.3% / -10%). The teacher is a row too, and the cache's "concentrated knowledge" (how much probability its
 * top-5 holds, how often it holds the gold token) is each row's extra.
 */
import { join } from 'node:path';
import { validateDistillConfig } from '../../train/distill.ts';
import { ensureTeacherCache, openTeacherCache } from '../../train/index.ts';
import { type ExperimentContext, registerExperiment } from '../experiment.ts';
import type { RunResult } from '../methods.ts';

const K = 5;

/** Mean top-k probability mass and the fraction of tokens whose gold id is in the top-k. */
function concentration(path: string): Record<string, number> {
  const cache = openTeacherCache(path);
  const n = cache.header.tokens;
  let mass = 0;
  let gold = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < K; j++) {
      mass += Math.exp(cache.logprobs[r * K + j]!);
      if (cache.ids[r * K + j] === cache.targets[r]) gold++;
    }
  }
  return { teacher_topk_mass: n > 0 ? mass / n : 0, teacher_gold_in_topk: n > 0 ? gold / n : 0 };
}

function run(ctx: ExperimentContext): RunResult[][] {
  const large = ctx.worldBase('large');
  const teacherSeed = ctx.seeds[0]!;
  const teacher = ctx.train('teacher-large-lora', teacherSeed, { model: large });
  const cachePath = join(ctx.work, `teacher-top${K}.safetensors`);
  const distill = validateDistillConfig(
    {
      model: ctx.base,
      data: { train: ctx.trainFile, max_length: ctx.budget.maxLength },
      // only the data section matters for the cache; the students train through ctx.train
      train: { steps: ctx.budget.steps, batch_size: ctx.budget.batchSize, lr: ctx.budget.lr },
      teacher: { model: large, adapter: teacher.adapterDir, k: K, cache: cachePath },
      output_dir: join(ctx.work, 'unused-run'),
    },
    'bench experiment first',
    ctx.work,
  );
  ensureTeacherCache(distill, (e) => {
    if (e.type === 'cache') {
      ctx.note(
        e.status === 'reused' ? `reusing the teacher cache ${e.path}` : `caching the teacher top-${K}`,
      );
      if (e.status === 'building') ctx.phase('teacher top-k cache', e.examples);
    } else if (e.type === 'cache-progress') ctx.progress(e.done);
  });
  const extra = concentration(cachePath);
  const teacherRow = ctx.evaluate(
    { method: 'lora(large)', loss: 'ce' },
    teacherSeed,
    teacher,
    teacher.cost,
    () => extra,
  );
  const student = (label: string, loss: Record<string, unknown>) =>
    ctx.seeds.map((seed) => {
      const trained = ctx.train(`student-${label}`, seed, {
        loss: { name: 'first', k: K, cache: cachePath, ...loss },
      });
      return ctx.evaluate({ method: 'lora', loss: label }, seed, trained, trained.cost, () => extra);
    });
  return [
    [teacherRow],
    student('first', { ce_weight: 0 }),
    student('first-renorm', { ce_weight: 0, normalization: 'linear' }),
    student('first+ce', { ce_weight: 1 }),
    // the authors' example script: top-k plus an "other" bin, which keeps the mass outside the top-k
    student('first-other', { ce_weight: 0, normalization: 'other-token' }),
  ];
}

registerExperiment({
  byDefault: false,
  heavy:
    'it fine-tunes the large world base as the teacher, caches its top-k over the data and trains four student rows (about 10 min on 2 cores)',
  name: 'first',
  description:
    'FIRST distillation: large-base LoRA teacher top-5 -> small-base LoRA student, vs the CE student',
  run,
  headlines: [
    {
      paper: 'FIRST: Teach A Reliable Large Language Model Through Efficient Trustworthy Distillation',
      claim: 'the FIRST student is more accurate than the CE student (paper: +2.3%)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'lora', loss: 'ce' },
      treatment: { method: 'lora', loss: 'first' },
    },
    {
      paper: 'FIRST: Teach A Reliable Large Language Model Through Efficient Trustworthy Distillation',
      claim: 'the FIRST student is better calibrated than the CE student (paper: -10% ECE)',
      metric: 'ece',
      sign: -1,
      kind: 'better',
      baseline: { method: 'lora', loss: 'ce' },
      treatment: { method: 'lora', loss: 'first' },
    },
  ],
});

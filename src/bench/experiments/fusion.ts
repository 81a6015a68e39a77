/**
 * Bench experiment `fusion`: weak-to-strong logit fusion of the large world base (strong, never
 * fine-tuned) with a small expert (the small base + LoRA on the taught facts, the bench's recipe),
 * against the large base alone and the small expert alone, on the bench's questions. Rows:
 * `large-base` (deterministic: evaluated once, the same for every seed), `small-expert`,
 * `fusion-dynamic` (the paper's per-step KL-constrained weights) and `proxy-tuning` (fixed w = 1,
 * the static special case). The fused rows report their mean expert weight (`extra.mean_weight`).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../io/index.ts';
import { FusedModel, type FusionWeights, loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { type ExperimentContext, type ExperimentRun, registerExperiment } from '../experiment.ts';
import { measureModelRun, questionsOf, type RunResult, type WorldQuestions } from '../methods.ts';

/** Evaluate the fusion of the large base with the expert `run` (cached in the experiment's folder). */
function fusedRow(
  ctx: ExperimentContext,
  questions: WorldQuestions,
  method: string,
  weights: FusionWeights,
  seed: number,
  expert: ExperimentRun,
): RunResult {
  const dir = join(ctx.work, 'rows', `${method}-ce-seed${seed}`);
  const file = join(dir, 'result.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as RunResult;
  const strongDir = ctx.worldBase('large');
  const strong = loadModel(strongDir);
  const base = loadModel(expert.modelDir);
  const tuned = loadModel(expert.modelDir);
  if (expert.adapterDir) loadAdapter(tuned.model, expert.adapterDir);
  const fused = new FusedModel(
    { name: `the large world base ${strongDir}`, model: strong.model, tokenizer: strong.tokenizer },
    [
      {
        tuned: { name: `the small expert ${expert.runDir}`, model: tuned.model, tokenizer: tuned.tokenizer },
        base: { name: `the small base ${expert.modelDir}`, model: base.model, tokenizer: base.tokenizer },
      },
    ],
    { weights },
  );
  fused.eval();
  let sum = 0;
  let count = 0;
  fused.onWeights = (w) => {
    sum += w[0]!;
    count++;
  };
  const total = questions.mixed.length + questions.ood.length + questions.paraphrase.length;
  ctx.phase(`${method}, seed ${seed}: evaluate`, total);
  const r = measureModelRun(
    { method, loss: 'ce', seed },
    questions,
    { model: fused, tokenizer: strong.tokenizer, eosTokenIds: strong.eosTokenIds },
    expert.cost,
    (d) => ctx.progress(d),
  );
  r.extra = { mean_weight: count > 0 ? sum / count : null };
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(file, r as unknown as Record<string, unknown>);
  return r;
}

registerExperiment({
  byDefault: false,
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  heavy: 'fused decoding runs three models per token for every question (several minutes a seed on 2 cores)',
  name: 'fusion',
  description:
    'weak-to-strong logit fusion: the large world base steered by a small LoRA expert (dynamic weights, proxy tuning) vs either alone',
  run(ctx) {
    const questions = questionsOf(ctx.worldDir, ctx.budget.evalPerSplit);
    // the bench's lora + ce run of each seed (the same recipe and seed: no second training)
    const experts = ctx.seeds.map((seed) => ctx.methodRun('lora', 'ce', seed));
    const noCost = { trainable_params: 0, adapter_bytes: 0, step_s: 0, peak_rss_mb: null };
    // the large base is deterministic: one evaluation stands for every seed
    const large = ctx.evaluate(
      { method: 'large-base', loss: 'none' },
      ctx.seeds[0]!,
      { modelDir: ctx.worldBase('large'), adapterDir: null },
      noCost,
    );
    return [
      ctx.seeds.map((seed) => ({ ...large, seed })),
      ctx.seeds.map((seed, i) =>
        ctx.evaluate({ method: 'small-expert', loss: 'ce' }, seed, experts[i]!, experts[i]!.cost),
      ),
      ctx.seeds.map((seed, i) => fusedRow(ctx, questions, 'fusion-dynamic', 'dynamic', seed, experts[i]!)),
      ctx.seeds.map((seed, i) => fusedRow(ctx, questions, 'proxy-tuning', [1], seed, experts[i]!)),
    ];
  },
  headlines: [
    {
      paper: "On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion",
      claim: 'fusing a small tuned expert into the large base teaches it the facts (vs the large base alone)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'large-base', loss: 'none' },
      treatment: { method: 'fusion-dynamic', loss: 'ce' },
    },
    {
      paper: "On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion",
      claim: 'the fused large model outperforms the small expert it borrows from',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'small-expert', loss: 'ce' },
      treatment: { method: 'fusion-dynamic', loss: 'ce' },
    },
    {
      paper: "On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits Fusion",
      claim: 'dynamic per-step weights beat a fixed weight (proxy tuning, w = 1)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'proxy-tuning', loss: 'ce' },
      treatment: { method: 'fusion-dynamic', loss: 'ce' },
    },
  ],
});

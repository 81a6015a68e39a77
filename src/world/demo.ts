/**
 * `attune demo`: the whole product on the benchmark world, with no download and no pretraining.
 *   1. open the shipped small world base (world-bases/small: a Llama pretrained once on the world's
 *      corpus, with its word-level tokenizer; base.json's hashes are checked) and write its world;
 *   2. fine-tune it on the taught facts with LoRA + `ce` and with LoRA + `ua-clm`, once per seed;
 *   3. evaluate base, ce and ua-clm on the mixed questions (known + taught + unknown) and on the
 *      out-of-domain family: accuracy per split, ECE of exp(mean log-prob), AUROC of detecting wrong
 *      answers per score, AUROC of telling out-of-domain questions from in-domain ones;
 *   4. write metrics.json (deterministic for a seed: no timings) and report.html.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { backendInfo } from '../backend/index.ts';
import { ConfigError } from '../errors.ts';
import { type JsonObject, writeJsonAtomic, writeTextAtomic } from '../io/index.ts';
import { loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { validateTrainConfig } from '../train/config.ts';
import { type TrainEvent, train } from '../train/trainer.ts';
import { type Prediction, readEvalRecords, reliabilityDiagram, riskCoverageCurve } from '../uq/index.ts';
import { resolveWorldBase, runLosses, shippedWorldBaseDir } from './base.ts';
import { evaluateModel, type ModelEvaluation, predictWorld, takePerSplit } from './evaluate.ts';

export type { ModelEvaluation } from './evaluate.ts';

import { renderReport } from './report.ts';
import { writeWorld } from './write.ts';

export interface DemoOptions {
  quick: boolean;
  out: string;
  /** Write into an `out` that already holds files (default false: refused before any work). */
  overwrite?: boolean;
  /** Seed of the first fine-tuning run; the recipe's further seeds are seed+1, seed+2, ... */
  seed: number;
  /** The world base folder (default: the shipped small base). */
  base?: string;
  /** Replace the mode's recipe (tests use a tiny one). */
  recipe?: DemoRecipe;
  onPhase?: (phase: string, total: number) => void;
  onProgress?: (done: number, fields?: Record<string, number | string>) => void;
  onNote?: (text: string) => void;
}

/** The fine-tuning budget and evaluation size of one demo mode. */
export interface DemoRecipe {
  version: number;
  finetune: { steps: number; batchSize: number; lr: number; r: number; alpha: number };
  /** Fine-tuning seeds per loss (the spread in metrics.json). */
  seeds: number;
  /** Questions evaluated per split (the world has more; null = all). */
  evalPerSplit: number | null;
}

/** How long each mode takes on two cores, as measured (README.md, docs/demo.md); printed at the start. */
export const DEMO_EXPECTED_DURATION = { quick: 'about 2 minutes', full: 'about 4 minutes' } as const;

/**
 * Throws a ConfigError when `out` exists and is not an empty folder, unless `overwrite`: the demo
 * never replaces a user's files silently.
 */
export function checkDemoOutput(out: string, overwrite: boolean): void {
  if (!existsSync(out)) return;
  if (!statSync(out).isDirectory())
    throw new ConfigError(`${out} exists and is not a folder (choose another --out)`);
  if (overwrite || readdirSync(out).length === 0) return;
  throw new ConfigError(
    `${out} already exists (pass --overwrite to replace the demo output in it, or choose another --out)`,
  );
}

/** The recipe of each mode. */
export function demoRecipe(quick: boolean): DemoRecipe {
  // lr 3e-3: at 1e-2 every LoRA run on the world base collapses to one answer per relation (taught
  // 0.15, known 0.06 after 300 steps; docs/demo.md). Quick: 2 seeds, 100 questions per split; full: 3, all.
  return quick
    ? {
        version: 2,
        finetune: { steps: 300, batchSize: 32, lr: 3e-3, r: 16, alpha: 32 },
        seeds: 2,
        evalPerSplit: 100,
      }
    : {
        version: 2,
        finetune: { steps: 400, batchSize: 32, lr: 3e-3, r: 16, alpha: 32 },
        seeds: 3,
        evalPerSplit: null,
      };
}

/** The demo's default base: the shipped small world base. */
export function defaultDemoBase(): string {
  return shippedWorldBaseDir('small');
}

function progressOf(o: Pick<DemoOptions, 'onProgress'>): (e: TrainEvent) => void {
  return (e) => {
    if (e.type === 'step') o.onProgress?.(e.metrics.step, { loss: e.metrics.loss });
  };
}

/**
 * The fine-tuning set: the taught facts as question/answer pairs in the canonical question wording
 * (the one the evaluation asks). The world's finetune.jsonl also holds paraphrases and biographies;
 * a model this small memorises facts several times faster from one wording, which keeps the quick
 * demo within minutes. Written next to the world as finetune-qa.jsonl.
 */
export function worldFinetuneFile(worldDir: string): string {
  return writeTaughtQa(worldDir, true, 'finetune-qa.jsonl');
}

/**
 * The taught facts in their training paraphrases only (finetune.jsonl's QA records whose prompt
 * is not the canonical question): held-out data for choices made after fine-tuning on
 * finetune-qa.jsonl (ComPEFT's alpha). Written next to the world as finetune-paraphrases.jsonl.
 */
export function worldParaphraseFile(worldDir: string): string {
  return writeTaughtQa(worldDir, false, 'finetune-paraphrases.jsonl');
}

/** finetune.jsonl's QA records whose prompt is (or, with `canonical` false, is not) a canonical question, as `name`. */
function writeTaughtQa(worldDir: string, canonical: boolean, name: string): string {
  const prompts = new Set(readEvalRecords(join(worldDir, 'eval_taught.jsonl')).map((r) => r.prompt));
  const records = readFileSync(join(worldDir, 'finetune.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { prompt?: string })
    .filter((r) => r.prompt !== undefined && prompts.has(r.prompt) === canonical);
  const path = join(worldDir, name);
  writeTextAtomic(path, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return path;
}

function finetune(
  o: DemoOptions,
  recipe: DemoRecipe,
  baseDir: string,
  trainFile: string,
  loss: 'ce' | 'ua-clm',
  seed: number,
): string {
  const f = recipe.finetune;
  const runDir = join(o.out, seed === o.seed ? `finetune-${loss}` : `finetune-${loss}-seed${seed}`);
  const config = validateTrainConfig(
    {
      model: baseDir,
      data: { train: trainFile, max_length: 128 },
      method: { name: 'lora', r: f.r, lora_alpha: f.alpha, target_modules: 'all-linear' },
      loss,
      schedule: { name: 'cosine', warmup_steps: 20 },
      train: { steps: f.steps, batch_size: f.batchSize, lr: f.lr, seed },
      output_dir: runDir,
    },
    `demo fine-tuning recipe (${loss})`,
  );
  o.onPhase?.(`fine-tune LoRA + ${loss} (seed ${seed})`, f.steps);
  train(config, { overwrite: true, onEvent: progressOf(o) });
  return runDir;
}

export interface DemoResult {
  metrics: JsonObject;
  metricsPath: string;
  reportPath: string;
}

/** Mean and sample standard deviation (0 for one value). */
function meanStd(xs: readonly number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std };
}

/** Mean ± std over seeds of the headline numbers of each model's evaluations. */
function seedSummary(evals: readonly ModelEvaluation[]): JsonObject {
  const pick = (f: (e: ModelEvaluation) => number | null | undefined) => {
    const xs = evals.map(f).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    return xs.length === 0 ? null : meanStd(xs);
  };
  return {
    seeds: evals.length,
    accuracy_taught: pick((e) => e.accuracy.taught),
    accuracy_known: pick((e) => e.accuracy.known),
    accuracy_unknown: pick((e) => e.accuracy.unknown),
    ece: pick((e) => e.ece),
    auroc_mean_entropy: pick((e) => e.auroc.mean_entropy),
    auroc_log_perplexity: pick((e) => e.auroc.log_perplexity),
    ood_auroc_mean_entropy: pick((e) => e.ood_auroc.mean_entropy),
  } as JsonObject;
}

/** Run the demo end to end. */
export function runDemo(o: DemoOptions): DemoResult {
  const recipe = o.recipe ?? demoRecipe(o.quick);
  checkDemoOutput(o.out, o.overwrite ?? false);
  const base = resolveWorldBase(o.base ?? defaultDemoBase());
  mkdirSync(o.out, { recursive: true });
  const worldDir = join(o.out, 'world');
  o.onNote?.(
    `base: ${base.dir} (${base.manifest.recipe.size}, known-fact accuracy ${base.manifest.known_accuracy.toFixed(3)}); world -> ${worldDir}`,
  );
  writeWorld(base.world, worldDir);
  const trainFile = worldFinetuneFile(worldDir);
  const seeds = Array.from({ length: recipe.seeds }, (_, i) => o.seed + i);
  const runs: Record<'ce' | 'ua-clm', string[]> = { ce: [], 'ua-clm': [] };
  for (const seed of seeds)
    for (const loss of ['ce', 'ua-clm'] as const)
      runs[loss].push(finetune(o, recipe, base.dir, trainFile, loss, seed));
  const mixedRecords = takePerSplit(readEvalRecords(join(worldDir, 'eval_mixed.jsonl')), recipe.evalPerSplit);
  const oodRecords = takePerSplit(readEvalRecords(join(worldDir, 'eval_ood.jsonl')), recipe.evalPerSplit);
  const evaluations: Record<string, ModelEvaluation> = {};
  const perSeed: Record<string, ModelEvaluation[]> = { base: [], ce: [], 'ua-clm': [] };
  const predictions: Record<string, Prediction[]> = {};
  const models: { name: 'base' | 'ce' | 'ua-clm'; adapter: string | null; seed: number }[] = [
    { name: 'base', adapter: null, seed: o.seed },
    ...seeds.flatMap((seed, i) =>
      (['ce', 'ua-clm'] as const).map((name) => ({ name, adapter: join(runs[name][i]!, 'adapter'), seed })),
    ),
  ];
  for (const m of models) {
    const loaded = loadModel(base.dir);
    if (m.adapter) loadAdapter(loaded.model, m.adapter);
    const total = mixedRecords.length + oodRecords.length;
    o.onPhase?.(m.name === 'base' ? 'evaluate base' : `evaluate ${m.name} (seed ${m.seed})`, total);
    const { mixed, ood } = predictWorld(
      loaded.model,
      loaded.tokenizer!,
      loaded.eosTokenIds,
      { mixed: mixedRecords, ood: oodRecords },
      (d) => o.onProgress?.(d),
    );
    const evaluation = evaluateModel(mixed, ood);
    perSeed[m.name]!.push(evaluation);
    if (m.seed !== o.seed) continue;
    // The report's plots and the per-question files show the first seed.
    evaluations[m.name] = evaluation;
    predictions[m.name] = mixed;
    writeTextAtomic(
      join(o.out, `predictions-${m.name}.jsonl`),
      `${mixed.map((p) => JSON.stringify({ ...p, logprobs: undefined })).join('\n')}\n`,
    );
  }
  const metrics: JsonObject = {
    seed: o.seed,
    seeds,
    mode: o.quick ? 'quick' : 'full',
    recipe: recipe as unknown as JsonObject,
    world_base: {
      size: base.manifest.recipe.size,
      known_accuracy_all: base.manifest.known_accuracy,
      sha256: base.manifest.sha256['model.safetensors'] ?? null,
    },
    eval_questions: { mixed: mixedRecords.length, ood: oodRecords.length },
    ...(evaluations as unknown as JsonObject),
    over_seeds: Object.fromEntries(
      Object.entries(perSeed).map(([k, v]) => [k, seedSummary(v)]),
    ) as JsonObject,
  };
  const metricsPath = join(o.out, 'metrics.json');
  writeJsonAtomic(metricsPath, metrics);
  const info = backendInfo();
  const reportPath = join(o.out, 'report.html');
  const baseCurve = base.manifest.loss_curve;
  writeTextAtomic(
    reportPath,
    renderReport({
      title: `Attune demo (${o.quick ? 'quick' : 'full'}, seed ${o.seed})`,
      generated: new Date().toISOString(),
      backend: `${info.active} (${info.threads} threads)`,
      evaluations,
      lossCurves: {
        'pretrain (base)': baseCurve,
        'LoRA + ce': runLosses(runs.ce[0]!),
        'LoRA + ua-clm': runLosses(runs['ua-clm'][0]!),
      },
      reliability: Object.fromEntries(
        Object.entries(predictions).map(([k, ps]) => [
          k,
          reliabilityDiagram(
            ps.map((p) => p.confidence),
            ps.map((p) => p.correct),
            { bins: 10 },
          ).bins,
        ]),
      ),
      riskCoverage: Object.fromEntries(
        Object.entries(predictions).map(([k, ps]) => [
          k,
          riskCoverageCurve(
            ps.map((p) => p.scores.log_perplexity!),
            ps.map((p) => p.correct),
          ).map((pt) => [pt.coverage, pt.risk] as [number, number]),
        ]),
      ),
    }),
  );
  return { metrics, metricsPath, reportPath };
}

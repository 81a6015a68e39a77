/**
 * `attune demo`: the whole product on the benchmark world, with no download.
 *   1. generate the world (seeded);
 *   2. build or reuse the tiny base model: a byte-level tokenizer and a small Llama pretrained from
 *      random init on the world's corpus with the Trainer (cached by recipe hash);
 *   3. fine-tune it on the taught facts twice, with LoRA + `ce` and with LoRA + `ua-clm`;
 *   4. evaluate base, ce and ua-clm on the mixed questions (known + taught + unknown) and on the
 *      out-of-domain family: accuracy per split, ECE of exp(mean log-prob), AUROC of detecting wrong
 *      answers per score, AUROC of telling out-of-domain questions from in-domain ones;
 *   5. write metrics.json (deterministic for a seed: no timings) and report.html.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { backendInfo } from '../backend/index.ts';
import { ConfigError } from '../errors.ts';
import { type JsonObject, writeByteTokenizer, writeJsonAtomic, writeTextAtomic } from '../io/index.ts';
import { llamaConfigJson, loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { validateTrainConfig } from '../train/config.ts';
import { type TrainEvent, train } from '../train/trainer.ts';
import {
  auroc,
  type EvalRecord,
  type Prediction,
  predict,
  readEvalRecords,
  reliabilityDiagram,
  riskCoverageCurve,
  summarizePredictions,
} from '../uq/index.ts';
import { evaluateModel, type ModelEvaluation, predictWorld, takePerSplit } from './evaluate.ts';

export type { ModelEvaluation } from './evaluate.ts';

import { generateWorld } from './generate.ts';
import { renderReport } from './report.ts';
import { writeWorld } from './write.ts';

export interface DemoOptions {
  quick: boolean;
  out: string;
  /** Write into an `out` that already holds files (default false: refused before any work). */
  overwrite?: boolean;
  seed: number;
  /** Where the pretrained base model is cached (see docs/demo.md). */
  cacheDir: string;
  /** Replace the mode's recipe (tests use a tiny one). */
  recipe?: DemoRecipe;
  onPhase?: (phase: string, total: number) => void;
  onProgress?: (done: number, fields?: Record<string, number | string>) => void;
  onNote?: (text: string) => void;
}

/** Sizes and hyper-parameters of one demo mode. */
export interface DemoRecipe {
  version: number;
  world: { knownPeople: number; taughtPeople: number; unknownPeople: number; biographiesPerPerson: number };
  model: {
    hiddenSize: number;
    intermediateSize: number;
    numLayers: number;
    numHeads: number;
    numKvHeads: number;
  };
  pretrain: { steps: number; batchSize: number; lr: number; maxLength: number };
  finetune: { steps: number; batchSize: number; lr: number; r: number; alpha: number };
  /** Questions evaluated per split (the world has more; null = all). */
  evalPerSplit: number | null;
}

/**
 * How long each mode takes from a cold cache on two cores, as measured (README.md, docs/demo.md);
 * printed when the demo starts. A warm cache skips pretraining (about 40% of the quick mode).
 */
export const DEMO_EXPECTED_DURATION = { quick: 'about 3 minutes', full: 'about 14 minutes' } as const;

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

/** The recipe of each mode (changing it rebuilds the cached base model). */
export function demoRecipe(quick: boolean): DemoRecipe {
  return quick
    ? {
        version: 1,
        world: { knownPeople: 30, taughtPeople: 30, unknownPeople: 30, biographiesPerPerson: 3 },
        model: { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKvHeads: 2 },
        pretrain: { steps: 130, batchSize: 16, lr: 3e-3, maxLength: 384 },
        finetune: { steps: 210, batchSize: 32, lr: 1e-2, r: 16, alpha: 32 },
        evalPerSplit: 100,
      }
    : {
        version: 1,
        world: { knownPeople: 40, taughtPeople: 30, unknownPeople: 30, biographiesPerPerson: 4 },
        model: { hiddenSize: 128, intermediateSize: 384, numLayers: 4, numHeads: 4, numKvHeads: 2 },
        pretrain: { steps: 450, batchSize: 16, lr: 3e-3, maxLength: 384 },
        finetune: { steps: 400, batchSize: 32, lr: 1e-2, r: 16, alpha: 32 },
        evalPerSplit: null,
      };
}

function recipeHash(recipe: DemoRecipe, seed: number): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        recipe: {
          world: recipe.world,
          model: recipe.model,
          pretrain: recipe.pretrain,
          version: recipe.version,
        },
        seed,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}

/** Loss curve of a run: [step, loss] from its metrics.jsonl. */
function lossCurve(runDir: string): [number, number][] {
  return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { step: number; loss: number })
    .map((m) => [m.step, m.loss]);
}

/** Build (or reuse from the cache) the pretrained base model; returns its directory. */
/**
 * The demo's base model for `recipe` and `o.seed`: reused from `o.cacheDir` when a run of the same
 * recipe left it there, else pretrained on the world in `worldDir` (the Trainer, `method: full`).
 */
export function demoBaseModel(
  o: Pick<DemoOptions, 'seed' | 'cacheDir' | 'onNote' | 'onPhase' | 'onProgress'>,
  recipe: DemoRecipe,
  worldDir: string,
): { dir: string; cached: boolean; curve: [number, number][] } {
  const key = recipeHash(recipe, o.seed);
  const dir = join(o.cacheDir, `world-base-${key}`);
  if (existsSync(join(dir, 'model', 'model.safetensors'))) {
    o.onNote?.(`base model: reusing ${dir}`);
    return { dir: join(dir, 'model'), cached: true, curve: lossCurve(join(dir, 'run')) };
  }
  const work = `${dir}.tmp-${process.pid}`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  writeByteTokenizer(join(work, 'tokenizer'));
  const m = recipe.model;
  const configPath = join(work, 'config.json');
  writeJsonAtomic(configPath, {
    ...llamaConfigJson({
      vocabSize: 259,
      ...m,
      bosTokenId: 256,
      eosTokenId: 257,
      maxPositionEmbeddings: 512,
      tieWordEmbeddings: true,
    }),
    pad_token_id: 258,
  });
  const p = recipe.pretrain;
  const config = validateTrainConfig(
    {
      model: { config: configPath, tokenizer: join(work, 'tokenizer'), init_seed: o.seed },
      data: {
        train: join(worldDir, 'pretrain.jsonl'),
        train_on: 'all',
        max_length: p.maxLength,
        packing: true,
      },
      method: 'full',
      optimizer: { name: 'adamw', weight_decay: 0.01 },
      schedule: { name: 'cosine', warmup_steps: 20, min_lr_ratio: 0.1 },
      train: { steps: p.steps, batch_size: p.batchSize, lr: p.lr, seed: o.seed, log_every: 1 },
      output_dir: join(work, 'run'),
    },
    'demo pretraining recipe',
  );
  o.onPhase?.('pretrain base model', p.steps);
  train(config, { onEvent: progressOf(o) });
  renameSync(join(work, 'run', 'model'), join(work, 'model'));
  rmSync(dir, { recursive: true, force: true });
  renameSync(work, dir);
  return { dir: join(dir, 'model'), cached: false, curve: lossCurve(join(dir, 'run')) };
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
  const canonical = new Set(readEvalRecords(join(worldDir, 'eval_taught.jsonl')).map((r) => r.prompt));
  const records = readFileSync(join(worldDir, 'finetune.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { prompt?: string })
    .filter((r) => r.prompt !== undefined && canonical.has(r.prompt));
  const path = join(worldDir, 'finetune-qa.jsonl');
  writeTextAtomic(path, `${records.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return path;
}

function finetune(
  o: DemoOptions,
  recipe: DemoRecipe,
  baseDir: string,
  trainFile: string,
  loss: 'ce' | 'ua-clm',
): string {
  const f = recipe.finetune;
  const runDir = join(o.out, `finetune-${loss}`);
  const config = validateTrainConfig(
    {
      model: baseDir,
      data: { train: trainFile, max_length: 128 },
      method: { name: 'lora', r: f.r, lora_alpha: f.alpha, target_modules: 'all-linear' },
      loss,
      schedule: { name: 'cosine', warmup_steps: 20 },
      train: { steps: f.steps, batch_size: f.batchSize, lr: f.lr, seed: o.seed },
      output_dir: runDir,
    },
    `demo fine-tuning recipe (${loss})`,
  );
  o.onPhase?.(`fine-tune LoRA + ${loss}`, f.steps);
  train(config, { overwrite: true, onEvent: progressOf(o) });
  return runDir;
}

export interface DemoResult {
  metrics: JsonObject;
  metricsPath: string;
  reportPath: string;
}

/** Run the demo end to end. */
export function runDemo(o: DemoOptions): DemoResult {
  const recipe = o.recipe ?? demoRecipe(o.quick);
  checkDemoOutput(o.out, o.overwrite ?? false);
  mkdirSync(o.out, { recursive: true });
  const worldDir = join(o.out, 'world');
  o.onNote?.(`world: seed ${o.seed} -> ${worldDir}`);
  writeWorld(generateWorld({ seed: o.seed, ...recipe.world }), worldDir);
  const base = demoBaseModel(o, recipe, worldDir);
  const trainFile = worldFinetuneFile(worldDir);
  const runs = {
    ce: finetune(o, recipe, base.dir, trainFile, 'ce'),
    'ua-clm': finetune(o, recipe, base.dir, trainFile, 'ua-clm'),
  };
  const mixedRecords = takePerSplit(readEvalRecords(join(worldDir, 'eval_mixed.jsonl')), recipe.evalPerSplit);
  const oodRecords = takePerSplit(readEvalRecords(join(worldDir, 'eval_ood.jsonl')), recipe.evalPerSplit);
  const evaluations: Record<string, ModelEvaluation> = {};
  const predictions: Record<string, Prediction[]> = {};
  for (const name of ['base', 'ce', 'ua-clm'] as const) {
    const loaded = loadModel(base.dir);
    if (name !== 'base') loadAdapter(loaded.model, join(runs[name], 'adapter'));
    const total = mixedRecords.length + oodRecords.length;
    o.onPhase?.(`evaluate ${name}`, total);
    const { mixed, ood } = predictWorld(
      loaded.model,
      loaded.tokenizer!,
      loaded.eosTokenIds,
      { mixed: mixedRecords, ood: oodRecords },
      (d) => o.onProgress?.(d),
    );
    evaluations[name] = evaluateModel(mixed, ood);
    predictions[name] = mixed;
    writeTextAtomic(
      join(o.out, `predictions-${name}.jsonl`),
      `${mixed.map((p) => JSON.stringify({ ...p, logprobs: undefined })).join('\n')}\n`,
    );
  }
  const metrics: JsonObject = {
    seed: o.seed,
    mode: o.quick ? 'quick' : 'full',
    recipe: recipe as unknown as JsonObject,
    eval_questions: { mixed: mixedRecords.length, ood: oodRecords.length },
    ...(evaluations as unknown as JsonObject),
  };
  const metricsPath = join(o.out, 'metrics.json');
  writeJsonAtomic(metricsPath, metrics);
  const info = backendInfo();
  const reportPath = join(o.out, 'report.html');
  writeTextAtomic(
    reportPath,
    renderReport({
      title: `Attune demo (${o.quick ? 'quick' : 'full'}, seed ${o.seed})`,
      generated: new Date().toISOString(),
      backend: `${info.active} (${info.threads} threads)`,
      evaluations,
      lossCurves: {
        'pretrain (base)': base.curve,
        'LoRA + ce': lossCurve(runs.ce),
        'LoRA + ua-clm': lossCurve(runs['ua-clm']),
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

/**
 * One trial on disk: `<out>/<id>/trial.yaml` (the full training config: the base with the trial's
 * fields, seed and output_dir), `run/` (the trainer's run directory: metrics.jsonl, checkpoints/,
 * adapter/) and `result.json` (written atomically last: the trial is done exactly when it exists).
 * `attune train <out>/<id>/trial.yaml` reruns a trial by hand. A trial whose run/ holds a checkpoint
 * resumes from it (the trainer's exact resume); one without starts over. With the sweep's
 * `eval_world`, the trained model also answers that world eval file (world-metrics.ts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { readYamlMapping, setPath } from '../config/yaml.ts';
import { AttuneError, ConfigError } from '../errors.ts';
import { writeTextAtomic } from '../io/atomic.ts';
import { latestCheckpoint } from '../train/checkpoint.ts';
import {
  loadTrainConfig,
  resolveConfigPaths,
  type TrainConfig,
  validateTrainConfig,
} from '../train/config.ts';
import { trainAsync } from '../train/trainer.ts';
import type { TrialSpec } from './space.ts';
import { worldMetrics } from './world-metrics.ts';

/** What a trial job carries of the sweep's eval_world: its files and the base's known-fact accuracy. */
export interface WorldEvalSpec {
  evalWorld?: string[];
  /** The base's known accuracy on evalWorld (base-known.ts), computed once by the sweep; null: none. */
  baseKnown?: number | null;
}

/** What a finished trial measured. */
export interface TrialMetrics {
  /** Loss on the base config's data.eval after the last step. */
  eval_loss: number;
  /** Training loss of the last step. */
  final_loss: number;
  trainable_params: number;
  steps: number;
  /** With the sweep's eval_world: exact-match accuracy over its questions, and per split (world-metrics.ts). */
  [world: `accuracy${string}`]: number;
  /** With eval_world: known accuracy over the base's (when the base answered some known question right). */
  retention?: number;
  /** With eval_world: the confidence's calibration, and each score's wrong-answer and OOD AUROC (when defined). */
  ece?: number;
  brier?: number;
  [auroc: `wrong_auroc_${string}`]: number;
  [ood: `ood_auroc_${string}`]: number;
}

/** result.json of a finished trial. */
export interface TrialResult {
  id: string;
  params: Record<string, unknown>;
  seed: number | null;
  status: 'done';
  metrics: TrialMetrics;
  /** The step this (last) run started from: 0 for a fresh start. */
  resumed_from_step: number;
  /** Wall time of the last run (not a metric: it depends on where the trial ran). */
  seconds: number;
}

/** Where a trial is on disk. */
export type TrialState = 'done' | 'interrupted' | 'pending';

/** The paths of trial `id` under `out`. */
export function trialPaths(out: string, id: string) {
  const dir = join(out, id);
  return { dir, config: join(dir, 'trial.yaml'), run: join(dir, 'run'), result: join(dir, 'result.json') };
}

/** The base training config as a mapping, validated once (errors carry its lines). */
export interface BaseConfig {
  path: string;
  raw: Record<string, unknown>;
}

/** Read and check the base config: valid on its own and with data.eval (every trial records eval_loss). */
export function loadBaseConfig(path: string): BaseConfig {
  const source = readYamlMapping(path, 'the base training config');
  const raw = structuredClone(source.raw);
  // the sweep sets each trial's output_dir, so the base may leave it out
  raw.output_dir ??= 'unused-by-sweeps';
  const config = validateTrainConfig(raw, path, { source: { ...source, raw }, onNote: () => {} });
  if (config.data.eval === null)
    throw new ConfigError(
      `${path}: data.eval: a sweep needs an eval file (every trial records its eval_loss on it), found none`,
    );
  return { path, raw: source.raw };
}

function describeParams(params: Record<string, unknown>, seed: number | null): string {
  const parts = Object.entries(params).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  if (seed !== null) parts.push(`seed=${seed}`);
  return parts.join(', ');
}

/** The trial's training config: the base with its fields and seed, output_dir its own run/. */
export function trialConfig(base: BaseConfig, trial: TrialSpec, out: string, sweepPath: string): TrainConfig {
  const raw = structuredClone(base.raw);
  for (const [field, value] of Object.entries(trial.params)) setPath(raw, field, value);
  if (trial.seed !== null) setPath(raw, 'train.seed', trial.seed);
  raw.output_dir = trialPaths(out, trial.id).run;
  const where = `${sweepPath}: trial ${trial.id} (${describeParams(trial.params, trial.seed)}) of base ${base.path}`;
  const config = validateTrainConfig(raw, where, { onNote: () => {} });
  return resolveConfigPaths(config, dirname(resolve(base.path)));
}

/** The trial's state on disk; a result.json of another trial is an error. */
export function trialState(out: string, id: string): TrialState {
  const p = trialPaths(out, id);
  if (existsSync(p.result)) {
    readTrialResult(out, id);
    return 'done';
  }
  return latestCheckpoint(p.run) ? 'interrupted' : 'pending';
}

/** Read result.json of a finished trial (validated: its id and metrics). */
export function readTrialResult(out: string, id: string): TrialResult {
  const path = trialPaths(out, id).result;
  let r: TrialResult;
  try {
    r = JSON.parse(readFileSync(path, 'utf8')) as TrialResult;
  } catch (error) {
    throw new ConfigError(
      `${path}: cannot read the trial result (${(error as Error).message}); delete it to rerun the trial`,
    );
  }
  if (r?.id !== id || r.status !== 'done' || typeof r.metrics?.eval_loss !== 'number')
    throw new ConfigError(
      `${path}: expected the result of trial ${id}, found ${JSON.stringify(r).slice(0, 80)}; delete it to rerun the trial`,
    );
  return r;
}

/**
 * Write trial.yaml (before any run). An existing one must say the same: a different text means the
 * base config changed since the trial ran, and reusing its folder would mix two experiments.
 */
export function writeTrialConfig(out: string, id: string, config: TrainConfig): void {
  const p = trialPaths(out, id);
  const text = toYaml(config);
  if (existsSync(p.config)) {
    if (readFileSync(p.config, 'utf8') === text) return;
    throw new ConfigError(
      `${p.config}: differs from this sweep's trial ${id} (was the base config changed?): use another out folder, or delete ${p.dir} to rerun it`,
    );
  }
  mkdirSync(p.dir, { recursive: true });
  writeTextAtomic(p.config, text);
}

/** Last metrics.jsonl line of `step` (the final eval_loss is logged with the last step). */
function finalLine(runDir: string, step: number): Record<string, number> {
  const path = join(runDir, 'metrics.jsonl');
  const line = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, number>)
    .filter((m) => m.step === step)
    .at(-1);
  if (!line || typeof line.eval_loss !== 'number')
    throw new AttuneError(`${path}: no eval_loss logged at the last step ${step}`);
  return line;
}

/**
 * Run trial `id` under `out` in this process from its trial.yaml: resume from its last checkpoint,
 * or start over, then write result.json. Uses this process's kernel threads (executors start one
 * process per trial with ATTUNE_THREADS = threads_per_trial).
 */
export async function runTrial(
  out: string,
  spec: TrialSpec & WorldEvalSpec,
  options: { signal?: AbortSignal } = {},
): Promise<TrialResult> {
  const p = trialPaths(out, spec.id);
  const config = loadTrainConfig(p.config, [], { onNote: () => {} });
  const resume = latestCheckpoint(p.run) !== null;
  const started = performance.now();
  let startStep = 0;
  const r = await trainAsync(config, {
    resume,
    overwrite: !resume,
    signal: options.signal,
    onEvent: (e) => {
      if (e.type === 'start') startStep = e.startStep;
    },
  });
  const last = finalLine(p.run, r.steps);
  const result: TrialResult = {
    id: spec.id,
    params: spec.params,
    seed: spec.seed,
    status: 'done',
    metrics: {
      eval_loss: last.eval_loss!,
      final_loss: last.loss!,
      trainable_params: r.adapter.namedTrainableParameters().reduce((s, [, q]) => s + q.size, 0),
      steps: r.steps,
      ...(spec.evalWorld ? worldMetrics(r.model, config, spec.evalWorld, spec.baseKnown ?? null) : {}),
    },
    resumed_from_step: startStep,
    seconds: (performance.now() - started) / 1000,
  };
  writeTextAtomic(p.result, `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

/**
 * `attune bench methods`: every fine-tuning method (and the (method, loss) pairs the headlines
 * need) fine-tuned on the world's taught facts from the same base, with the same data, step budget
 * and seeds, then evaluated on the same questions. Per (method, loss): mean and std over seeds of
 * taught accuracy, retention (known-fact accuracy after / before), paraphrase accuracy,
 * wrong-answer AUROC and PRR per score, out-of-domain AUROC per score, ECE and Brier, plus the
 * trainable parameters, adapter bytes, seconds per step and peak RSS. The methods come from the
 * tuner registry and the losses from the loss registry, so a method added later shows up with no
 * change here. Each finished run is kept under `out/runs/<key>/result.json` and reused by a rerun
 * with the same settings (units.ts runs those parts as jobs of the sweep executors).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { backendInfo } from '../backend/index.ts';
import { ConfigError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import { writeJsonAtomic } from '../io/index.ts';
import { type CausalLM, loadModel } from '../models/index.ts';
import { fineTuningMethodNames, loadAdapter, tuners } from '../peft/index.ts';
import { validateTrainConfig } from '../train/config.ts';
import { losses } from '../train/losses/index.ts';
import { train } from '../train/trainer.ts';
import { type EvalRecord, type Prediction, readEvalRecords, summarizePredictions } from '../uq/index.ts';
import { resolveWorldBase } from '../world/base.ts';
import { demoRecipe, worldFinetuneFile } from '../world/demo.ts';
import {
  accuracyOf,
  knownAccuracy,
  oodAurocs,
  paraphraseQuestions,
  predictWorld,
  retentionOf,
  takePerSplit,
  writeWorld,
} from '../world/index.ts';
import { bytesOf, type DerivedMethod, derivedMethods, derivedRowMethod } from './derived.ts';
import {
  type BenchExperiment,
  defaultExperiments,
  type ExperimentContext,
  experiment,
  experiments,
  type RunCost,
} from './experiment.ts';
import './experiments/index.ts';
import { cpuName } from './envelope.ts';
import { peakRssMb } from './train.ts';

/** The step budget and hyper-parameters every method gets. */
export interface MethodsBudget {
  steps: number;
  batchSize: number;
  /** Peak learning rate of adapter methods. */
  lr: number;
  /** Peak learning rate of methods that train every weight (their tuner writes a merged model). */
  fullLr: number;
  warmupSteps: number;
  maxLength: number;
  /** Questions per split (null: all). */
  evalPerSplit: number | null;
}

/**
 * One (method, loss) to run. `loss` is a registered loss name, optionally with options in
 * parentheses, `ua-clm(lambda=0.3,probability=max)` (values read as YAML scalars); the text is the
 * row's name.
 */
export interface MethodSpec {
  method: string;
  loss: string;
  /** For a tuner's named variant (`method` is the variant's name): the tuner and its option overrides. */
  tuner?: string;
  options?: Record<string, unknown>;
}

/** The spec of `name` (a tuner, or a variant a tuner declares) with `loss`. */
export function methodSpec(name: string, loss: string): MethodSpec {
  if (!tuners.has(name))
    for (const t of tuners.list())
      if (t.variants?.[name]) return { method: name, loss, tuner: t.name, options: t.variants[name] };
  tuners.get(name);
  return { method: name, loss };
}

/** The training config's `method:` of a spec: `{name: tuner, ...variant options}`. */
export function methodChoice(spec: MethodSpec): Record<string, unknown> {
  return { name: spec.tuner ?? spec.method, ...spec.options };
}

/** `{name, ...options}` of a loss spec `name` or `name(key=value,...)`, validated by the loss registry. */
export function lossChoice(spec: string): { name: string } & Record<string, unknown> {
  const m = /^([^()]+?)(?:\((.*)\))?$/.exec(spec.trim());
  if (!m) throw new ConfigError(`--losses: '${spec}' is not a loss name or name(key=value,...)`);
  const options: Record<string, unknown> = {};
  for (const pair of (m[2] ?? '').split(',').filter((x) => x.trim() !== '')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--losses: '${pair}' in '${spec}' is not key=value`);
    options[pair.slice(0, eq).trim()] = parseYaml(pair.slice(eq + 1).trim());
  }
  return losses.parse({ name: m[1]!.trim(), ...options }, `loss '${spec}'`);
}

/** Split a comma-separated list of specs, keeping commas inside parentheses: `ce,ua-clm(lambda=1,eps=1e-6)`. */
export function splitSpecs(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth = Math.max(0, depth - 1);
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter(Boolean);
}

/** A folder-safe form of a spec (`ua-clm(lambda=0.3)` -> `ua-clm_lambda_0.3_`). */
export function slug(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]+/g, '_');
}

export interface MethodsBenchOptions {
  /** The base model directory every method starts from. */
  base: string;
  /** The world folder (eval_*.jsonl and the fine-tuning file). */
  worldDir: string;
  /** The fine-tuning JSONL (the taught facts). */
  trainFile: string;
  /** Where runs are kept and reused. */
  out: string;
  specs: MethodSpec[];
  seeds: number[];
  budget: MethodsBudget;
  /** Bench experiments to run by name (default: those registered byDefault; [] for none). */
  experiments?: readonly string[];
  /** The quick budget (experiments scale their own extra work down with it). */
  quick?: boolean;
  /** The score whose AUROCs are the top-level `wrong_auroc` / `ood_auroc` (default mean_entropy). */
  defaultScore?: string;
  /** The kernel threads every run computed with, for the envelope (default: this process's). */
  threads?: number;
  onNote?: (text: string) => void;
  onPhase?: (phase: string, total: number) => void;
  onProgress?: (done: number) => void;
}

/** Mean and sample standard deviation over seeds (null when no seed gave a value). */
export interface Spread {
  mean: number | null;
  std: number | null;
  n: number;
}

/** What one run (method, loss, seed) measured. */
export interface RunResult {
  method: string;
  loss: string;
  seed: number;
  taught_accuracy: number | null;
  known_accuracy: number | null;
  paraphrase_accuracy: number | null;
  ece: number | null;
  brier: number | null;
  /** Per score: AUROC and PRR of detecting wrong answers on the mixed set, AUROC of OOD detection. */
  scores: Record<string, { wrong_auroc: number | null; prr: number | null; ood_auroc: number | null }>;
  trainable_params: number;
  adapter_bytes: number;
  step_s: number;
  peak_rss_mb: number | null;
  /** An experiment's own measurements (an abstention rate, an AUC-DF ...), by name. */
  extra?: Record<string, number | null>;
}

/** One row of the bench: a (method, loss) over its seeds. */
export interface MethodRow {
  method: string;
  loss: string;
  seeds: number;
  taught_accuracy: Spread;
  retention: Spread;
  paraphrase_accuracy: Spread;
  wrong_auroc: Spread;
  prr: Spread;
  ood_auroc: Spread;
  ece: Spread;
  brier: Spread;
  scores: Record<string, { wrong_auroc: Spread; prr: Spread; ood_auroc: Spread }>;
  trainable_params: number;
  adapter_bytes: number;
  step_s: number;
  peak_rss_mb: number | null;
  /** Spread of each of the runs' `extra` measurements (experiment rows). */
  extra?: Record<string, Spread>;
}

/** A headline: a paper's claim, the comparison that tests it and whether it reproduced. */
export interface Headline {
  paper: string;
  claim: string;
  metric: string;
  baseline: { method: string; loss: string; value: Spread };
  treatment: { method: string; loss: string; value: Spread };
  /** treatment - baseline, and whether it has the claimed sign beyond one standard error. */
  difference: number | null;
  reproduced: boolean | null;
}

export interface MethodsBenchResult {
  bench: 'methods';
  backend: 'js' | 'native';
  threads: number;
  cpu: string;
  base: { dir: string; known_accuracy: number | null };
  budget: MethodsBudget;
  /** The bench experiments that ran (their rows are in `results`). */
  experiments: string[];
  default_score: string;
  results: MethodRow[];
  headlines: Headline[];
}

/** Mean and sample std (n - 1) of the non-null values. */
export function spread(values: readonly (number | null)[]): Spread {
  const xs = values.filter((v): v is number => v !== null && Number.isFinite(v));
  if (xs.length === 0) return { mean: null, std: null, n: 0 };
  const mean = xs.reduce((s, v) => s + v, 0) / xs.length;
  const std = xs.length > 1 ? Math.sqrt(xs.reduce((s, v) => s + (v - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, std, n: xs.length };
}

/**
 * The default specs: every registered fine-tuning method (fineTuningMethodNames) and every named variant it declares with `ce`, plus every
 * (method, loss) a headline needs (today: lora with ua-clm). `methods` / `lossNames` (tuner or
 * variant names) replace the defaults (every pair of them).
 */
export function defaultSpecs(methods?: readonly string[], lossNames?: readonly string[]): MethodSpec[] {
  for (const m of methods ?? []) methodSpec(m, 'ce');
  for (const l of lossNames ?? []) lossChoice(l);
  // the fine-tuning methods proper: a tuner fitted on its own objective (uq_head) trains no LM
  const all = fineTuningMethodNames().flatMap((n) => [n, ...Object.keys(tuners.get(n).variants ?? {})]);
  if (methods || lossNames) {
    const ms = methods ?? all;
    const ls = lossNames ?? ['ce'];
    return ms.flatMap((method) => ls.map((loss) => methodSpec(method, loss)));
  }
  const specs = all.map((method) => methodSpec(method, 'ce'));
  // the method rows' headlines only: an experiment builds its own rows (and reaches a method row
  // through ctx.methodRun), so its headline pairs are not method specs
  for (const h of HEADLINE_PAIRS) {
    for (const s of [h.baseline, h.treatment])
      if (!specs.some((x) => x.method === s.method && x.loss === s.loss) && tuners.has(s.method))
        specs.push(s);
  }
  return specs;
}

/** A metric a headline can test: a row column, or an experiment's `extra.<name>`. */
export type HeadlineMetric =
  | keyof Pick<
      MethodRow,
      'wrong_auroc' | 'ood_auroc' | 'taught_accuracy' | 'paraphrase_accuracy' | 'retention' | 'ece'
    >
  | `extra.${string}`;

/** A headline comparison: which rows and metric test a paper's claim, and what counts as reproduced. */
export interface HeadlinePair {
  paper: string;
  claim: string;
  metric: HeadlineMetric;
  /** Which direction the claim predicts (treatment minus baseline). */
  sign: 1 | -1;
  /** 'better': the difference must beat one standard error; 'not-worse': within -tolerance. */
  kind: 'better' | 'not-worse';
  tolerance?: number;
  baseline: MethodSpec;
  treatment: MethodSpec;
}

/** The headline comparisons of the method rows (experiments register theirs with themselves). */
export const HEADLINE_PAIRS: HeadlinePair[] = [
  {
    paper: 'Enhancing Trust in LLMs with Uncertainty-Aware Fine-Tuning',
    claim: 'UA-CLM improves hallucination (wrong-answer) detection over CE',
    metric: 'wrong_auroc',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'lora', loss: 'ua-clm' },
  },
  {
    paper: 'Enhancing Trust in LLMs with Uncertainty-Aware Fine-Tuning',
    claim: 'UA-CLM improves out-of-domain prompt detection over CE',
    metric: 'ood_auroc',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'lora', loss: 'ua-clm' },
  },
  {
    paper: 'Enhancing Trust in LLMs with Uncertainty-Aware Fine-Tuning',
    claim: 'UA-CLM does not compromise accuracy on the taught facts (within 0.05)',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'not-worse',
    tolerance: 0.05,
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'lora', loss: 'ua-clm' },
  },
  {
    paper:
      'Model soups: averaging weights of multiple fine-tuned models improves accuracy without increasing inference time',
    claim: 'A uniform soup of fine-tunes from different seeds is more accurate than its ingredients',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'better',
    baseline: { method: 'full', loss: 'ce' },
    treatment: { method: 'soup(full)', loss: 'ce' },
  },
  {
    paper:
      'ComPEFT: Compression for Communicating Parameter Efficient Updates via Sparsification and Quantization',
    claim: 'A ComPEFT-compressed adapter (alpha chosen on held-out data) keeps its accuracy (within 0.05)',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'not-worse',
    tolerance: 0.05,
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'compeft(lora)', loss: 'ce' },
  },
  {
    paper: 'CorDA: Context-Oriented Decomposition Adaptation of Large Language Models',
    claim: 'CorDA instruction-previewed adaptation (IPM) learns the task better than LoRA',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'corda-ipm', loss: 'ce' },
  },
  {
    paper: 'CorDA: Context-Oriented Decomposition Adaptation of Large Language Models',
    claim: 'CorDA knowledge-preserved adaptation (KPM) forgets less than LoRA',
    metric: 'retention',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'corda-kpm', loss: 'ce' },
  },
  {
    paper: 'KaSA: Knowledge-Aware Singular-Value Adaptation of Large Language Models',
    claim: 'KaSA learns the task better than LoRA',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'kasa', loss: 'ce' },
  },
  {
    paper:
      'Initialization using Update Approximation is a Silver Bullet for Extremely Efficient Low-Rank Fine-Tuning',
    claim: 'LoRA-SB comes within 0.05 of full fine-tuning with a fraction of the trainable parameters',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'not-worse',
    tolerance: 0.05,
    baseline: { method: 'full', loss: 'ce' },
    treatment: { method: 'lora_sb', loss: 'ce' },
  },
  {
    paper: 'HFT: Half Fine-Tuning for Large Language Models',
    claim: 'Half fine-tuning forgets less than full fine-tuning',
    metric: 'retention',
    sign: 1,
    kind: 'better',
    baseline: { method: 'full', loss: 'ce' },
    treatment: { method: 'hft', loss: 'ce' },
  },
  {
    paper: 'Scaling Sparse Fine-Tuning to Large Language Models',
    claim: 'Sparse fine-tuning (SpIEL) learns the task better than LoRA',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'better',
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'sparse_ft', loss: 'ce' },
  },
  {
    paper: 'S2FT: Efficient, Scalable and Generalizable LLM Fine-tuning by Structured Sparsity',
    claim: 'Structured sparse fine-tuning (S2FT) forgets less than full fine-tuning',
    metric: 'retention',
    sign: 1,
    kind: 'better',
    baseline: { method: 'full', loss: 'ce' },
    treatment: { method: 's2ft', loss: 'ce' },
  },
  {
    paper: 'Composable Sparse Fine-Tuning for Cross-Lingual Transfer',
    claim:
      'Lottery-ticket sparse fine-tuning forgets less than full fine-tuning (sparse deltas interfere less)',
    metric: 'retention',
    sign: 1,
    kind: 'better',
    baseline: { method: 'full', loss: 'ce' },
    treatment: { method: 'lt_sft', loss: 'ce' },
  },
  {
    paper: 'DSEE: Dually Sparsity-embedded Efficient Tuning of Pre-trained Language Models',
    claim: 'DSEE (LoRA + sparse residual) learns the task at least as well as LoRA (within 0.05)',
    metric: 'taught_accuracy',
    sign: 1,
    kind: 'not-worse',
    tolerance: 0.05,
    baseline: { method: 'lora', loss: 'ce' },
    treatment: { method: 'dsee', loss: 'ce' },
  },
];

/** The method rows' headline pairs followed by every registered experiment's. */
export function allHeadlinePairs(): HeadlinePair[] {
  return [...HEADLINE_PAIRS, ...experiments().flatMap((e) => e.headlines ?? [])];
}

/** The spread of `metric` in a row (an `extra.<name>` the row lacks: no value). */
export function metricOf(row: MethodRow, metric: HeadlineMetric): Spread {
  if (metric.startsWith('extra.'))
    return row.extra?.[metric.slice('extra.'.length)] ?? { mean: null, std: null, n: 0 };
  return row[metric as Exclude<HeadlineMetric, `extra.${string}`>];
}

/** Evaluate each headline on the rows (null when a side is missing or has no value). */
export function headlines(
  rows: readonly MethodRow[],
  pairs: readonly HeadlinePair[] = allHeadlinePairs(),
): Headline[] {
  const find = (s: MethodSpec) => rows.find((r) => r.method === s.method && r.loss === s.loss);
  return pairs.flatMap((h) => {
    const b = find(h.baseline);
    const t = find(h.treatment);
    if (!b || !t) return [];
    const bv = metricOf(b, h.metric);
    const tv = metricOf(t, h.metric);
    let difference: number | null = null;
    let reproduced: boolean | null = null;
    if (bv.mean !== null && tv.mean !== null) {
      difference = tv.mean - bv.mean;
    }
    // one seed cannot tell an effect from noise: the verdict needs a spread on both sides
    if (difference !== null && bv.n >= 2 && tv.n >= 2) {
      const se = Math.sqrt((bv.std ?? 0) ** 2 / Math.max(1, bv.n) + (tv.std ?? 0) ** 2 / Math.max(1, tv.n));
      reproduced =
        h.kind === 'better' ? h.sign * difference > se : h.sign * difference >= -(h.tolerance ?? 0);
    }
    return [
      {
        paper: h.paper,
        claim: h.claim,
        metric: h.metric,
        baseline: { ...h.baseline, value: bv },
        treatment: { ...h.treatment, value: tv },
        difference,
        reproduced,
      },
    ];
  });
}

function hashOf(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 12);
}

/** A content hash of a folder's regular files (names and bytes), for run keys. */
function folderHash(dir: string): string {
  const h = createHash('sha256');
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (!statSync(p).isFile()) continue;
    h.update(name);
    h.update(readFileSync(p));
  }
  return h.digest('hex').slice(0, 12);
}

export interface WorldQuestions {
  mixed: EvalRecord[];
  ood: EvalRecord[];
  /** The taught questions of `mixed` in their paraphrased wording (the record's `paraphrase`). */
  paraphrase: EvalRecord[];
}

/** The bench's questions of the world in `worldDir` (`perSplit` per split; experiments evaluate on them too). */
export function questionsOf(worldDir: string, perSplit: number | null): WorldQuestions {
  const mixed = takePerSplit(readEvalRecords(join(worldDir, 'eval_mixed.jsonl')), perSplit);
  return {
    mixed,
    ood: takePerSplit(readEvalRecords(join(worldDir, 'eval_ood.jsonl')), perSplit),
    paraphrase: paraphraseQuestions(mixed),
  };
}

/** The per-run measurements from the graded predictions. */
export function measureRun(
  spec: MethodSpec & { seed: number },
  mixed: readonly Prediction[],
  ood: readonly Prediction[],
  paraphrase: readonly Prediction[],
  cost: Pick<RunResult, 'trainable_params' | 'adapter_bytes' | 'step_s' | 'peak_rss_mb'>,
): RunResult {
  const summary = summarizePredictions(mixed);
  const ood_ = oodAurocs(mixed, ood);
  const scores: RunResult['scores'] = {};
  for (const [name, s] of Object.entries(summary.scores))
    scores[name] = { wrong_auroc: s.auroc, prr: s.prr, ood_auroc: ood_[name] ?? null };
  return {
    method: spec.method,
    loss: spec.loss,
    seed: spec.seed,
    taught_accuracy: accuracyOf(mixed, 'taught'),
    known_accuracy: accuracyOf(mixed, 'known'),
    paraphrase_accuracy: accuracyOf(paraphrase),
    ece: summary.confidence.ece,
    brier: summary.confidence.brier,
    scores,
    ...cost,
  };
}

/** Aggregate the runs of one (method, loss) into a row; retention is known accuracy / the base's. */
export function aggregateRuns(
  runs: readonly RunResult[],
  baseKnown: number | null,
  defaultScore: string,
): MethodRow {
  const first = runs[0]!;
  const scoreNames = Object.keys(first.scores);
  const perScore: MethodRow['scores'] = {};
  for (const name of scoreNames) {
    perScore[name] = {
      wrong_auroc: spread(runs.map((r) => r.scores[name]?.wrong_auroc ?? null)),
      prr: spread(runs.map((r) => r.scores[name]?.prr ?? null)),
      ood_auroc: spread(runs.map((r) => r.scores[name]?.ood_auroc ?? null)),
    };
  }
  const chosen = perScore[defaultScore];
  const empty: Spread = { mean: null, std: null, n: 0 };
  const extraNames = [...new Set(runs.flatMap((r) => Object.keys(r.extra ?? {})))];
  const extra: Record<string, Spread> = {};
  for (const name of extraNames) extra[name] = spread(runs.map((r) => r.extra?.[name] ?? null));
  return {
    method: first.method,
    loss: first.loss,
    seeds: runs.length,
    taught_accuracy: spread(runs.map((r) => r.taught_accuracy)),
    retention: spread(runs.map((r) => retentionOf(r.known_accuracy, baseKnown))),
    paraphrase_accuracy: spread(runs.map((r) => r.paraphrase_accuracy)),
    wrong_auroc: chosen?.wrong_auroc ?? empty,
    prr: chosen?.prr ?? empty,
    ood_auroc: chosen?.ood_auroc ?? empty,
    ece: spread(runs.map((r) => r.ece)),
    brier: spread(runs.map((r) => r.brier)),
    scores: perScore,
    trainable_params: first.trainable_params,
    adapter_bytes: first.adapter_bytes,
    step_s: spread(runs.map((r) => r.step_s)).mean ?? 0,
    peak_rss_mb: runs.reduce<number | null>(
      (m, r) => (r.peak_rss_mb === null ? m : Math.max(m ?? 0, r.peak_rss_mb)),
      null,
    ),
    ...(extraNames.length > 0 ? { extra } : {}),
  };
}

/** The folder of one (method, loss, seed) run under the bench's output. */
export function runFolder(o: MethodsBenchOptions, spec: MethodSpec, seed: number, key: string): string {
  return join(o.out, 'runs', `${slug(spec.method)}-${slug(spec.loss)}-seed${seed}-${key}`);
}

/** Evaluate the model in `modelDir` (+ `adapterDir`) on the bench questions as `spec`'s run of `seed`. */
function evaluateRun(
  o: MethodsBenchOptions,
  spec: MethodSpec,
  seed: number,
  questions: WorldQuestions,
  model: { modelDir: string; adapterDir: string | null },
  cost: Pick<RunResult, 'trainable_params' | 'adapter_bytes' | 'step_s' | 'peak_rss_mb'>,
): RunResult {
  const loaded = loadModel(model.modelDir);
  if (model.adapterDir) loadAdapter(loaded.model, model.adapterDir);
  const total = questions.mixed.length + questions.ood.length + questions.paraphrase.length;
  o.onPhase?.(`${spec.method} + ${spec.loss}, seed ${seed}: evaluate`, total);
  return measureModelRun({ ...spec, seed }, questions, loaded, cost, o.onProgress);
}

/**
 * A run's measurements of any model (a fused one too) on the bench questions, as `spec`'s run:
 * greedy answers to the mixed, out-of-domain and paraphrased questions, graded and scored.
 */
export function measureModelRun(
  spec: MethodSpec & { seed: number },
  questions: WorldQuestions,
  loaded: { model: CausalLM; tokenizer: Tokenizer | null; eosTokenIds: readonly number[] },
  cost: RunCost,
  onProgress?: (done: number) => void,
): RunResult {
  const { mixed, ood } = predictWorld(
    loaded.model,
    loaded.tokenizer!,
    loaded.eosTokenIds,
    questions,
    onProgress,
  );
  const done = questions.mixed.length + questions.ood.length;
  const paraphrase = predictWorld(
    loaded.model,
    loaded.tokenizer!,
    loaded.eosTokenIds,
    { mixed: questions.paraphrase, ood: [] },
    (d) => onProgress?.(done + d),
  ).mixed;
  return measureRun(spec, mixed, ood, paraphrase, cost);
}

/** Deep-merge `over` into `base` (plain objects merge key by key; anything else replaces). */
function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    const plain = (x: unknown): x is Record<string, unknown> =>
      typeof x === 'object' && x !== null && !Array.isArray(x);
    out[k] = plain(prev) && plain(v) ? deepMerge(prev, v) : v;
  }
  return out;
}

/**
 * Train with the bench's recipe into `dir/run` (skipped when `dir/trained.json` says it finished),
 * `overrides` deep-merged over the bench's config of `spec`.
 */
export function trainCached(
  o: MethodsBenchOptions,
  spec: MethodSpec,
  seed: number,
  dir: string,
  label: string,
  overrides: Record<string, unknown> = {},
): {
  runDir: string;
  modelDir: string;
  adapterDir: string | null;
  cost: RunCost;
  /** The adapter's own measurements after training (Adapter.metrics), for the row's extras. */
  extra?: Record<string, number>;
} {
  const marker = join(dir, 'trained.json');
  if (existsSync(marker)) {
    o.onNote?.(`reusing ${dir}`);
    return JSON.parse(readFileSync(marker, 'utf8')) as ReturnType<typeof trainCached>;
  }
  // a run kept by a bench from before trained.json existed: its result.json holds the cost
  const earlier = join(dir, 'result.json');
  if (existsSync(earlier) && existsSync(join(dir, 'run', 'adapter')) && Object.keys(overrides).length === 0) {
    const r = JSON.parse(readFileSync(earlier, 'utf8')) as RunResult;
    const { trainable_params, adapter_bytes, step_s, peak_rss_mb } = r;
    const found = {
      runDir: join(dir, 'run'),
      modelDir: o.base,
      adapterDir: join(dir, 'run', 'adapter'),
      cost: { trainable_params, adapter_bytes, step_s, peak_rss_mb },
    };
    writeJsonAtomic(marker, found as unknown as Record<string, unknown>);
    return found;
  }
  const b = o.budget;
  const raw = deepMerge(
    {
      model: o.base,
      data: { train: o.trainFile, max_length: b.maxLength },
      method: methodChoice(spec),
      loss: lossChoice(spec.loss),
      schedule: { name: 'cosine', warmup_steps: b.warmupSteps },
      train: { steps: b.steps, batch_size: b.batchSize, seed },
      output_dir: join(dir, 'run'),
    },
    overrides,
  );
  const methodName = (raw.method as { name?: unknown }).name;
  const tuner = tuners.get(typeof methodName === 'string' ? methodName : (spec.tuner ?? spec.method));
  const trainSection = raw.train as Record<string, unknown>;
  if (trainSection.lr === undefined)
    trainSection.lr = tuner.writesMergedModel || tuner.inPlace ? b.fullLr : b.lr;
  const config = validateTrainConfig(raw, `bench methods (${label}, seed ${seed})`);
  o.onPhase?.(`${label}, seed ${seed}: train`, config.train.steps);
  const started = performance.now();
  const trained = train(config, {
    overwrite: true,
    onEvent: (e) => {
      if (e.type === 'step') o.onProgress?.(e.metrics.step);
    },
  });
  const stepS = (performance.now() - started) / 1000 / config.train.steps;
  const trainable = trained.adapter.namedTrainableParameters().reduce((s, [, p]) => s + p.size, 0);
  const result = {
    runDir: join(dir, 'run'),
    modelDir: typeof config.model === 'string' ? config.model : o.base,
    adapterDir: trained.adapterDir,
    cost: {
      trainable_params: trainable,
      adapter_bytes: bytesOf(trained.adapterDir),
      step_s: stepS,
      peak_rss_mb: peakRssMb(),
    },
    ...(trained.adapter.metrics ? { extra: trained.adapter.metrics() } : {}),
  };
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(marker, result as unknown as Record<string, unknown>);
  return result;
}

/** Train and evaluate `spec`'s run of `seed` (reused when its result.json exists). */
export function runOne(
  o: MethodsBenchOptions,
  spec: MethodSpec,
  seed: number,
  questions: WorldQuestions,
  key: string,
): RunResult {
  const dir = runFolder(o, spec, seed, key);
  const resultFile = join(dir, 'result.json');
  if (existsSync(resultFile)) {
    o.onNote?.(`reusing ${dir}`);
    return JSON.parse(readFileSync(resultFile, 'utf8')) as RunResult;
  }
  const trained = trainCached(o, spec, seed, dir, `${spec.method} + ${spec.loss}`);
  const result = evaluateRun(o, spec, seed, questions, trained, trained.cost);
  if (trained.extra) result.extra = trained.extra;
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(resultFile, result as unknown as Record<string, unknown>);
  return result;
}

/** The context an experiment runs in: its own cached folder, the bench's recipe and evaluation. */
export function experimentContext(
  o: MethodsBenchOptions,
  name: string,
  questions: WorldQuestions,
  key: string,
): ExperimentContext {
  const work = join(o.out, 'experiments', `${name}-${key}`);
  mkdirSync(work, { recursive: true });
  return {
    base: o.base,
    worldDir: o.worldDir,
    trainFile: o.trainFile,
    budget: o.budget,
    seeds: o.seeds,
    quick: o.quick ?? false,
    questions,
    work,
    worldBase: (sizeOrDir) => resolveWorldBase(sizeOrDir).dir,
    methodRun(method, loss, seed) {
      const spec = methodSpec(method, loss);
      return trainCached(o, spec, seed, runFolder(o, spec, seed, key), `${method} + ${loss}`);
    },
    train(runName, seed, overrides) {
      const dir = join(work, 'runs', `${slug(runName)}-seed${seed}`);
      return trainCached(o, { method: 'lora', loss: 'ce' }, seed, dir, `${name}: ${runName}`, overrides);
    },
    evaluate(row, seed, model, cost, extra, cacheTag) {
      const tag = cacheTag ? `-${slug(cacheTag)}` : '';
      const dir = join(work, 'rows', `${slug(row.method)}-${slug(row.loss)}${tag}-seed${seed}`);
      const file = join(dir, 'result.json');
      if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as RunResult;
      const r = evaluateRun(o, row, seed, questions, model, cost);
      if (extra) r.extra = extra();
      mkdirSync(dir, { recursive: true });
      writeJsonAtomic(file, r as unknown as Record<string, unknown>);
      return r;
    },
    predict(model, records, label) {
      const loaded = loadModel(model.modelDir);
      if (model.adapterDir) loadAdapter(loaded.model, model.adapterDir);
      o.onPhase?.(`${name}: ${label}`, records.length);
      return predictWorld(
        loaded.model,
        loaded.tokenizer!,
        loaded.eosTokenIds,
        { mixed: records, ood: [] },
        o.onProgress,
      ).mixed;
    },
    note: (t) => o.onNote?.(`${name}: ${t}`),
    phase: (label, total) => o.onPhase?.(`${name}: ${label}`, total),
    progress: (done) => o.onProgress?.(done),
  };
}

/**
 * The row of derivation `d` from the runs of its source (method, loss), one per seed: each built
 * model is evaluated like a run and cached under out/runs/<row>-seed<s>-<key>/result.json.
 */
export function derivedRow(
  o: MethodsBenchOptions,
  questions: WorldQuestions,
  key: string,
  d: DerivedMethod,
  source: readonly RunResult[],
  baseKnown: number | null,
  defaultScore: string,
): MethodRow | null {
  const spec = derivedSpec(d);
  const cached = o.seeds.map((seed) => join(runFolder(o, spec, seed, key), 'result.json'));
  let results: RunResult[];
  if (cached.every((f) => existsSync(f))) {
    o.onNote?.(`reusing the ${spec.method} rows`);
    results = cached.map((f) => JSON.parse(readFileSync(f, 'utf8')) as RunResult);
  } else {
    const work = join(o.out, 'runs', `${slug(spec.method)}-${slug(spec.loss)}-${key}`);
    mkdirSync(work, { recursive: true });
    const models = d.build({
      runs: o.seeds.map((seed) => ({ seed, runDir: join(runFolder(o, d.from, seed, key), 'run') })),
      base: o.base,
      worldDir: o.worldDir,
      work,
      note: o.onNote,
    });
    const first = source[0]!;
    results = models.map((m) => {
      const r = evaluateRun(o, spec, m.seed, questions, m, {
        trainable_params: first.trainable_params,
        adapter_bytes: m.bytes,
        step_s: 0,
        peak_rss_mb: peakRssMb(),
      });
      const dir = runFolder(o, spec, m.seed, key);
      mkdirSync(dir, { recursive: true });
      writeJsonAtomic(join(dir, 'result.json'), r as unknown as Record<string, unknown>);
      return r;
    });
  }
  return results.length > 0 ? aggregateRuns(results, baseKnown, defaultScore) : null;
}

/** The row name of derivation `d`: `compeft(lora)` with its source's loss. */
export function derivedSpec(d: DerivedMethod): MethodSpec {
  return { method: derivedRowMethod(d), loss: d.from.loss };
}

/** The derivations whose source (method, loss) is one of the bench's specs, with its index. */
export function derivationsOf(o: Pick<MethodsBenchOptions, 'specs'>): { d: DerivedMethod; source: number }[] {
  return derivedMethods().flatMap((d) => {
    const source = o.specs.findIndex((s) => s.method === d.from.method && s.loss === d.from.loss);
    return source < 0 ? [] : [{ d, source }];
  });
}

/** The rows of every registered derivation whose source (method, loss) ran (see derivedRow). */
function derivedRows(
  o: MethodsBenchOptions,
  questions: WorldQuestions,
  key: string,
  ran: readonly RunResult[][],
  baseKnown: number | null,
  defaultScore: string,
): MethodRow[] {
  return derivationsOf(o).flatMap(({ d, source }) => {
    const row = derivedRow(o, questions, key, d, ran[source]!, baseKnown, defaultScore);
    return row ? [row] : [];
  });
}

/** The file of the base's known-fact accuracy (see baseKnownAccuracy). */
export function baseKnownFile(o: Pick<MethodsBenchOptions, 'out'>, key: string): string {
  return join(o.out, `base-${key}.json`);
}

/** Known-fact accuracy of the base (cached in out/base-<key>.json). */
export function baseKnownAccuracy(
  o: MethodsBenchOptions,
  questions: WorldQuestions,
  key: string,
): number | null {
  const file = baseKnownFile(o, key);
  if (existsSync(file))
    return (JSON.parse(readFileSync(file, 'utf8')) as { known_accuracy: number | null }).known_accuracy;
  const loaded = loadModel(o.base);
  o.onPhase?.('base: evaluate known facts', questions.mixed.filter((r) => r.split === 'known').length);
  const acc = knownAccuracy(
    loaded.model,
    loaded.tokenizer!,
    loaded.eosTokenIds,
    questions.mixed,
    o.onProgress,
  );
  mkdirSync(o.out, { recursive: true });
  writeJsonAtomic(file, { known_accuracy: acc });
  return acc;
}

/** What every part of one bench shares: its questions, the settings key of its folders, its experiments. */
export interface BenchSetting {
  questions: WorldQuestions;
  /** A hash of the base, the questions, the fine-tuning file and the budget (in every run folder's name). */
  key: string;
  experiments: BenchExperiment[];
}

/** Check the bench's specs, seeds and experiments, read its questions and compute its settings key. */
export function benchSetting(o: MethodsBenchOptions): BenchSetting {
  if (o.specs.length === 0) throw new ConfigError('bench methods: no (method, loss) to run');
  if (o.seeds.length === 0) throw new ConfigError('bench methods: --seeds must be at least 1');
  for (const s of o.specs) {
    tuners.get(s.tuner ?? s.method);
    lossChoice(s.loss);
  }
  const chosen = (o.experiments ?? defaultExperiments().map((e) => e.name)).map((n) => experiment(n));
  const questions = questionsOf(o.worldDir, o.budget.evalPerSplit);
  const key = hashOf({
    base: folderHash(o.base),
    world: hashOf(questions),
    train: readFileSync(o.trainFile, 'utf8'),
    budget: o.budget,
  });
  return { questions, key, experiments: chosen };
}

/**
 * The file where a bench unit (units.ts) keeps experiment `name`'s rows for these seeds and mode;
 * the bench reuses it instead of running the experiment again.
 */
export function experimentRowsFile(o: MethodsBenchOptions, name: string, key: string): string {
  return join(
    o.out,
    'experiments',
    `${name}-${key}`,
    `rows-${hashOf({ seeds: o.seeds, quick: o.quick ?? false })}.json`,
  );
}

/** Run (or reuse) every (method, loss, seed) and aggregate; see the file comment. */
export function runMethodsBench(o: MethodsBenchOptions): MethodsBenchResult {
  const { questions, key: setting, experiments: chosen } = benchSetting(o);
  const baseKnown = baseKnownAccuracy(o, questions, setting);
  const defaultScore = o.defaultScore ?? 'mean_entropy';
  const ran = o.specs.map((spec) => o.seeds.map((seed) => runOne(o, spec, seed, questions, setting)));
  const rows = ran.map((runs) => aggregateRuns(runs, baseKnown, defaultScore));
  rows.push(...derivedRows(o, questions, setting, ran, baseKnown, defaultScore));
  for (const e of chosen) {
    const rowsFile = experimentRowsFile(o, e.name, setting);
    let runs: RunResult[][];
    if (existsSync(rowsFile)) {
      o.onNote?.(`reusing the ${e.name} rows (${rowsFile})`);
      runs = JSON.parse(readFileSync(rowsFile, 'utf8')) as RunResult[][];
    } else runs = e.run(experimentContext(o, e.name, questions, setting));
    for (const r of runs) if (r.length > 0) rows.push(aggregateRuns(r, baseKnown, defaultScore));
  }
  const info = backendInfo();
  return {
    bench: 'methods',
    backend: info.active,
    threads: o.threads ?? info.threads,
    cpu: cpuName(),
    base: { dir: o.base, known_accuracy: baseKnown },
    budget: o.budget,
    experiments: chosen.map((e) => e.name),
    default_score: defaultScore,
    results: rows,
    headlines: headlines(rows),
  };
}

/** The world, fine-tuning file, base and budget `attune bench methods` runs on. */
export interface MethodsSetup {
  worldDir: string;
  trainFile: string;
  base: string;
  budget: MethodsBudget;
}

/**
 * Open the world base `base` (a shipped size or a folder from `attune world pretrain`), write its
 * world into `out/world` (once) and return the setup; the budget is the demo's fine-tuning recipe
 * of the mode (`quick` or full).
 */
export function prepareWorldBench(o: { quick: boolean; base: string; out: string }): MethodsSetup {
  const recipe = demoRecipe(o.quick);
  const opened = resolveWorldBase(o.base);
  const worldDir = join(o.out, 'world');
  if (!existsSync(join(worldDir, 'world.json'))) writeWorld(opened.world, worldDir);
  const f = recipe.finetune;
  return {
    worldDir,
    trainFile: worldFinetuneFile(worldDir),
    base: opened.dir,
    budget: {
      steps: f.steps,
      batchSize: f.batchSize,
      lr: f.lr,
      fullLr: f.lr / 10,
      warmupSteps: 20,
      maxLength: 128,
      evalPerSplit: recipe.evalPerSplit,
    },
  };
}

/**
 * Bench experiments: `attune bench methods` rows that need more than "fine-tune the taught facts with
 * a tuner and a loss" — other data (a corrupted fine-tuning set, preference pairs), another model
 * (the large world base as a teacher or strong model), several stages (curate then train, distil,
 * rounds of active learning), or their own measurements (an abstention rate, an AUC of a deferral
 * curve). Each experiment is one file under `experiments/` that registers itself here with the
 * headlines it tests; the bench runs every registered experiment by default, gives it the same
 * base, world, budget and seeds as the method rows, and adds its rows and headlines to the result.
 */
import { ConfigError } from '../errors.ts';
import type { EvalRecord, Prediction } from '../uq/index.ts';
import type { HeadlinePair, MethodsBudget, RunResult } from './methods.ts';

/** What a trained run costs: the columns the bench reports next to the quality metrics. */
export type RunCost = Pick<RunResult, 'trainable_params' | 'adapter_bytes' | 'step_s' | 'peak_rss_mb'>;

/** A finished training run of an experiment. */
export interface ExperimentRun {
  /** The run's output_dir (adapter/, and model/ for tuners that write one). */
  runDir: string;
  /** The model the adapter applies to. */
  modelDir: string;
  /** null for a tuner that writes a whole model (then `modelDir` is that model). */
  adapterDir: string | null;
  cost: RunCost;
}

/** What an experiment gets from the bench. */
export interface ExperimentContext {
  /** The world base every row starts from (the small one unless `--base` says otherwise). */
  base: string;
  /** The world folder: eval_*.jsonl, the taught-facts fine-tuning file, world.json. */
  worldDir: string;
  /** The taught-facts fine-tuning JSONL the method rows train on. */
  trainFile: string;
  budget: MethodsBudget;
  seeds: readonly number[];
  quick: boolean;
  /** The bench's questions: the mixed set (known/taught/unknown), out-of-domain, taught paraphrased. */
  questions: { mixed: EvalRecord[]; ood: EvalRecord[]; paraphrase: EvalRecord[] };
  /** This experiment's own folder, kept between bench runs of the same settings (cache here). */
  work: string;
  /** The folder of a world base by size or path (`'large'` for a teacher or strong model). */
  worldBase(sizeOrDir: string): string;
  /**
   * The trained run of a method row (`lora`, `ce`) of `seed`: the very run the row measured when it
   * ran in this bench (else trained now, into the same place, so the row reuses it).
   */
  methodRun(method: string, loss: string, seed: number): ExperimentRun;
  /**
   * Fine-tune with the bench's recipe (budget, schedule, lr of the tuner kind, seed): `overrides` are
   * deep-merged over the bench's training config (`{data: {train: FILE}, method: {...}, loss: {...},
   * model: DIR}` ...). Cached: a run named `name` of `seed` that finished is reused, not retrained.
   */
  train(name: string, seed: number, overrides?: Record<string, unknown>): ExperimentRun;
  /**
   * Evaluate a model (+ adapter) on the bench's questions exactly as a method row's run is, as the
   * run of (`row.method`, `row.loss`, `seed`); `extra` adds experiment-specific measurements (the
   * row's `extra.<name>`, which headlines may test). Cached like `train`, by row and seed (and
   * `cacheTag`, when given: an experiment whose own settings change a row's run names it here).
   */
  evaluate(
    row: { method: string; loss: string },
    seed: number,
    model: { modelDir: string; adapterDir: string | null },
    cost: RunCost,
    extra?: () => Record<string, number | null>,
    cacheTag?: string,
  ): RunResult;
  /**
   * Greedy graded predictions of a model (+ adapter) on `records` (the bench's questions or your
   * own), as the bench's evaluation makes them (one line answers, every score). Not cached.
   */
  predict(
    model: { modelDir: string; adapterDir: string | null },
    records: EvalRecord[],
    label: string,
  ): Prediction[];
  note(text: string): void;
  phase(label: string, total: number): void;
  progress(done: number): void;
}

/** One registered bench experiment. */
export interface BenchExperiment {
  /** Short name (`--experiments` selects by it). */
  name: string;
  description: string;
  /** The rows: one list of per-seed runs per row (a row is a (method, loss) name pair). */
  run(ctx: ExperimentContext): RunResult[][];
  /** The headlines it tests, on its rows and the method rows. */
  headlines?: readonly HeadlinePair[];
  /**
   * The method rows' runs it reaches through `ctx.methodRun` (a distributed bench, units.ts, trains
   * them before any experiment starts, so two experiments never train one run at once).
   */
  methodRuns?: readonly { method: string; loss: string }[];
  /**
   * Whether a default bench run includes it (default true). An experiment that needs well over
   * the ~2 minutes a `--quick` run allows each experiment says false and why (`heavy`), and runs
   * when named (`--experiments NAME` or `all`).
   */
  byDefault?: boolean;
  heavy?: string;
}

const registry: BenchExperiment[] = [];

/** Register an experiment (its file adds one import line to `experiments/index.ts`). */
export function registerExperiment(e: BenchExperiment): void {
  if (!/^[a-z][a-z0-9_-]*$/.test(e.name))
    throw new Error(`bench experiment name '${e.name}' must be lower-case letters, digits, - or _`);
  if (registry.some((x) => x.name === e.name))
    throw new Error(`bench experiment '${e.name}' is registered twice`);
  registry.push(e);
}

/** The registered experiments, in registration order. */
export function experiments(): readonly BenchExperiment[] {
  return registry;
}

/** The experiments a bench runs when none are named: those registered `byDefault` (not false). */
export function defaultExperiments(): readonly BenchExperiment[] {
  return registry.filter((e) => e.byDefault !== false);
}

/** The experiment named `name`, or a clear error listing the known ones. */
export function experiment(name: string): BenchExperiment {
  const e = registry.find((x) => x.name === name);
  if (!e)
    throw new ConfigError(
      `unknown bench experiment '${name}'; known: ${registry.map((x) => x.name).join(', ') || '(none)'}`,
    );
  return e;
}

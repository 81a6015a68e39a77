/**
 * `attune bench methods` as independent units, for the executors of `attune sweep` (a local
 * process pool, or BullMQ and `attune worker` on several machines). Every part of the bench keeps
 * its result in its own folder under `out` (runs/, experiments/), so a distributed bench is:
 * enumerate the units (`benchUnits`), run each anywhere (`runBenchUnit`: it writes its result
 * atomically, last, so a unit is done exactly when its result file exists and a unit run twice, as
 * at-least-once delivery may, computes the same thing into the same place), then run the ordinary
 * runMethodsBench on `out`, which finds every result and only aggregates: the JSON is the one a
 * single process would print (timings aside).
 *
 * Units: the base's known-fact accuracy; each (method, loss) x seed run; each run an experiment
 * reaches that is not a method row (trained only); each derived row (over its source's seeds); each
 * experiment (one unit: experiments may use several seeds at once, e.g. a teacher from the first).
 * Wave 0 (base, runs) finishes before wave 1 (derived rows and experiments) starts, since those
 * read the runs of wave 0. This file knows no executor: the CLI turns units into jobs.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { AttuneError, ConfigError } from '../errors.ts';
import { writeJsonAtomic } from '../io/index.ts';
import { experiment } from './experiment.ts';
import {
  type BenchSetting,
  baseKnownAccuracy,
  baseKnownFile,
  benchSetting,
  derivationsOf,
  derivedRow,
  derivedSpec,
  experimentContext,
  experimentRowsFile,
  type MethodSpec,
  type MethodsBenchOptions,
  type MethodsBenchResult,
  methodSpec,
  runFolder,
  runMethodsBench,
  runOne,
  slug,
  trainCached,
} from './methods.ts';

/** What a unit computes (see the file comment). */
export type BenchUnitKind = 'base' | 'run' | 'train' | 'derived' | 'experiment';

/** One independent part of a bench. */
export interface BenchUnit {
  /** Stable: the same bench settings give the same ids (a job id on a queue). */
  id: string;
  kind: BenchUnitKind;
  /** For people: `lora + ce, seed 0`. */
  label: string;
  /** Units of wave 1 read results of wave 0. */
  wave: 0 | 1;
  /** run and train units: the (method, loss) and seed. */
  spec?: MethodSpec;
  seed?: number;
  /** derived and experiment units: the derivation's row name, the experiment's name. */
  name?: string;
}

/** The options of a bench without its callbacks: what a unit's job carries (JSON). */
export type BenchJobOptions = Omit<MethodsBenchOptions, 'onNote' | 'onPhase' | 'onProgress'> & {
  experiments: string[];
};

/** The JSON-only options of `o`, its experiments named (so a worker runs the same ones). */
export function benchJobOptions(o: MethodsBenchOptions): BenchJobOptions {
  const { onNote: _n, onPhase: _p, onProgress: _g, ...rest } = o;
  return { ...rest, experiments: benchSetting(o).experiments.map((e) => e.name) };
}

/** How each kind of unit is run and which files say it is done. */
const kinds: Record<
  BenchUnitKind,
  {
    files(o: MethodsBenchOptions, s: BenchSetting, u: BenchUnit): string[];
    run(o: MethodsBenchOptions, s: BenchSetting, u: BenchUnit): void;
  }
> = {
  base: {
    files: (o, s) => [baseKnownFile(o, s.key)],
    run: (o, s) => void baseKnownAccuracy(o, s.questions, s.key),
  },
  run: {
    files: (o, s, u) => [join(runFolder(o, u.spec!, u.seed!, s.key), 'result.json')],
    run: (o, s, u) => void runOne(o, u.spec!, u.seed!, s.questions, s.key),
  },
  train: {
    files: (o, s, u) => [join(runFolder(o, u.spec!, u.seed!, s.key), 'trained.json')],
    run: (o, s, u) =>
      void trainCached(
        o,
        u.spec!,
        u.seed!,
        runFolder(o, u.spec!, u.seed!, s.key),
        `${u.spec!.method} + ${u.spec!.loss}`,
      ),
  },
  derived: {
    files: (o, s, u) => {
      const { d } = derivationOf(o, u);
      return o.seeds.map((seed) => join(runFolder(o, derivedSpec(d), seed, s.key), 'result.json'));
    },
    run: (o, s, u) => {
      const { d, source } = derivationOf(o, u);
      const runs = o.seeds.map((seed) => runOne(o, o.specs[source]!, seed, s.questions, s.key));
      derivedRow(o, s.questions, s.key, d, runs, null, o.defaultScore ?? 'mean_entropy');
    },
  },
  experiment: {
    files: (o, s, u) => [experimentRowsFile(o, u.name!, s.key)],
    run: (o, s, u) => {
      const e = experiment(u.name!);
      const rows = e.run(experimentContext(o, e.name, s.questions, s.key));
      writeJsonAtomic(experimentRowsFile(o, e.name, s.key), rows);
    },
  },
};

function derivationOf(o: MethodsBenchOptions, u: BenchUnit) {
  const found = derivationsOf(o).find(({ d }) => derivedSpec(d).method === u.name);
  if (!found) throw new ConfigError(`bench unit ${u.id}: no derivation '${u.name}' from this bench's specs`);
  return found;
}

/** Every unit of the bench `o`, wave 0 first; `setting` (benchSetting(o)) when the caller has it. */
export function benchUnits(o: MethodsBenchOptions, setting: BenchSetting = benchSetting(o)): BenchUnit[] {
  const { key } = setting;
  const folder = (spec: MethodSpec, seed: number) => basename(runFolder(o, spec, seed, key));
  const units: BenchUnit[] = [
    { id: `base-${key}`, kind: 'base', label: 'base: known-fact accuracy', wave: 0 },
  ];
  for (const spec of o.specs)
    for (const seed of o.seeds)
      units.push({
        id: `run-${folder(spec, seed)}`,
        kind: 'run',
        label: `${spec.method} + ${spec.loss}, seed ${seed}`,
        wave: 0,
        spec,
        seed,
      });
  // runs an experiment reaches (ctx.methodRun) that no method row trains: trained in wave 0 too
  const extra: MethodSpec[] = [];
  for (const e of setting.experiments)
    for (const r of e.methodRuns ?? [])
      if (![...o.specs, ...extra].some((s) => s.method === r.method && s.loss === r.loss))
        extra.push(methodSpec(r.method, r.loss));
  for (const spec of extra)
    for (const seed of o.seeds)
      units.push({
        id: `train-${folder(spec, seed)}`,
        kind: 'train',
        label: `${spec.method} + ${spec.loss}, seed ${seed} (trained for the experiments)`,
        wave: 0,
        spec,
        seed,
      });
  for (const { d } of derivationsOf(o)) {
    const spec = derivedSpec(d);
    units.push({
      id: `derived-${slug(spec.method)}-${slug(spec.loss)}-${key}`,
      kind: 'derived',
      label: `${spec.method} + ${spec.loss}, every seed`,
      wave: 1,
      name: spec.method,
    });
  }
  for (const e of setting.experiments)
    units.push({
      id: `experiment-${e.name}-${key}`,
      kind: 'experiment',
      label: `experiment ${e.name}`,
      wave: 1,
      name: e.name,
    });
  return units;
}

function unitOf(o: MethodsBenchOptions, setting: BenchSetting, id: string): BenchUnit {
  const unit = benchUnits(o, setting).find((u) => u.id === id);
  if (!unit)
    throw new ConfigError(
      `bench unit '${id}': expected a unit of this bench (its settings key is ${setting.key}); were its base, world or budget changed since it was queued?`,
    );
  return unit;
}

/** The files whose existence says unit `id` is done (written atomically, last). */
export function benchUnitFiles(o: MethodsBenchOptions, id: string): string[] {
  const setting = benchSetting(o);
  const unit = unitOf(o, setting, id);
  return kinds[unit.kind].files(o, setting, unit);
}

/** Whether unit `id` of bench `o` is done (its result files exist). */
export function benchUnitDone(o: MethodsBenchOptions, id: string): boolean {
  return benchUnitFiles(o, id).every((f) => existsSync(f));
}

/** Run unit `id` of bench `o` in this process (a unit already done only reads its results). */
export function runBenchUnit(o: MethodsBenchOptions, id: string): void {
  const setting = benchSetting(o);
  const unit = unitOf(o, setting, id);
  kinds[unit.kind].run(o, setting, unit);
}

/** How a unit ended on an executor. */
export interface BenchUnitOutcome {
  id: string;
  status: 'done' | 'failed' | 'interrupted';
  error?: string;
}

/** Runs units somewhere (the CLI adapts the sweep executors); their files go under the bench's `out`. */
export interface BenchExecutor {
  run(units: readonly BenchUnit[]): Promise<BenchUnitOutcome[]>;
}

/**
 * The bench `o` on `executor`: run the units not done yet, wave by wave, then aggregate with
 * runMethodsBench (which reuses every unit's result). A unit that fails or is interrupted stops
 * the bench before the next wave with one error naming them (a rerun continues: done units stay).
 */
export async function runMethodsBenchOn(
  o: MethodsBenchOptions,
  executor: BenchExecutor,
): Promise<MethodsBenchResult> {
  const setting = benchSetting(o);
  const units = benchUnits(o, setting);
  for (const wave of [0, 1] as const) {
    const inWave = units.filter((u) => u.wave === wave);
    const todo = inWave.filter((u) => !kinds[u.kind].files(o, setting, u).every((f) => existsSync(f)));
    o.onNote?.(
      `wave ${wave}: ${inWave.length} units, ${inWave.length - todo.length} done before, ${todo.length} to run`,
    );
    if (todo.length === 0) continue;
    const outcomes = await executor.run(todo);
    const bad = todo.flatMap((u) => {
      const x = outcomes.find((y) => y.id === u.id);
      return x?.status === 'done'
        ? []
        : [`${u.label} (${u.id}): ${x?.status ?? 'not run'}${x?.error ? `: ${x.error}` : ''}`];
    });
    if (bad.length > 0)
      throw new AttuneError(
        `bench methods: ${bad.length} of ${todo.length} units of wave ${wave} did not finish: ${bad.join('; ')}; rerun to continue (finished units are reused)`,
      );
  }
  return runMethodsBench(o);
}

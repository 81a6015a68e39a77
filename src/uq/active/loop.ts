/**
 * `attune active`: rounds of query -> label -> LoRA fine-tune.
 *
 * Round 0 (when seed_labels > 0) labels `seed_labels` random pool questions; each query round
 * k = 1..rounds scores the unlabeled questions with the strategy (the current model = round k-1's
 * adapter on the base; the base itself before any) and labels the top `per_round`. Every round then
 * trains a fresh adapter from the base on all labels so far (not a continuation of the last one:
 * each round's model depends on its label set only, so strategies compare at equal budgets and a
 * resumed round is identical), evaluates it and writes `out/round-<k>/`: labels.jsonl (every label
 * so far, with the round that asked and its score), adapter/, metrics.json and, last and atomically,
 * done.json, the completion marker. A re-run skips the rounds with done.json (their labels are read
 * back, not asked again) when out/active.json records the same settings (rounds may grow).
 */
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AttuneError, ConfigError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import { mixSeed } from '../../nn/index.ts';
import { Rng } from '../../tensor/rng.ts';
import type { TrainConfig } from '../../train/config.ts';
import { topKIndices } from './mix.ts';
import type { LabelOracle } from './oracle.ts';
import { checkPool, type PoolItem } from './pool.ts';
import type { GreedyAnswer, ScoringModel } from './score.ts';
import { greedyAnswers, mcDropoutUncertainty } from './score.ts';
import { activeStrategies, type ModelScores } from './strategy.ts';

/** The loop's own settings (the training recipe is a TrainConfig). */
export interface ActiveSpec {
  strategy: { name: string } & Record<string, unknown>;
  rounds: number;
  per_round: number;
  seed_labels: number;
  mc_dropout: { passes: number; p: number };
  max_new_tokens: number;
  seed: number;
}

/** One label. */
export interface ActiveLabel {
  id: string;
  prompt: string;
  answer: string;
  /** The round that asked for it (0 = the random seed labels). */
  round: number;
  /** The strategy's score when it was picked (null for seed labels). */
  score: number | null;
}

/** One finished round (metrics.json). */
export interface ActiveRoundSummary {
  round: number;
  /** Labels trained on (all so far). */
  labels: number;
  /** Labels this round asked for. */
  new_labels: number;
  /** Oracle calls this round made. */
  oracle_calls: number;
  /** The adapter trained on them. */
  adapter: string;
  final_loss: number;
  /** Evaluation metrics (empty without an evaluator). */
  metrics: Record<string, number>;
}

/** One round's training: the recipe with data.train = its labels and output_dir = its run folder. */
export interface ActiveTraining {
  round: number;
  config: TrainConfig;
  resume: boolean;
}

/** What the loop needs back from a round's training. */
export interface ActiveTrained {
  adapterDir: string;
  finalLoss: number;
}

export type ActiveEvent =
  | { type: 'round-start'; round: number; rounds: number }
  | { type: 'skipped'; round: number }
  | { type: 'scoring'; round: number; label: string; total: number }
  | { type: 'scored'; round: number; done: number }
  | { type: 'round-done'; summary: ActiveRoundSummary };

export interface ActiveOptions {
  /** Loads the base model (with `adapterDir` on it, when given) for scoring. */
  loadModel(adapterDir: string | null): ScoringModel;
  /** Metrics of a round's adapter (e.g. eval-file accuracy); none when absent. */
  evaluate?(adapterDir: string): Record<string, number>;
  /** Replace an `out` written with other settings instead of refusing. */
  overwrite?: boolean;
  onEvent?(e: ActiveEvent): void;
}

const jsonl = (rows: readonly unknown[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** The settings a resumed run must share with the one that wrote `out` (all but `rounds`). */
function fingerprint(config: TrainConfig, spec: ActiveSpec, pool: readonly PoolItem[]): string {
  const { rounds: _r, ...rest } = spec;
  const { output_dir: _o, data, ...train } = config;
  const { train: _t, ...dataRest } = data;
  return JSON.stringify({ spec: rest, train, data: dataRest, pool: pool.map((q) => q.id) });
}

function readLabels(path: string): ActiveLabel[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as ActiveLabel);
}

/** Lazily computed, cached scores of one model on the candidates. */
function modelScores(
  load: () => ScoringModel,
  candidates: readonly PoolItem[],
  spec: ActiveSpec,
  seed: number,
  progress: (label: string) => (done: number) => void,
  label: string,
): ModelScores {
  let model: ScoringModel | null = null;
  let greedy: GreedyAnswer[] | null = null;
  let mc: { nll: Float64Array; entropy: Float64Array } | null = null;
  const get = () => {
    model ??= load();
    return model;
  };
  const scores: ModelScores = {
    greedy: () => {
      greedy ??= greedyAnswers(get(), candidates, spec.max_new_tokens, progress(`${label}: greedy answers`));
      return greedy;
    },
    mcDropout: () => {
      mc ??= mcDropoutUncertainty(
        get(),
        candidates,
        scores.greedy(),
        { passes: spec.mc_dropout.passes, rate: spec.mc_dropout.p, seed },
        progress(`${label}: MC dropout x${spec.mc_dropout.passes}`),
      );
      return mc;
    },
  };
  return scores;
}

/** The rounds as a generator: yields each round's training, receives its result (see the file comment). */
export function* activeSteps(
  config: TrainConfig,
  spec: ActiveSpec,
  pool: readonly PoolItem[],
  oracle: LabelOracle,
  options: ActiveOptions,
): Generator<ActiveTraining, ActiveRoundSummary[], ActiveTrained> {
  const emit = options.onEvent ?? (() => {});
  checkPool(pool, spec.seed_labels, spec.rounds, spec.per_round);
  const strategy = activeStrategies.parse(spec.strategy, 'strategy');
  const { name: _n, ...strategyOptions } = strategy;
  const entry = activeStrategies.get(strategy.name);
  const root = config.output_dir;
  const statePath = join(root, 'active.json');
  const print = fingerprint(config, spec, pool);
  if (existsSync(root)) {
    const same = existsSync(statePath) && readFileSync(statePath, 'utf8') === `${print}\n`;
    if (!same) {
      if (!options.overwrite)
        throw new ConfigError(
          `out: ${root} exists and was not written by an active run with these settings; pass --overwrite to replace it`,
        );
      rmSync(root, { recursive: true, force: true });
    }
  }
  mkdirSync(root, { recursive: true });
  writeTextAtomic(statePath, `${print}\n`);
  const summaries: ActiveRoundSummary[] = [];
  let labels: ActiveLabel[] = [];
  let lastAdapter: string | null = null;
  const first = spec.seed_labels > 0 ? 0 : 1;
  for (let round = first; round <= spec.rounds; round++) {
    const dir = join(root, `round-${round}`);
    const donePath = join(dir, 'done.json');
    if (existsSync(donePath)) {
      const summary = JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as ActiveRoundSummary;
      labels = readLabels(join(dir, 'labels.jsonl'));
      lastAdapter = summary.adapter;
      summaries.push(summary);
      emit({ type: 'skipped', round });
      continue;
    }
    emit({ type: 'round-start', round, rounds: spec.rounds });
    mkdirSync(dir, { recursive: true });
    const seed = mixSeed(spec.seed >>> 0, round);
    const taken = new Set(labels.map((l) => l.id));
    const candidates = pool.filter((q) => !taken.has(q.id));
    let picked: { item: PoolItem; score: number | null }[];
    if (round === 0) {
      picked = new Rng(seed)
        .shuffle([...candidates])
        .slice(0, spec.seed_labels)
        .map((item) => ({ item, score: null }));
    } else {
      const progress = (label: string) => {
        emit({ type: 'scoring', round, label, total: candidates.length });
        return (done: number) => emit({ type: 'scored', round, done });
      };
      const base = modelScores(() => options.loadModel(null), candidates, spec, seed, progress, 'base');
      const current =
        lastAdapter === null
          ? base
          : modelScores(() => options.loadModel(lastAdapter), candidates, spec, seed, progress, 'adapted');
      const scores = entry.scores({ candidates, iter: round - 1, seed, base, current }, strategyOptions);
      if (scores.length !== candidates.length)
        throw new AttuneError(
          `active: strategy '${strategy.name}' gave ${scores.length} scores for ${candidates.length} candidates`,
        );
      picked = topKIndices(scores, spec.per_round).map((i) => ({ item: candidates[i]!, score: scores[i]! }));
    }
    const callsBefore = oracle.calls;
    const fresh = picked.map(({ item, score }) => ({
      id: item.id,
      prompt: item.prompt,
      answer: oracle.label(item),
      round,
      score,
    }));
    const calls = oracle.calls - callsBefore;
    labels = [...labels, ...fresh];
    writeTextAtomic(join(dir, 'labels.jsonl'), jsonl(labels));
    const trainFile = join(dir, 'train.jsonl');
    writeTextAtomic(trainFile, jsonl(labels.map((l) => ({ prompt: l.prompt, completion: ` ${l.answer}` }))));
    const runDir = join(dir, 'run');
    const trained: ActiveTrained = yield {
      round,
      config: {
        ...config,
        data: { ...config.data, train: trainFile },
        output_dir: runDir,
        train: { ...config.train, seed: mixSeed(config.train.seed >>> 0, round) },
      },
      resume: existsSync(join(runDir, 'checkpoints')),
    };
    const adapter = join(dir, 'adapter');
    if (trained.adapterDir !== adapter) {
      rmSync(adapter, { recursive: true, force: true });
      cpSync(trained.adapterDir, adapter, { recursive: true });
    }
    const summary: ActiveRoundSummary = {
      round,
      labels: labels.length,
      new_labels: fresh.length,
      oracle_calls: calls,
      adapter,
      final_loss: trained.finalLoss,
      metrics: options.evaluate?.(adapter) ?? {},
    };
    writeTextAtomic(join(dir, 'metrics.json'), `${JSON.stringify(summary, null, 2)}\n`);
    writeTextAtomic(donePath, `${JSON.stringify({ round, labels: labels.length })}\n`);
    lastAdapter = adapter;
    summaries.push(summary);
    emit({ type: 'round-done', summary });
  }
  return summaries;
}

/** Run the rounds with a synchronous trainer (`train`, e.g. the bench's cached recipe). */
export function runActiveWith(
  config: TrainConfig,
  spec: ActiveSpec,
  pool: readonly PoolItem[],
  oracle: LabelOracle,
  train: (request: ActiveTraining) => ActiveTrained,
  options: ActiveOptions,
): ActiveRoundSummary[] {
  const steps = activeSteps(config, spec, pool, oracle, options);
  let r = steps.next();
  while (!r.done) r = steps.next(train(r.value));
  return r.value;
}

/** Run the rounds with an asynchronous trainer (the CLI's trainAsync, interruptible). */
export async function runActive(
  config: TrainConfig,
  spec: ActiveSpec,
  pool: readonly PoolItem[],
  oracle: LabelOracle,
  train: (request: ActiveTraining) => Promise<ActiveTrained>,
  options: ActiveOptions,
): Promise<ActiveRoundSummary[]> {
  const steps = activeSteps(config, spec, pool, oracle, options);
  let r = steps.next();
  while (!r.done) r = steps.next(await train(r.value));
  return r.value;
}

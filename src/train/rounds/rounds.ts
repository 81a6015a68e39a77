/**
 * Self-improvement rounds: each round samples from the current policy, labels the samples and
 * fine-tunes on them; the tuned adapter is merged into the policy, which is the next round's
 * policy and (for DPO) its frozen reference (iterative DPO: the reference is the previous iterate).
 *
 * What a round builds is its kind's (`spec.kind`, a registry in kinds/: on_policy, upo, list,
 * mcts, and any kind registered with `registerRoundKind`); this runner owns what every kind shares:
 * the policies, the files, training and resume.
 *
 * Layout of `output_dir`: round-<r>/{samples.jsonl, train.jsonl, run/ (the round's training run),
 * policy/ (the merged model)} and rounds.json (the finished rounds, written atomically after each).
 * With `resume`, finished rounds (in rounds.json with their policy/) are skipped and the run
 * continues with the next round; a round interrupted mid-training continues from its checkpoint.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { AttuneError, ConfigError, DataError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import { type LoadedModel, loadModel, saveModel } from '../../models/index.ts';
import { mixSeed } from '../../nn/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import type { TrainConfig } from '../config.ts';
import { type TrainEvent, type TrainResult, trainAsync } from '../trainer.ts';
import { roundKinds } from './kinds/index.ts';

/** One prompt of the rounds, with its gold answer when the reward needs one. */
export interface RoundPrompt {
  prompt: string;
  answer?: string;
  line: number;
}

/** Grades the samples of one round; `passes` (per-pass scores) are needed by UPO. */
export type RewardFn = (
  policy: LoadedModel,
  samples: readonly { item: RoundPrompt; response: string }[],
) => { reward: number; passes?: number[] }[];

/**
 * A run of rounds: the options every kind shares; each kind adds its own (kinds/*.ts declare them
 * on this interface: upo_threshold, list_threshold, mcts, ...).
 */
export interface RoundsSpec {
  /** A registered round kind (kinds/): on_policy, upo, list, mcts, ... */
  kind: string;
  rounds: number;
  /** Samples per prompt (on_policy / upo). */
  samples: number;
  temperature: number;
  max_new_tokens: number;
  seed: number;
}

/** One finished round, as rounds.json lists it. */
export interface RoundSummary {
  round: number;
  samples: number;
  /** Pairs built (on_policy / upo) or pseudo-labels made (list). */
  candidates: number;
  /** Pairs / labels trained on after the filter. */
  kept: number;
  /** Mean reward of the samples (on_policy / upo); mean confidence of the labels (list). */
  mean_score: number;
  /** mcts: nodes expanded over all prompts. */
  nodes?: number;
  final_loss: number;
  policy: string;
}

export type RoundsEvent =
  | { type: 'round-start'; round: number; rounds: number; policy: string }
  | { type: 'sampled'; round: number; samples: number }
  | { type: 'searched'; round: number; done: number; total: number }
  | { type: 'round-done'; summary: RoundSummary }
  | { type: 'skipped'; round: number }
  | { type: 'train'; round: number; event: TrainEvent };

export interface RoundsOptions {
  reward?: RewardFn;
  /** A labelled JSONL trained on with each round's records (kinds that read it: list). */
  labelled?: string | null;
  resume?: boolean;
  overwrite?: boolean;
  signal?: AbortSignal;
  onEvent?: (e: RoundsEvent) => void;
}

/** Read `{prompt, answer?}` JSONL lines; DataError (file:line) for a bad line. */
export function readRoundPrompts(path: string): RoundPrompt[] {
  if (!existsSync(path)) throw new ConfigError(`rounds.prompts: file not found: ${path}`);
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: RoundPrompt[] = [];
  lines.forEach((text, i) => {
    if (text.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      throw new DataError(path, i + 1, `expected a JSON object {prompt, answer?}: ${(e as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new DataError(path, i + 1, 'expected a JSON object {prompt, answer?}');
    const o = value as Record<string, unknown>;
    if (typeof o.prompt !== 'string' || o.prompt.trim() === '')
      throw new DataError(
        path,
        i + 1,
        `field 'prompt' must be a non-empty string, found ${JSON.stringify(o.prompt)}`,
      );
    if (o.answer !== undefined && typeof o.answer !== 'string')
      throw new DataError(path, i + 1, `field 'answer' must be a string, found ${JSON.stringify(o.answer)}`);
    out.push({
      prompt: o.prompt,
      ...(o.answer !== undefined ? { answer: o.answer as string } : {}),
      line: i + 1,
    });
  });
  if (out.length === 0) throw new DataError(path, 1, 'expected at least one {prompt} line, found none');
  return out;
}

function readSummaries(path: string): RoundSummary[] {
  if (!existsSync(path)) return [];
  const parsed = JSON.parse(readFileSync(path, 'utf8')) as { rounds?: RoundSummary[] };
  if (!Array.isArray(parsed.rounds))
    throw new AttuneError(`${path}: expected {rounds: [...]}, found no rounds list`);
  return parsed.rounds;
}

const jsonl = (rows: readonly unknown[]): string => rows.map((r) => `${JSON.stringify(r)}\n`).join('');

/** Run the rounds of `spec` on `prompts` with the training recipe `config` (see the file comment). */
export async function runRounds(
  config: TrainConfig,
  spec: RoundsSpec,
  prompts: readonly RoundPrompt[],
  options: RoundsOptions = {},
): Promise<RoundSummary[]> {
  const steps = roundSteps(config, spec, prompts, options);
  let r = steps.next();
  while (!r.done) {
    const q = r.value;
    const result = await trainAsync(q.config, {
      resume: q.resume,
      overwrite: !q.resume,
      signal: options.signal,
      onEvent: (event) => options.onEvent?.({ type: 'train', round: q.round, event }),
    });
    r = steps.next(result);
  }
  return r.value;
}

/** One round's training: the config (model = the round's policy, data.train = its data), and whether to resume it. */
export interface RoundTraining {
  round: number;
  config: TrainConfig;
  resume: boolean;
}

/** What the rounds need back from a round's training. */
export type RoundTrained = Pick<TrainResult, 'adapterDir' | 'finalDir' | 'finalLoss'>;

/**
 * `runRounds` with a synchronous trainer (`trainRound`, e.g. the bench's cached recipe); the same
 * rounds, files and resume rules.
 */
export function runRoundsWith(
  config: TrainConfig,
  spec: RoundsSpec,
  prompts: readonly RoundPrompt[],
  trainRound: (request: RoundTraining) => RoundTrained,
  options: RoundsOptions = {},
): RoundSummary[] {
  const steps = roundSteps(config, spec, prompts, options);
  let r = steps.next();
  while (!r.done) r = steps.next(trainRound(r.value));
  return r.value;
}

/** The rounds as a generator: yields each round's training, receives its result. */
function* roundSteps(
  config: TrainConfig,
  spec: RoundsSpec,
  prompts: readonly RoundPrompt[],
  options: RoundsOptions,
): Generator<RoundTraining, RoundSummary[], RoundTrained> {
  const emit = options.onEvent ?? (() => {});
  const kind = roundKinds.get(spec.kind);
  if (kind.needsReward && !options.reward)
    throw new ConfigError(`rounds.kind '${spec.kind}' needs a reward (rounds.reward)`);
  // the kind checks the run (and reads its inputs) before output_dir is touched
  const buildRound = kind.start({ spec, prompts, reward: options.reward, options });
  const root = config.output_dir;
  const statePath = join(root, 'rounds.json');
  if (existsSync(root) && !options.resume) {
    if (!options.overwrite)
      throw new ConfigError(
        `output_dir ${root} exists; pass --resume to continue its rounds or --overwrite to replace it`,
      );
    rmSync(root, { recursive: true, force: true });
  }
  mkdirSync(root, { recursive: true });
  const done = options.resume ? readSummaries(statePath) : [];
  for (let round = 1; round <= spec.rounds; round++) {
    const dir = join(root, `round-${round}`);
    const policyOut = join(dir, 'policy');
    if (done.some((d) => d.round === round) && existsSync(join(policyOut, 'config.json'))) {
      emit({ type: 'skipped', round });
      continue;
    }
    if (typeof config.model !== 'string')
      throw new ConfigError(
        'rounds: model must be a model directory (rounds sample from it), found a random-init spec',
      );
    const policyDir = round === 1 ? config.model : join(root, `round-${round - 1}`, 'policy');
    emit({ type: 'round-start', round, rounds: spec.rounds, policy: policyDir });
    mkdirSync(dir, { recursive: true });
    const policy = loadModel(policyDir);
    if (!policy.tokenizer) throw new ConfigError(`rounds: the policy ${policyDir} has no tokenizer`);
    const data = buildRound({ round, policy, emit });
    writeTextAtomic(join(dir, 'samples.jsonl'), jsonl(data.samples));
    if (data.rows.length === 0) throw new AttuneError(`rounds: round ${round}: ${data.emptyReason}`);
    const trainFile = join(dir, 'train.jsonl');
    writeTextAtomic(trainFile, jsonl(data.rows));
    const runDir = join(dir, 'run');
    const resumeRun = Boolean(options.resume) && existsSync(join(runDir, 'checkpoints'));
    const result: RoundTrained = yield {
      round,
      config: {
        ...config,
        model: policyDir,
        data: { ...config.data, train: trainFile },
        output_dir: runDir,
        train: { ...config.train, seed: mixSeed(config.train.seed >>> 0, round) },
      },
      resume: resumeRun,
    };
    // the tuned policy: the adapter merged into this round's policy (full fine-tuning wrote it whole)
    const whole = result.finalDir !== result.adapterDir;
    const merged = loadModel(whole ? result.finalDir : policyDir);
    const model = whole
      ? merged.model
      : (loadAdapter(merged.model, result.adapterDir).mergeAndUnload() as typeof merged.model);
    const tmp = `${policyOut}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    saveModel(model, tmp, {
      tokenizerFrom: policyDir,
      generationConfig: merged.generationConfig,
    });
    rmSync(policyOut, { recursive: true, force: true });
    renameSync(tmp, policyOut);
    const summary: RoundSummary = {
      round,
      samples: data.sampled ?? data.samples.length,
      candidates: data.candidates,
      kept: data.kept ?? data.rows.length,
      mean_score: data.meanScore,
      ...(data.nodes !== undefined ? { nodes: data.nodes } : {}),
      final_loss: result.finalLoss,
      policy: policyOut,
    };
    done.push(summary);
    writeTextAtomic(statePath, `${JSON.stringify({ kind: spec.kind, rounds: done }, null, 2)}\n`);
    emit({ type: 'round-done', summary });
  }
  return [...done].sort((a, b) => a.round - b.round);
}

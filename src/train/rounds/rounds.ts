/**
 * Self-improvement rounds: each round samples from the current policy, labels the samples and
 * fine-tunes on them; the tuned adapter is merged into the policy, which is the next round's
 * policy and (for DPO) its frozen reference (iterative DPO: the reference is the previous iterate).
 *
 * - `on_policy` (Tajwar et al. 2024): `samples` seeded samples per prompt, graded by a reward
 *   (rounds/rewards.ts: a rule, a JSONL of labels, an MC-dropout judge); best vs worst sample per
 *   prompt is a pair (rounds/pairs.ts buildPairs); the round trains the config's loss (dpo) on them.
 * - `upo` (Wang et al. 2024): as on_policy, but the reward must give per-pass scores (MC dropout);
 *   a pair is kept only if the judge's confidence in its label, Phi(mean / std of the per-pass
 *   margins), reaches `upo_threshold` (`upo_mode: filter`), or every pair is kept with its
 *   confidence as its `weight` in the dpo loss (`upo_mode: weight`; pairs.ts upoSelect).
 * - `list` (LiST, Wang et al. 2022): the policy answers each unlabeled prompt greedily; the
 *   confidence of an answer is its mean token probability; labels passing `list_threshold` /
 *   `list_top_fraction` are added to the labelled data (data.train, if any) and the round trains
 *   the config's tuner and loss (ce) on them: a LoRA student per round.
 * - `mcts` (Xie et al. 2024): per prompt a bounded tree search over answer steps with the policy
 *   (mcts.ts: PUCT selection, sampled steps, rollouts graded by the outcome reward, Q backup); at
 *   each node its highest- vs lowest-Q child step is a pair; the round trains dpo on them.
 *
 * Layout of `output_dir`: round-<r>/{samples.jsonl, train.jsonl, run/ (the round's training run),
 * policy/ (the merged model)} and rounds.json (the finished rounds, written atomically after each).
 * With `resume`, finished rounds (in rounds.json with their policy/) are skipped and the run
 * continues with the next round; a round interrupted mid-training continues from its checkpoint.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { type DataRecord, readJsonl } from '../../data/index.ts';
import { AttuneError, ConfigError, DataError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import { generateBatch, type LoadedModel, loadModel, saveModel } from '../../models/index.ts';
import { mixSeed } from '../../nn/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import type { TrainConfig } from '../config.ts';
import { type TrainEvent, type TrainResult, trainAsync } from '../trainer.ts';
import { searchPairs, searchSteps } from './mcts.ts';
import {
  buildPairs,
  type GradedSample,
  listSelect,
  type PreferencePair,
  type PseudoLabel,
  pairConfidence,
  upoSelect,
} from './pairs.ts';

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

export interface RoundsSpec {
  kind: 'on_policy' | 'upo' | 'list' | 'mcts';
  rounds: number;
  /** Samples per prompt (on_policy / upo). */
  samples: number;
  temperature: number;
  max_new_tokens: number;
  seed: number;
  upo_threshold: number;
  /** upo: 'filter' by upo_threshold, or 'weight' every pair by its confidence (default 'filter'). */
  upo_mode?: 'filter' | 'weight';
  list_threshold: number;
  list_top_fraction: number;
  /** mcts: the tree search of each prompt (mcts.ts); defaults in MCTS_DEFAULTS. */
  mcts?: Partial<MctsSpec>;
}

/** The tree-search settings of kind mcts (rounds.mcts_* in the config). */
export interface MctsSpec {
  iterations: number;
  expand: number;
  c_puct: number;
  margin: number;
  max_depth: number;
  step_tokens: number;
  time_s: number;
  delimiter: string;
}

/** Defaults of the mcts search (the config schema documents the same). */
export const MCTS_DEFAULTS: MctsSpec = {
  iterations: 12,
  expand: 3,
  c_puct: 1,
  margin: 0.5,
  max_depth: 6,
  step_tokens: 16,
  time_s: 60,
  delimiter: '.',
};

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
  /** list: a labelled JSONL trained on with the pseudo-labels every round. */
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

/** Generate `n` samples of each prompt (seeded by round, prompt, sample); greedy when n = 1 and temperature 0. */
function sample(
  policy: LoadedModel,
  prompts: readonly RoundPrompt[],
  spec: RoundsSpec,
  round: number,
  n: number,
) {
  const tokenizer = policy.tokenizer!;
  const out: { item: RoundPrompt; response: string; logprobs: number[] }[] = [];
  const seqs = prompts.flatMap((item, p) =>
    Array.from({ length: n }, (_, k) => ({
      item,
      promptIds: tokenizer.encode(item.prompt),
      seed: mixSeed(mixSeed(mixSeed(spec.seed >>> 0, round), p), k),
    })),
  );
  const batch = 16;
  policy.model.eval();
  for (let s = 0; s < seqs.length; s += batch) {
    const chunk = seqs.slice(s, s + batch);
    const results = generateBatch(
      policy.model,
      chunk.map((c) => ({ promptIds: c.promptIds, seed: c.seed })),
      {
        temperature: spec.temperature,
        maxNewTokens: spec.max_new_tokens,
        eosTokenIds: policy.eosTokenIds,
        stopStrings: ['\n'],
        tokenizer,
        returnStats: true,
      },
    );
    chunk.forEach((c, i) => {
      const r = results[i]!;
      out.push({
        item: c.item,
        response: r.text ?? '',
        logprobs: (r.tokenStats ?? []).map((t) => t.logprob),
      });
    });
  }
  return out;
}

/** Labelled records (LiST trains on them plus the kept pseudo-labels). */
function labelledRecords(path: string | undefined): { prompt: string; completion: string }[] {
  if (!path) return [];
  return readJsonl(path).records.map((r: DataRecord, i) => {
    if (r.shape !== 'prompt_completion')
      throw new ConfigError(
        `rounds.labelled: ${path}: record ${i + 1}: expected {prompt, completion}, found shape '${r.shape}'`,
      );
    return { prompt: r.prompt, completion: r.completion };
  });
}

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
  if (spec.kind !== 'list' && !options.reward)
    throw new ConfigError(`rounds.kind '${spec.kind}' needs a reward (rounds.reward)`);
  if (spec.kind === 'upo' && spec.samples < 2)
    throw new ConfigError(`rounds.samples: upo needs at least 2 samples per prompt, found ${spec.samples}`);
  if (spec.kind === 'on_policy' && spec.samples < 2)
    throw new ConfigError(
      `rounds.samples: on_policy needs at least 2 samples per prompt, found ${spec.samples}`,
    );
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
  const labelled = spec.kind === 'list' ? labelledRecords(options.labelled ?? undefined) : [];
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
    let trainRows: unknown[];
    let candidates: number;
    let meanScore: number;
    let nSamples: number;
    let nodes: number | undefined;
    if (spec.kind === 'mcts') {
      const found = mctsRound(policy, prompts, spec, round, options.reward!, (done) =>
        emit({ type: 'searched', round, done, total: prompts.length }),
      );
      writeTextAtomic(join(dir, 'samples.jsonl'), jsonl(found.evaluations));
      nSamples = found.evaluations.length;
      meanScore = found.evaluations.reduce((s, e) => s + e.reward, 0) / Math.max(1, nSamples);
      nodes = found.nodes;
      candidates = found.pairs.length;
      trainRows = found.pairs;
      if (trainRows.length === 0)
        throw new AttuneError(
          `rounds: round ${round}: the search found no step pair (${nSamples} answers graded, mean reward ${meanScore.toFixed(3)}): every node's children had Q within rounds.mcts_margin`,
        );
    } else if (spec.kind === 'list') {
      const answers = sample(policy, prompts, { ...spec, temperature: 0 }, round, 1);
      const labels: PseudoLabel[] = answers
        .filter((a) => a.response.trim() !== '')
        .map((a) => ({
          prompt: a.item.prompt,
          completion: a.response,
          confidence: Math.exp(a.logprobs.reduce((s, v) => s + v, 0) / Math.max(1, a.logprobs.length)),
        }));
      const kept = listSelect(labels, {
        threshold: spec.list_threshold,
        topFraction: spec.list_top_fraction,
      });
      writeTextAtomic(join(dir, 'samples.jsonl'), jsonl(labels));
      nSamples = answers.length;
      candidates = labels.length;
      meanScore = labels.reduce((s, l) => s + l.confidence, 0) / Math.max(1, labels.length);
      trainRows = [...labelled, ...kept.map((l) => ({ prompt: l.prompt, completion: l.completion }))];
      if (trainRows.length === 0)
        throw new AttuneError(
          `rounds: round ${round}: no labelled records and no pseudo-label passed the filter`,
        );
    } else {
      const drawn = sample(policy, prompts, spec, round, spec.samples).filter(
        (s) => s.response.trim() !== '',
      );
      emit({ type: 'sampled', round, samples: drawn.length });
      const grades = options.reward!(policy, drawn);
      if (grades.length !== drawn.length)
        throw new AttuneError(`rounds: the reward graded ${grades.length} of ${drawn.length} samples`);
      const graded: (GradedSample & { passes?: number[] })[] = drawn.map((s, i) => ({
        prompt: s.item.prompt,
        response: s.response,
        reward: grades[i]!.reward,
        ...(grades[i]!.passes ? { passes: grades[i]!.passes } : {}),
      }));
      writeTextAtomic(join(dir, 'samples.jsonl'), jsonl(graded));
      nSamples = graded.length;
      meanScore = graded.reduce((s, g) => s + g.reward, 0) / Math.max(1, graded.length);
      const pairs = buildPairs(graded);
      candidates = pairs.length;
      const passesOf = new Map(graded.map((g) => [`${g.prompt}\u0000${g.response}`, g.passes]));
      if (spec.kind === 'upo') {
        const confidences = pairs.map((p) => {
          const c = passesOf.get(`${p.prompt}\u0000${p.chosen}`);
          const r = passesOf.get(`${p.prompt}\u0000${p.rejected}`);
          if (!c || !r || c.length !== r.length)
            throw new AttuneError('rounds: upo needs a reward with per-pass scores (rounds.reward: judge)');
          return pairConfidence(c.map((v, t) => v - r[t]!));
        });
        const mode = spec.upo_mode ?? 'filter';
        trainRows = upoSelect(pairs, confidences, { mode, threshold: spec.upo_threshold })
          .filter((s) => s.weight > 0)
          .map((s) => (mode === 'weight' ? { ...s.pair, weight: s.weight } : s.pair));
      } else trainRows = pairs;
      if (trainRows.length === 0)
        throw new AttuneError(
          `rounds: round ${round}: no pair to train on (${pairs.length} built from ${graded.length} samples, ${trainRows.length} kept)`,
        );
    }
    const trainFile = join(dir, 'train.jsonl');
    writeTextAtomic(trainFile, jsonl(trainRows));
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
      samples: nSamples,
      candidates,
      kept: trainRows.length - labelled.length,
      mean_score: meanScore,
      ...(nodes !== undefined ? { nodes } : {}),
      final_loss: result.finalLoss,
      policy: policyOut,
    };
    done.push(summary);
    writeTextAtomic(statePath, `${JSON.stringify({ kind: spec.kind, rounds: done }, null, 2)}\n`);
    emit({ type: 'round-done', summary });
  }
  return [...done].sort((a, b) => a.round - b.round);
}

/** kind mcts: search each prompt's steps (mcts.ts) and collect the step pairs of every tree. */
function mctsRound(
  policy: LoadedModel,
  prompts: readonly RoundPrompt[],
  spec: RoundsSpec,
  round: number,
  reward: RewardFn,
  onPrompt: (done: number) => void,
) {
  const m = { ...MCTS_DEFAULTS, ...spec.mcts };
  const pairs: PreferencePair[] = [];
  const evaluations: { prompt: string; response: string; reward: number }[] = [];
  let nodes = 0;
  prompts.forEach((item, p) => {
    const grade = (responses: readonly string[]) =>
      reward(
        policy,
        responses.map((response) => ({ item, response })),
      ).map((g) => g.reward);
    const found = searchSteps(policy, item.prompt, grade, {
      iterations: m.iterations,
      expand: m.expand,
      cPuct: m.c_puct,
      temperature: spec.temperature,
      stepTokens: m.step_tokens,
      rolloutTokens: spec.max_new_tokens,
      maxDepth: m.max_depth,
      timeS: m.time_s,
      delimiter: m.delimiter,
      seed: mixSeed(mixSeed(spec.seed >>> 0, round), p),
    });
    nodes += found.expanded;
    for (const e of found.evaluations) evaluations.push({ prompt: item.prompt, ...e });
    pairs.push(...searchPairs(item.prompt, found.root, m.margin));
    onPrompt(p + 1);
  });
  return { pairs, evaluations, nodes };
}

/**
 * Kind `mcts` ("Monte Carlo Tree Search Boosts Reasoning via Iterative Preference Learning", Xie et
 * al. 2024): per prompt a bounded tree search over answer steps with the policy (rounds/mcts.ts:
 * PUCT selection, sampled steps, rollouts graded by the outcome reward plus the policy's
 * self-evaluation (self-eval.ts), Q backup, re-rooting at the committed step); at each node (with
 * re-rooting: each root) its highest- vs lowest-Q child step is a pair; the round trains dpo on them.
 * Its options are the `mcts_*` fields of `rounds:`, nested in the spec as `mcts: {iterations, ...}`.
 */
import { z } from 'zod';
import { ConfigError } from '../../../errors.ts';
import type { LoadedModel } from '../../../models/index.ts';
import { mixSeed } from '../../../nn/index.ts';
import { type SearchOptions, type SelfEvaluator, searchPairs, searchSteps } from '../mcts.ts';
import type { PreferencePair } from '../pairs.ts';
import type { RewardFn, RoundPrompt, RoundsSpec } from '../rounds.ts';
import { selfEvalConfidences, selfEvalPrompt } from '../self-eval.ts';
import { registerRoundKind } from './registry.ts';

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
  self_eval_weight: number;
  reroot: boolean;
}

declare module '../rounds.ts' {
  interface RoundsSpec {
    /** mcts: the tree search of each prompt (mcts.ts); defaults in MCTS_DEFAULTS. */
    mcts?: Partial<MctsSpec>;
  }
}

/**
 * Defaults of the mcts search (the config schema documents the same). Self-evaluation (weight 1,
 * added to the outcome) and re-rooting are on, as in the released code's runs.
 */
export const MCTS_DEFAULTS: MctsSpec = {
  iterations: 12,
  expand: 3,
  c_puct: 1,
  margin: 0.5,
  max_depth: 6,
  step_tokens: 16,
  time_s: 60,
  delimiter: '.',
  self_eval_weight: 1,
  reroot: true,
};

/** Self-evaluation shows the gold answer: every prompt needs one (checked before any round). */
function checkSelfEvalAnswers(prompts: readonly RoundPrompt[]): void {
  const missing = prompts.find((p) => p.answer === undefined);
  if (missing)
    throw new ConfigError(
      `rounds.prompts line ${missing.line}: mcts self-evaluation needs an "answer" (the example answer of its prompt), found none; add it or set rounds.mcts_self_eval_weight: 0`,
    );
}

/** The policy's self-evaluation of answers so far to `item` (its gold answer as the example answer). */
function selfEvaluator(policy: LoadedModel, item: RoundPrompt): SelfEvaluator {
  checkSelfEvalAnswers([item]);
  const gold = item.answer!;
  return (proposed) =>
    selfEvalConfidences(
      policy,
      proposed.map((p) => selfEvalPrompt(item.prompt, gold, p)),
    );
}

/** Search each prompt's steps (mcts.ts) and collect the step pairs of every tree. */
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
    const options: SearchOptions = {
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
      selfEvalWeight: m.self_eval_weight,
      reroot: m.reroot,
    };
    const found = searchSteps(
      policy,
      item.prompt,
      grade,
      options,
      Date.now,
      m.self_eval_weight > 0 ? { selfEvaluate: selfEvaluator(policy, item) } : {},
    );
    nodes += found.expanded;
    for (const e of found.evaluations) evaluations.push({ prompt: item.prompt, ...e });
    // the released code pairs the children of each root it searched from
    pairs.push(...searchPairs(item.prompt, found.root, m.margin, m.reroot ? found.roots : undefined));
    onPrompt(p + 1);
  });
  return { pairs, evaluations, nodes };
}

registerRoundKind({
  name: 'mcts',
  description:
    "per prompt a tree search over answer steps (PUCT selection, mcts_expand sampled steps per expansion, rollouts graded by the reward plus the policy's weighted self-evaluation, Q backup, re-rooting at the most visited step); at each node (re-rooting: each root) its best vs worst child step is a pair, loss dpo (Xie et al. 2024)",
  options: z.object({
    mcts_iterations: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.iterations)
      .describe('mcts: search iterations per prompt (select, expand, evaluate, back up)'),
    mcts_expand: z
      .number()
      .int()
      .min(2)
      .default(MCTS_DEFAULTS.expand)
      .describe('mcts: candidate steps sampled per expansion'),
    mcts_c_puct: z.number().min(0).default(MCTS_DEFAULTS.c_puct).describe('mcts: PUCT exploration constant'),
    mcts_margin: z
      .number()
      .gt(0)
      .default(MCTS_DEFAULTS.margin)
      .describe('mcts: a node pairs its best and worst child when their Q differ by at least this'),
    mcts_max_depth: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.max_depth)
      .describe('mcts: deepest node expanded (deeper: a leaf valued by a rollout)'),
    mcts_step_tokens: z
      .number()
      .int()
      .positive()
      .default(MCTS_DEFAULTS.step_tokens)
      .describe('mcts: longest step in tokens'),
    mcts_time_s: z
      .number()
      .positive()
      .default(MCTS_DEFAULTS.time_s)
      .describe("mcts: wall-time budget of one prompt's search, seconds"),
    mcts_delimiter: z.string().min(1).default(MCTS_DEFAULTS.delimiter).describe('mcts: what ends a step'),
    mcts_self_eval_weight: z
      .number()
      .min(0)
      .default(MCTS_DEFAULTS.self_eval_weight)
      .describe(
        "mcts: weight of the policy's self-evaluation of each step (p of '(B) correct' under the released code's prompt), added to the outcome; 0: the outcome only",
      ),
    mcts_reroot: z
      .boolean()
      .default(MCTS_DEFAULTS.reroot)
      .describe(
        'mcts: search 4 x mcts_iterations from the root, commit to the most visited step, search mcts_iterations more from it, until the answer ends; pairs at each root',
      ),
  }),
  trainsOn: 'pairs',
  needsReward: true,
  toSpec: (o) => ({
    mcts: {
      iterations: o.mcts_iterations,
      expand: o.mcts_expand,
      c_puct: o.mcts_c_puct,
      margin: o.mcts_margin,
      max_depth: o.mcts_max_depth,
      step_tokens: o.mcts_step_tokens,
      time_s: o.mcts_time_s,
      delimiter: o.mcts_delimiter,
      self_eval_weight: o.mcts_self_eval_weight,
      reroot: o.mcts_reroot,
    },
  }),
  start(run) {
    if ((run.spec.mcts?.self_eval_weight ?? MCTS_DEFAULTS.self_eval_weight) > 0)
      checkSelfEvalAnswers(run.prompts);
    return ({ policy, round, emit }) => {
      const found = mctsRound(policy, run.prompts, run.spec, round, run.reward!, (done) =>
        emit({ type: 'searched', round, done, total: run.prompts.length }),
      );
      const n = found.evaluations.length;
      const meanScore = found.evaluations.reduce((s, e) => s + e.reward, 0) / Math.max(1, n);
      return {
        samples: found.evaluations,
        candidates: found.pairs.length,
        rows: found.pairs,
        meanScore,
        nodes: found.nodes,
        emptyReason: `the search found no step pair (${n} answers graded, mean reward ${meanScore.toFixed(3)}): every node's children had Q within rounds.mcts_margin`,
      };
    };
  },
});

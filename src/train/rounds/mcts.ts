/**
 * Step-level preferences by Monte Carlo tree search ("Monte Carlo Tree Search Boosts Reasoning via
 * Iterative Preference Learning", Xie et al. 2024; github.com/YuxiXie/MCTS-DPO), the data of the
 * rounds kind `mcts` (rounds.ts). Per prompt, a tree whose nodes are partial answers, one step
 * (text up to the step delimiter, e.g. ".") per edge:
 * - selection: from the root, the child maximising PUCT, Q + c * prior * sqrt(N(parent)) / (1 + N),
 *   where prior is the policy's length-penalised probability of the step (stepPrior);
 * - expansion: `expand` candidate steps sampled from the current policy (seeded, temperature),
 *   each up to the delimiter (kept) or `stepTokens`; identical texts merge into one child; a sample
 *   that ends on EOS or a newline ends the answer (a terminal child);
 * - evaluation: each new child is scored by a rollout of the policy to a final answer graded by the
 *   outcome reward (a child that already ends the answer is graded as it is). Only the outcome is
 *   used; the paper's self-evaluation term (the policy judging its own step) is not implemented;
 * - backup: the child's value is added to every node on its path (Q = mean value, N = visits),
 *   classic Monte Carlo averaging; the released code instead sets Q = r + gamma * V with V the
 *   visit-weighted mean of the children's Q and r a per-step value gain (the same on 0/1 outcomes
 *   with one rollout per node only in expectation).
 * Bounded by `iterations` and a wall-time budget per prompt (`timeS`; with a budget that runs out
 * the search is no longer reproducible, so the defaults leave it loose). Pairs: at every expanded
 * node, the child of the highest Q vs the child of the lowest Q when they differ by at least
 * `margin` -> {prompt: the prompt + steps so far, chosen: best step, rejected: worst step}.
 */
import { AttuneError } from '../../errors.ts';
import { generateBatch, type LoadedModel } from '../../models/index.ts';
import { mixSeed } from '../../nn/index.ts';
import type { PreferencePair } from './pairs.ts';

/** A node of the step tree: the answer so far (`prefix`) and its search statistics. */
export interface StepNode {
  /** The step that led here ('' for the root). */
  step: string;
  /** The answer so far: the steps of the path, each after one space (the root's is ''). */
  prefix: string;
  /** The policy's length-penalised probability of `step` (stepPrior; 1 for the root). */
  prior: number;
  visits: number;
  valueSum: number;
  children: StepNode[];
  expanded: boolean;
  /** The answer ends here (nothing to expand); its value is `terminalValue`. */
  terminal: boolean;
  terminalValue: number | null;
  depth: number;
}

/** A fresh root. */
export function rootNode(): StepNode {
  return {
    step: '',
    prefix: '',
    prior: 1,
    visits: 0,
    valueSum: 0,
    children: [],
    expanded: false,
    terminal: false,
    terminalValue: null,
    depth: 0,
  };
}

/** A child of `parent` for `step`. */
export function childNode(parent: StepNode, step: string, prior: number, terminal = false): StepNode {
  return {
    ...rootNode(),
    step,
    prefix: `${parent.prefix} ${step}`,
    prior,
    terminal,
    depth: parent.depth + 1,
  };
}

/** Q of a node: its mean backed-up value (0 when unvisited). */
export function qValue(node: StepNode): number {
  return node.visits === 0 ? 0 : node.valueSum / node.visits;
}

/** The PUCT score of `child` under `parent`: Q + c * prior * sqrt(N(parent)) / (1 + N(child)). */
export function puctScore(parent: StepNode, child: StepNode, cPuct: number): number {
  return qValue(child) + (cPuct * child.prior * Math.sqrt(parent.visits)) / (1 + child.visits);
}

/** The child of `node` with the highest PUCT score (the first of equal scores). */
export function selectChild(node: StepNode, cPuct: number): StepNode {
  if (node.children.length === 0) throw new AttuneError('selectChild: the node has no children');
  let best = node.children[0]!;
  let bestScore = puctScore(node, best, cPuct);
  for (const c of node.children.slice(1)) {
    const s = puctScore(node, c, cPuct);
    if (s > bestScore) {
      best = c;
      bestScore = s;
    }
  }
  return best;
}

/** Add `value` to every node of `path` (root first): N += 1, W += value. */
export function backup(path: readonly StepNode[], value: number): void {
  if (!Number.isFinite(value)) throw new AttuneError(`backup: expected a finite value, found ${value}`);
  for (const n of path) {
    n.visits += 1;
    n.valueSum += value;
  }
}

/**
 * The prior of a step from its tokens' log-probs, as the released MCTS-DPO code computes it: the
 * length-penalised probability exp(sum log p / n ^ lengthPenalty) (1.25 there), so long steps are
 * not starved by their raw product of probabilities.
 */
export function stepPrior(logprobs: readonly number[], lengthPenalty = 1.25): number {
  if (logprobs.length === 0) return 1;
  const sum = logprobs.reduce((s, l) => s + l, 0);
  return Math.exp(sum / logprobs.length ** lengthPenalty);
}

/** A step-level pair: at a node, its best child's step vs its worst child's, with their Q values. */
export interface StepPair {
  /** The node's answer so far. */
  prefix: string;
  chosen: string;
  rejected: string;
  chosenQ: number;
  rejectedQ: number;
}

/**
 * Step pairs of a tree (depth first, children in order): at each node with at least two visited
 * children, the first child of the highest Q vs the first of the lowest Q, when the two Q differ
 * by at least `margin` (margin > 0, so equal Q never pair).
 */
export function stepPairs(root: StepNode, margin: number): StepPair[] {
  if (!(margin > 0)) throw new AttuneError(`stepPairs: margin: expected a number > 0, found ${margin}`);
  const out: StepPair[] = [];
  const visit = (node: StepNode) => {
    const seen = node.children.filter((c) => c.visits > 0);
    if (seen.length >= 2) {
      let best = seen[0]!;
      let worst = seen[0]!;
      for (const c of seen) {
        if (qValue(c) > qValue(best)) best = c;
        if (qValue(c) < qValue(worst)) worst = c;
      }
      if (qValue(best) - qValue(worst) >= margin)
        out.push({
          prefix: node.prefix,
          chosen: best.step,
          rejected: worst.step,
          chosenQ: qValue(best),
          rejectedQ: qValue(worst),
        });
    }
    node.children.forEach(visit);
  };
  visit(root);
  return out;
}

/** Options of one prompt's search. */
export interface SearchOptions {
  /** Iterations (select, expand, evaluate, back up). */
  iterations: number;
  /** Candidate steps sampled per expansion. */
  expand: number;
  cPuct: number;
  temperature: number;
  /** Longest step (tokens). */
  stepTokens: number;
  /** Longest rollout (tokens). */
  rolloutTokens: number;
  /** Deepest node that is expanded; deeper nodes are evaluated by a rollout and kept as leaves. */
  maxDepth: number;
  /** Wall-time budget of the search (seconds). */
  timeS: number;
  /** What ends a step ('.'). */
  delimiter: string;
  seed: number;
}

/** Grades full answers of the prompt by the outcome reward (1 = right). */
export type OutcomeGrader = (responses: readonly string[]) => number[];

/** What one prompt's search found. */
export interface SearchResult {
  root: StepNode;
  /** Nodes expanded. */
  expanded: number;
  /** Graded answers (rollouts and finished steps), with their outcome. */
  evaluations: { response: string; reward: number }[];
  iterations: number;
}

/**
 * Search the steps of answers to `prompt` with `policy` (see the file comment); `grade` is the
 * outcome reward. Deterministic given `options.seed` while the time budget holds.
 */
export function searchSteps(
  policy: LoadedModel,
  prompt: string,
  grade: OutcomeGrader,
  options: SearchOptions,
  now: () => number = Date.now,
): SearchResult {
  const tokenizer = policy.tokenizer;
  if (!tokenizer) throw new AttuneError('mcts: the policy has no tokenizer');
  const root = rootNode();
  const evaluations: SearchResult['evaluations'] = [];
  const deadline = now() + options.timeS * 1000;
  let expanded = 0;
  let it = 0;
  /** One seeded sample per text (salt: 0 steps, 1 deep leaves, 2 rollouts). */
  const generate = (texts: readonly string[], maxNew: number, stops: string[], salt: number) =>
    generateBatch(
      policy.model,
      texts.map((text, k) => ({
        promptIds: tokenizer.encode(text),
        seed: mixSeed(mixSeed(mixSeed(options.seed >>> 0, it), salt), k),
      })),
      {
        temperature: options.temperature,
        maxNewTokens: maxNew,
        eosTokenIds: policy.eosTokenIds,
        stopStrings: stops,
        tokenizer,
        returnStats: true,
      },
    );
  const evaluate = (responses: string[]) => {
    const rewards = grade(responses);
    if (rewards.length !== responses.length)
      throw new AttuneError(`mcts: the reward graded ${rewards.length} of ${responses.length} answers`);
    responses.forEach((response, i) => {
      evaluations.push({ response, reward: rewards[i]! });
    });
    return rewards;
  };
  for (; it < options.iterations && now() < deadline; it++) {
    const path = [root];
    let node = root;
    while (node.expanded && !node.terminal) {
      node = selectChild(node, options.cPuct);
      path.push(node);
    }
    if (node.terminal && node.terminalValue !== null) {
      backup(path, node.terminalValue);
      continue;
    }
    if (node.depth >= options.maxDepth) {
      // too deep to expand: a leaf valued by one rollout
      const [r] = generate([prompt + node.prefix], options.rolloutTokens, ['\n'], 1);
      const [v] = evaluate([`${node.prefix} ${r!.text ?? ''}`.trim()]);
      node.terminal = true;
      node.terminalValue = v!;
      backup(path, v!);
      continue;
    }
    // expansion: k candidate steps, merged by text
    const drawn = generate(
      Array.from({ length: options.expand }, () => prompt + node.prefix),
      options.stepTokens,
      [options.delimiter, '\n'],
      0,
    );
    const steps = new Map<string, { prior: number; terminal: boolean }>();
    for (const r of drawn) {
      const decoded = tokenizer.decode(r.generatedIds, { skipSpecialTokens: true });
      const atStep = decoded.indexOf(options.delimiter);
      const atLine = decoded.indexOf('\n');
      const atDelimiter = r.stopReason === 'stop_string' && atStep >= 0 && (atLine < 0 || atStep < atLine);
      // the answer ends on EOS or a newline; a step cut at step_tokens is a step without its delimiter
      const terminal = r.stopReason === 'eos' || (r.stopReason === 'stop_string' && !atDelimiter);
      const body = (r.text ?? decoded).trim();
      if (body === '' && terminal) continue; // the answer ends right here
      const step = atDelimiter ? `${body}${options.delimiter}` : body;
      const prior = stepPrior((r.tokenStats ?? []).map((t) => t.logprob));
      if (step !== '' && !steps.has(step)) steps.set(step, { prior, terminal });
    }
    node.expanded = true;
    expanded++;
    if (steps.size === 0) {
      // every sample ended the answer: the node is an answer; grade it as it is
      const [v] = evaluate([node.prefix.trim()]);
      node.terminal = true;
      node.terminalValue = v!;
      backup(path, v!);
      continue;
    }
    node.children = [...steps.entries()].map(([step, s]) => childNode(node, step, s.prior, s.terminal));
    // evaluation: finished children as they are, the others by one rollout each
    const open = node.children.filter((c) => !c.terminal);
    const rollouts =
      open.length === 0
        ? []
        : generate(
            open.map((c) => prompt + c.prefix),
            options.rolloutTokens,
            ['\n'],
            2,
          );
    const responses = node.children.map((c) => {
      if (c.terminal) return c.prefix.trim();
      const r = rollouts[open.indexOf(c)]!;
      return `${c.prefix} ${(r.text ?? '').trim()}`.trim();
    });
    const values = evaluate(responses);
    node.children.forEach((c, i) => {
      if (c.terminal) c.terminalValue = values[i]!;
      backup([...path, c], values[i]!);
    });
  }
  return { root, expanded, evaluations, iterations: it };
}

/** The preference pairs of a search: step pairs with the prompt and steps so far as the prompt. */
export function searchPairs(prompt: string, root: StepNode, margin: number): PreferencePair[] {
  return stepPairs(root, margin).map((p) => ({
    prompt: prompt + p.prefix,
    chosen: ` ${p.chosen}`,
    rejected: ` ${p.rejected}`,
    chosen_reward: p.chosenQ,
    rejected_reward: p.rejectedQ,
  }));
}

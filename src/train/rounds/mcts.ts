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
 *   outcome reward (a child that already ends the answer is graded as it is), plus, with
 *   `selfEvalWeight` > 0, the policy's self-evaluation of the step (self-eval.ts; `selfEvalTerm`);
 * - backup: the child's value is added to every node on its path (Q = mean value, N = visits),
 *   classic Monte Carlo averaging; the released code instead sets Q = r + gamma * V with V the
 *   visit-weighted mean of the children's Q and r a per-step value gain (the same on 0/1 outcomes
 *   with one rollout per node only in expectation).
 * Bounded by `iterations` and a wall-time budget per prompt (`timeS`; with a budget that runs out
 * the search is no longer reproducible, so the defaults leave it loose). With `reroot` (the
 * released code's loop), the first search runs 4 x `iterations` from the root, then the search
 * commits to the root's most visited child (`commitChild`) and searches `iterations` more from
 * there, keeping its subtree, until the committed step ends the answer or reaches `maxDepth`.
 * Pairs: at every expanded node (with `reroot`: at every root searched from, as the released
 * code), the child of the highest Q vs the child of the lowest Q when they differ by at least
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
  /** The self-evaluation term added to every value of this node (selfEvalTerm; 0 when off). */
  selfEval: number;
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
    selfEval: 0,
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
 * The self-evaluation term of a new child, as the released code scores a step: `weight` times the
 * policy's confidence that the step is right, divided by max(parentDepth - 3, 1) (it penalises long
 * answers); a confidence of 0 (no option answered) inherits the parent's term (`parentTerm`).
 */
export function selfEvalTerm(
  confidence: number,
  parentDepth: number,
  parentTerm: number,
  weight: number,
): number {
  if (!(confidence >= 0 && confidence <= 1 + 1e-9))
    throw new AttuneError(`selfEvalTerm: expected a confidence in [0, 1], found ${confidence}`);
  const term = (weight * confidence) / Math.max(parentDepth - 3, 1);
  return term === 0 ? parentTerm : term;
}

/**
 * The child the search commits to before re-rooting: the most visited one, ties broken by the
 * higher Q, then the first (the released code at mcts_temperature 0).
 */
export function commitChild(node: StepNode): StepNode {
  if (node.children.length === 0) throw new AttuneError('commitChild: the node has no children');
  let best = node.children[0]!;
  for (const c of node.children.slice(1))
    if (c.visits > best.visits || (c.visits === best.visits && qValue(c) > qValue(best))) best = c;
  return best;
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
 * by at least `margin` (margin > 0, so equal Q never pair). With `at`, only at those nodes.
 */
export function stepPairs(root: StepNode, margin: number, at?: readonly StepNode[]): StepPair[] {
  if (!(margin > 0)) throw new AttuneError(`stepPairs: margin: expected a number > 0, found ${margin}`);
  const only = at ? new Set(at) : null;
  const out: StepPair[] = [];
  const visit = (node: StepNode) => {
    const seen = node.children.filter((c) => c.visits > 0);
    if (seen.length >= 2 && (!only || only.has(node))) {
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
  /** Weight of the self-evaluation term (0 or absent: the outcome only, no self-evaluation asked). */
  selfEvalWeight?: number;
  /** Re-root the search at the committed step (see the file comment); absent: one search from the root. */
  reroot?: boolean;
}

/** The policy's confidence that each answer so far (a node's prefix) is heading right (self-eval.ts). */
export type SelfEvaluator = (proposed: readonly string[]) => number[];

/** Optional hooks of a search: the self-evaluator (needed when selfEvalWeight > 0), a search-start callback. */
export interface SearchHooks {
  selfEvaluate?: SelfEvaluator;
  /** Called as each search (from the root, then from each committed step) starts. */
  onSearch?: (top: StepNode, iterations: number) => void;
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
  /** The nodes searched from: the root, then each committed step (with reroot). */
  roots: StepNode[];
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
  hooks: SearchHooks = {},
): SearchResult {
  const tokenizer = policy.tokenizer;
  if (!tokenizer) throw new AttuneError('mcts: the policy has no tokenizer');
  const weight = options.selfEvalWeight ?? 0;
  if (!(weight >= 0)) throw new AttuneError(`mcts: selfEvalWeight: expected a number >= 0, found ${weight}`);
  if (weight > 0 && !hooks.selfEvaluate)
    throw new AttuneError('mcts: selfEvalWeight > 0 needs a self-evaluator (hooks.selfEvaluate)');
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
  // the outcome plus the node's self-evaluation term; at weight 0 exactly the outcome
  const mixed = (n: StepNode, outcome: number) => (weight > 0 ? outcome + n.selfEval : outcome);
  const searchFrom = (top: StepNode, iterations: number) => {
    hooks.onSearch?.(top, iterations);
    for (let i = 0; i < iterations && now() < deadline; i++, it++) iterate(top);
  };
  const iterate = (top: StepNode) => {
    const path = [top];
    let node = top;
    while (node.expanded && !node.terminal) {
      node = selectChild(node, options.cPuct);
      path.push(node);
    }
    if (node.terminal && node.terminalValue !== null) {
      backup(path, node.terminalValue);
      return;
    }
    if (node.depth >= options.maxDepth) {
      // too deep to expand: a leaf valued by one rollout
      const [r] = generate([prompt + node.prefix], options.rolloutTokens, ['\n'], 1);
      const [outcome] = evaluate([`${node.prefix} ${r!.text ?? ''}`.trim()]);
      node.terminal = true;
      node.terminalValue = mixed(node, outcome!);
      backup(path, node.terminalValue);
      return;
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
      const [outcome] = evaluate([node.prefix.trim()]);
      node.terminal = true;
      node.terminalValue = mixed(node, outcome!);
      backup(path, node.terminalValue);
      return;
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
    const outcomes = evaluate(responses);
    if (weight > 0) {
      // the policy judges each new step (the answer so far with it); mixed into every value of the child
      const confidences = hooks.selfEvaluate!(node.children.map((c) => c.prefix));
      if (confidences.length !== node.children.length)
        throw new AttuneError(
          `mcts: the self-evaluator scored ${confidences.length} of ${node.children.length} steps`,
        );
      node.children.forEach((c, i) => {
        c.selfEval = selfEvalTerm(confidences[i]!, node.depth, node.selfEval, weight);
      });
    }
    node.children.forEach((c, i) => {
      const v = mixed(c, outcomes[i]!);
      if (c.terminal) c.terminalValue = v;
      backup([...path, c], v);
    });
  };
  searchFrom(root, options.reroot ? 4 * options.iterations : options.iterations);
  const roots = [root];
  // re-rooting: commit to the most visited step and search again from it, until the answer ends
  for (let top = root; options.reroot && top.children.length > 0 && now() < deadline; ) {
    const next = commitChild(top);
    if (next.terminal || next.depth >= options.maxDepth) break;
    roots.push(next);
    top = next;
    searchFrom(top, options.iterations);
  }
  return { root, expanded, evaluations, iterations: it, roots };
}

/**
 * The preference pairs of a search: step pairs (at the nodes `at` when given) with the prompt and
 * steps so far as the prompt.
 */
export function searchPairs(
  prompt: string,
  root: StepNode,
  margin: number,
  at?: readonly StepNode[],
): PreferencePair[] {
  return stepPairs(root, margin, at).map((p) => ({
    prompt: prompt + p.prefix,
    chosen: ` ${p.chosen}`,
    rejected: ` ${p.rejected}`,
    chosen_reward: p.chosenQ,
    rejected_reward: p.rejectedQ,
  }));
}

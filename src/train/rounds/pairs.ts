/**
 * Pure selection rules of the self-improvement rounds (train/rounds/rounds.ts):
 * - `buildPairs`: on-policy preference pairs ("Preference Fine-Tuning of LLMs Should Leverage
 *   Suboptimal, On-Policy Data", Tajwar et al. 2024) from graded samples of the current policy: per
 *   prompt, the highest-reward sample is chosen and the lowest-reward one rejected (the contrast
 *   of the policy's own best and worst answers, a "negative gradient" on its likely mistakes); a
 *   prompt whose samples all tie gives no pair.
 * - `pairConfidence` / `upoSelect`: UPO ("Self-Evolutionary LLMs through Uncertainty-Enhanced
 *   Preference Optimization", Wang et al. 2024): a pseudo-labelled pair is kept (filter) or weighted
 *   by the judge's confidence in its label, estimated from MC-dropout passes of the judge.
 * - `listSelect`: LiST ("Lite Prompted Self-training", Wang et al. 2022): pseudo-labels of the
 *   current model on unlabeled prompts, kept when their confidence reaches a threshold (optionally
 *   only the most confident fraction).
 */
import { AttuneError } from '../../errors.ts';
import { normalCdf } from '../../tensor/special.ts';

/** One sampled response of the policy to `prompt`, with its reward (higher is better). */
export interface GradedSample {
  prompt: string;
  response: string;
  reward: number;
}

/** A preference pair (the data/preference.ts JSONL shape), with the rewards that ordered it. */
export interface PreferencePair {
  prompt: string;
  chosen: string;
  rejected: string;
  chosen_reward: number;
  rejected_reward: number;
}

function checkFinite(value: number, where: string): void {
  if (!Number.isFinite(value)) throw new AttuneError(`${where}: expected a finite number, found ${value}`);
}

/**
 * Chosen/rejected pairs from graded samples: per prompt (in first-seen order), the first sample of
 * the highest reward vs the first of the lowest; prompts whose best and worst rewards differ by
 * at most `minGap` (default 0: all equal) give no pair. Identical response texts never pair.
 */
export function buildPairs(
  samples: readonly GradedSample[],
  options: { minGap?: number } = {},
): PreferencePair[] {
  const minGap = options.minGap ?? 0;
  const byPrompt = new Map<string, GradedSample[]>();
  samples.forEach((s, i) => {
    if (typeof s.prompt !== 'string' || typeof s.response !== 'string')
      throw new AttuneError(`sample ${i}: expected string prompt and response`);
    checkFinite(s.reward, `sample ${i} (prompt ${JSON.stringify(s.prompt.slice(0, 40))}): reward`);
    const list = byPrompt.get(s.prompt) ?? [];
    list.push(s);
    byPrompt.set(s.prompt, list);
  });
  const pairs: PreferencePair[] = [];
  for (const [prompt, list] of byPrompt) {
    let best = list[0]!;
    let worst = list[0]!;
    for (const s of list) {
      if (s.reward > best.reward) best = s;
      if (s.reward < worst.reward) worst = s;
    }
    if (best.reward - worst.reward <= minGap || best.response === worst.response) continue;
    pairs.push({
      prompt,
      chosen: best.response,
      rejected: worst.response,
      chosen_reward: best.reward,
      rejected_reward: worst.reward,
    });
  }
  return pairs;
}

/**
 * The judge's confidence that a pair's label is right, from T MC-dropout passes: `margins[t]` is
 * the judge's score of chosen minus rejected in pass t (the label says it is positive). The
 * confidence is P(margin > 0) under a normal with the passes' mean and variance, Phi(mean / std)
 * (1 or 0 when every pass agrees exactly).
 */
export function pairConfidence(margins: readonly number[]): number {
  if (margins.length === 0)
    throw new AttuneError('pairConfidence: expected at least one MC-dropout pass, found none');
  margins.forEach((m, t) => {
    checkFinite(m, `pairConfidence: margin of pass ${t}`);
  });
  const mean = margins.reduce((s, m) => s + m, 0) / margins.length;
  const variance = margins.reduce((s, m) => s + (m - mean) ** 2, 0) / margins.length;
  if (variance === 0) return mean > 0 ? 1 : mean < 0 ? 0 : 0.5;
  return normalCdf(mean / Math.sqrt(variance));
}

export interface UpoOptions {
  /** 'filter': keep pairs of confidence >= threshold; 'weight': keep all, weight = confidence. */
  mode: 'filter' | 'weight';
  /** Confidence threshold of 'filter' (default 0.8). */
  threshold?: number;
}

/** UPO's selection of pseudo-labelled `pairs` by their judge confidences (same order). */
export function upoSelect<P>(
  pairs: readonly P[],
  confidences: readonly number[],
  options: UpoOptions,
): { pair: P; weight: number; index: number }[] {
  if (pairs.length !== confidences.length)
    throw new AttuneError(
      `upoSelect: expected one confidence per pair (${pairs.length}), found ${confidences.length}`,
    );
  const threshold = options.threshold ?? 0.8;
  if (!(threshold >= 0 && threshold <= 1))
    throw new AttuneError(`upoSelect: threshold: expected a number in [0, 1], found ${threshold}`);
  confidences.forEach((c, i) => {
    if (!(c >= 0 && c <= 1)) throw new AttuneError(`upoSelect: confidence ${i}: expected [0, 1], found ${c}`);
  });
  const all = pairs.map((pair, index) => ({ pair, weight: confidences[index]!, index }));
  if (options.mode === 'weight') return all;
  if (options.mode !== 'filter')
    throw new AttuneError(`upoSelect: mode: expected 'filter' or 'weight', found ${String(options.mode)}`);
  return all.filter((p) => p.weight >= threshold).map((p) => ({ ...p, weight: 1 }));
}

/** A pseudo-label of the current model: its answer to an unlabeled prompt and its confidence. */
export interface PseudoLabel {
  prompt: string;
  completion: string;
  confidence: number;
}

export interface ListOptions {
  /** Keep labels of confidence >= threshold (default 0). */
  threshold?: number;
  /** Then keep only this most-confident fraction (0, 1] (default 1). */
  topFraction?: number;
}

/**
 * LiST's confidence filter: labels of confidence >= threshold, then the `topFraction` most
 * confident of those (ceil; ties keep the earlier label), in their original order.
 */
export function listSelect(labels: readonly PseudoLabel[], options: ListOptions = {}): PseudoLabel[] {
  const threshold = options.threshold ?? 0;
  const top = options.topFraction ?? 1;
  if (!(top > 0 && top <= 1))
    throw new AttuneError(`listSelect: top_fraction: expected (0, 1], found ${top}`);
  labels.forEach((l, i) => {
    checkFinite(l.confidence, `listSelect: label ${i}: confidence`);
  });
  const kept = labels.map((l, i) => ({ l, i })).filter(({ l }) => l.confidence >= threshold);
  const n = Math.ceil(kept.length * top);
  const best = [...kept].sort((a, b) => b.l.confidence - a.l.confidence || a.i - b.i).slice(0, n);
  return best.sort((a, b) => a.i - b.i).map(({ l }) => l);
}

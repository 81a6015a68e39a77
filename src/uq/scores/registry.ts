/**
 * The uncertainty-score registry (LM-Polygraph definitions; every score is an uncertainty: higher
 * = less sure). A single-pass score is computed from the per-token quantities of an answer
 * (log-prob, entropy, top-1 / top-2 log-probs); `attune eval`, the reports and `attune bench
 * methods` report every registered one. A sampling score needs N sampled answers and is computed
 * only when they are asked for (`eval --samples N`). A new score is one file with one
 * `registerUqScore` / `registerSamplingScore` call (imported by scores/index.ts).
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import type { ChatMessage, Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';
import type { DensityFile } from '../density.ts';
import type { HeadFile } from '../head-file.ts';
import type { AnswerInternals } from '../internals.ts';

/** Per-token quantities of the answer tokens. */
export interface AnswerTokens {
  /** log p of each answer token given everything before it. */
  logprobs: number[];
  /** Entropy (nats) of each predictive distribution. */
  entropies: number[];
  /** log-prob of the most likely token at each position. */
  top1: number[];
  /** log-prob of the second most likely token. */
  top2: number[];
  /**
   * Per token, sum_i sqrt(q_i) of q = softmax(logits / 2) (TokenStats.sqrtMass), when the full
   * distributions were seen (generation); scores that need it are left out without it.
   */
  sqrtMass?: number[];
  /** Vocabulary size of those distributions (with sqrtMass). */
  vocabSize?: number;
}

/**
 * N answers sampled for one question (seeded, at a temperature), which sampling scores read, and
 * how they cluster answers into meanings.
 */
export interface AnswerSamples {
  /** The sampled answers' texts. */
  texts: string[];
  /** log p of each sampled answer: the sum of its token log-probs. */
  logprobs: number[];
  /** Answers mean the same when their normalised texts are equal ('exact') or ROUGE-L >= threshold. */
  cluster: 'exact' | 'rougeL';
  /** ROUGE-L threshold of the 'rougeL' clustering. */
  rougeThreshold: number;
}

/** A registered single-pass score: computed from the answer's own tokens. */
export interface SinglePassScore extends RegistryEntry {
  needs?: 'tokens';
  /** Reads AnswerTokens.sqrtMass (left out of an answer that lacks it). */
  needsDistribution?: boolean;
  /** The score of a non-empty answer (an empty answer scores 0). */
  compute(t: AnswerTokens): number;
}

/** A registered sampling score: needs N sampled answers of the question (`eval --samples N`). */
export interface SamplingScore extends RegistryEntry {
  needs: 'samples';
  /** Reads the meaning clusters (so its value depends on `AnswerSamples.cluster`). */
  clustered?: boolean;
  /** The score of N >= 2 sampled answers. */
  computeSamples(s: AnswerSamples): number;
}

/**
 * What an extra-pass score may use of one answered question: the model, the question and the
 * greedy answer, its token quantities, and (computed once, on first use) the hidden states and
 * attention of a teacher-forced pass over prompt + answer.
 */
export interface ExtraPassContext {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The question as text: a prompt record's prompt, a chat record's last user message. */
  question: string;
  /** The chat messages of a {messages} record (chat models), else undefined. */
  messages?: ChatMessage[];
  /** Chat template source for rendering messages (default: the tokenizer's). */
  chatTemplate?: string;
  eosTokenIds: readonly number[];
  promptIds: readonly number[];
  /** The greedy answer's tokens (without EOS / the stop-completing token) and its trimmed text. */
  answerIds: readonly number[];
  answer: string;
  tokens: AnswerTokens;
  /** Mean hidden state and previous-token attention of prompt + answer (one cached pass). */
  internals(): AnswerInternals;
  /** A fitted density (attune uq fit-density), for the scores that need one. */
  density?: DensityFile;
  /** Fitted uncertainty heads (attune uq fit-head), at most one per kind. */
  heads?: readonly HeadFile[];
}

/**
 * A registered extra-pass score: costs one more forward pass or generation per question, so it is
 * computed only when asked for (`eval --extra NAME`). NaN means "no value" (e.g. an unparseable
 * verbalised confidence): written as null and left out of that score's metrics, counted.
 */
export interface ExtraPassScore extends RegistryEntry {
  needs: 'extra';
  /** 'density': needs `eval --density FILE` (a fitted density); 'head': `eval --head DIR` of kind `headKind`. */
  requires?: 'density' | 'head';
  /** With requires 'head': the head kind (uq/heads.ts) the score reads. */
  headKind?: string;
  /** Reads AnswerInternals.prevTokenAttention (the internals pass then records attention). */
  needsAttention?: boolean;
  /** The score of a non-empty answer (an empty answer scores 0), or NaN for no value. */
  computeExtra(ctx: ExtraPassContext): number;
}

/** A registered uncertainty score. */
export type UqScore = SinglePassScore | SamplingScore | ExtraPassScore;

/** Every score, in report order. */
export const uqScores = new Registry<UqScore>('uncertainty score', 'score');

/** Register a single-pass score (no options today). */
export function registerUqScore(score: Omit<SinglePassScore, 'options' | 'needs'>): void {
  uqScores.register({ ...score, needs: 'tokens', options: z.object({}) });
}

/** Register a sampling score (no options today). */
export function registerSamplingScore(score: Omit<SamplingScore, 'options' | 'needs'>): void {
  uqScores.register({ ...score, needs: 'samples', options: z.object({}) });
}

/** Register an extra-pass score (no options today). */
export function registerExtraPassScore(score: Omit<ExtraPassScore, 'options' | 'needs'>): void {
  uqScores.register({ ...score, needs: 'extra', options: z.object({}) });
}

/** The registered single-pass scores, in report order. */
export function singlePassScores(): SinglePassScore[] {
  return uqScores.list().filter((s): s is SinglePassScore => s.needs !== 'samples' && s.needs !== 'extra');
}

/** The registered extra-pass scores, in report order. */
export function extraPassScores(): ExtraPassScore[] {
  return uqScores.list().filter((s): s is ExtraPassScore => s.needs === 'extra');
}

/** The registered sampling scores, in report order. */
export function samplingScores(): SamplingScore[] {
  return uqScores.list().filter((s): s is SamplingScore => s.needs === 'samples');
}

/** Quantile (linear interpolation between order statistics, as numpy's default) of `values`. */
export function quantile(values: readonly number[], alpha: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = alpha * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

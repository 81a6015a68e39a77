/**
 * BSDetector confidence of a (prompt, response) pair (Chen & Mueller, "Quantifying Uncertainty in
 * Answers from any Language Model"; the scorer of CLEAR):
 *
 *   C = beta * O + (1 - beta) * S
 *   O = mean over k sampled answers of  alpha * s_i + (1 - alpha) * r_i      (observed consistency)
 *   S = self-reflection certainty: (A) Correct 1, (B) Incorrect 0, (C) Not sure 0.5
 *
 * r_i is exact match of sample i with the response (trimmed). The paper's s_i is 1 - P(contradiction)
 * from an NLI model; without one (METHODS.md) s_i is the model's own agreement under SQuAD
 * normalisation (case, punctuation, articles, spaces). Defaults alpha 0.8, beta 0.7, k 5, samples
 * at temperature 1. S asks the paper's two reflection questions and, instead of sampling the
 * model's letter, reads the probabilities of the letters A, B, C right after `answer:` (renormalised
 * over the three): S is the expected score of the letter the model would write, averaged over the
 * two questions.
 */
import { UsageError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import { type CausalLM, generateBatch, nextTokenLogProbs } from '../models/index.ts';
import { normalizeAnswer } from './grade.ts';

/** The paper's weights and sample count. */
export const BSDETECTOR_DEFAULTS = { alpha: 0.8, beta: 0.7, k: 5, temperature: 1 } as const;

/** Score of each self-reflection choice. */
export const REFLECTION_CHOICE_SCORES = { correct: 1, incorrect: 0, unsure: 0.5 } as const;

/** Probabilities (any scale) the model gives the three reflection choices A, B, C. */
export interface ReflectionChoiceProbs {
  correct: number;
  incorrect: number;
  unsure: number;
}

/** Whether two answers agree exactly (trimmed). */
export function exactAgreement(a: string, b: string): boolean {
  return a.trim() === b.trim();
}

/** Whether two answers agree after SQuAD normalisation (the NLI-free stand-in for 1 - P(contradiction)). */
export function normalisedAgreement(a: string, b: string): boolean {
  return normalizeAnswer(a) === normalizeAnswer(b);
}

function checkWeight(name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0 || value > 1)
    throw new UsageError(`BSDetector: ${name} must be in 0..1, found ${value}`);
}

/** Observed consistency O of `response` with `samples`: mean of alpha * normalised + (1 - alpha) * exact agreement. */
export function observedConsistency(
  response: string,
  samples: readonly string[],
  alpha: number = BSDETECTOR_DEFAULTS.alpha,
): number {
  checkWeight('alpha', alpha);
  if (samples.length === 0)
    throw new UsageError('BSDetector: observed consistency needs at least one sample');
  let sum = 0;
  for (const s of samples) {
    sum +=
      alpha * Number(normalisedAgreement(s, response)) + (1 - alpha) * Number(exactAgreement(s, response));
  }
  return sum / samples.length;
}

/** Expected reflection score of the choice probabilities, renormalised over the three choices. */
export function reflectionScore(probs: ReflectionChoiceProbs): number {
  const total = probs.correct + probs.incorrect + probs.unsure;
  if (!(total > 0)) throw new UsageError('BSDetector: the reflection choices have no probability mass');
  const s = REFLECTION_CHOICE_SCORES;
  return (s.correct * probs.correct + s.incorrect * probs.incorrect + s.unsure * probs.unsure) / total;
}

/** C = beta * O + (1 - beta) * S; without a reflection score (S null) C is O. */
export function bsdetectorConfidence(
  consistency: number,
  reflection: number | null,
  beta: number = BSDETECTOR_DEFAULTS.beta,
): number {
  checkWeight('beta', beta);
  return reflection === null ? consistency : beta * consistency + (1 - beta) * reflection;
}

/**
 * The paper's two self-reflection prompts about `answer` to `question`, shortened to what a small
 * model's context holds; each ends in `answer:` so the next token is the chosen letter.
 */
export function reflectionPrompts(question: string, answer: string): [string, string] {
  const q = question.trim();
  const a = answer.trim();
  const choices = '(A) Correct (B) Incorrect (C) I am not sure.';
  return [
    `Question: ${q} Proposed Answer: ${a} Is the proposed answer: ${choices} answer:`,
    `Question: ${q} Proposed Answer: ${a} Are you really sure the proposed answer is correct? Choose again: ${choices} answer:`,
  ];
}

/** How the confidence of one pair is measured. */
export interface BsdetectorOptions {
  /** Sampled answers (default 5). */
  k?: number;
  alpha?: number;
  beta?: number;
  /** Sampling temperature of the k answers (default 1). */
  temperature?: number;
  /** Self-reflection: 'choices' (the paper's questions, letter probabilities) or 'none' (C = O). */
  reflection?: 'choices' | 'none';
  /** Longest sampled answer in tokens (default 24). */
  maxNewTokens?: number;
  /** Stop strings of a sampled answer (default a newline: an answer is one line). */
  stop?: readonly string[];
  eosTokenIds?: readonly number[];
  /** Base seed; sample j of record i draws with seed + i * k + j. */
  seed?: number;
}

/** What the model says about one pair and its own answer. */
export interface PairConfidence {
  /** C of the given response. */
  confidence: number;
  consistency: number;
  reflection: number | null;
  /** The k sampled answers (trimmed first lines). */
  samples: string[];
  /** The model's greedy answer to the prompt (trimmed first line). */
  modelAnswer: string;
  /** C of the model's own answer (equal to `confidence` when it agrees with the response). */
  modelConfidence: number;
}

/** The ids of the choice letters ' A', ' B', ' C' as the continuation of `answer:` (first token each). */
export function choiceTokenIds(tokenizer: Tokenizer): [number, number, number] {
  const ids = ['A', 'B', 'C'].map((letter) => tokenizer.encodeContinuation(` ${letter}`)[0]);
  if (ids.some((id) => id === undefined) || new Set(ids).size !== 3)
    throw new UsageError(
      'BSDetector: the tokenizer does not give the letters A, B, C distinct tokens; use reflection none',
    );
  return ids as [number, number, number];
}

/** Self-reflection certainty S of `answer` to `question` (mean over the two prompts). */
export function selfReflection(
  model: CausalLM,
  tokenizer: Tokenizer,
  question: string,
  answer: string,
): number {
  const [a, b, c] = choiceTokenIds(tokenizer);
  const limit = model.config.maxPositionEmbeddings;
  let sum = 0;
  for (const prompt of reflectionPrompts(question, answer)) {
    const ids = tokenizer.encode(prompt);
    if (ids.length > limit)
      throw new UsageError(
        `BSDetector: the self-reflection prompt is ${ids.length} tokens, longer than the model's ${limit} positions; use reflection none`,
      );
    const lp = nextTokenLogProbs(model, ids);
    sum += reflectionScore({
      correct: Math.exp(lp[a]!),
      incorrect: Math.exp(lp[b]!),
      unsure: Math.exp(lp[c]!),
    });
  }
  return sum / 2;
}

/** The answer in a sampled continuation: its first line, trimmed. */
function firstLine(text: string): string {
  const newline = text.indexOf('\n');
  return (newline < 0 ? text : text.slice(0, newline)).trim();
}

/**
 * BSDetector confidence of `response` to `prompt` and of the model's own greedy answer: the k
 * samples and the greedy answer are decoded together in one batched generation; the model's answer
 * gets its own reflection score only when it differs from the response. `index` offsets the seeds.
 */
export function scorePair(
  model: CausalLM,
  tokenizer: Tokenizer,
  prompt: string,
  response: string,
  options: BsdetectorOptions = {},
  index = 0,
): PairConfidence {
  const k = options.k ?? BSDETECTOR_DEFAULTS.k;
  if (!Number.isInteger(k) || k < 1)
    throw new UsageError(`BSDetector: k must be an integer >= 1, found ${k}`);
  const promptIds = tokenizer.encode(prompt);
  const seed = (options.seed ?? 0) + index * k;
  const shared = {
    maxNewTokens: options.maxNewTokens ?? 24,
    eosTokenIds: options.eosTokenIds ?? tokenizer.eosTokenIds,
    stopStrings: options.stop ?? ['\n'],
    tokenizer,
  };
  const sampled = generateBatch(
    model,
    Array.from({ length: k }, (_, j) => ({ promptIds, seed: seed + j })),
    { ...shared, temperature: options.temperature ?? BSDETECTOR_DEFAULTS.temperature },
  ).map((g) => firstLine(g.text ?? ''));
  const greedy = firstLine(
    generateBatch(model, [{ promptIds }], { ...shared, temperature: 0 })[0]!.text ?? '',
  );
  const alpha = options.alpha ?? BSDETECTOR_DEFAULTS.alpha;
  const beta = options.beta ?? BSDETECTOR_DEFAULTS.beta;
  const reflect = (options.reflection ?? 'choices') === 'choices';
  const confidenceOf = (answer: string) => {
    const consistency = observedConsistency(answer, sampled, alpha);
    const reflection = reflect ? selfReflection(model, tokenizer, prompt, answer) : null;
    return { consistency, reflection, confidence: bsdetectorConfidence(consistency, reflection, beta) };
  };
  const given = confidenceOf(response);
  const own = exactAgreement(greedy, response) ? given : confidenceOf(greedy);
  return { ...given, samples: sampled, modelAnswer: greedy, modelConfidence: own.confidence };
}

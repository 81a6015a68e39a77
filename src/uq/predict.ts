/**
 * Answer evaluation records with a model: greedy generation, grading against the reference, and
 * the uncertainty scores of the generated answer (single pass, optionally MC dropout).
 */
import { readFileSync } from 'node:fs';
import { jsonTypeName } from '../data/index.ts';
import { DataError, UsageError } from '../errors.ts';
import type { ChatMessage, Tokenizer } from '../io/index.ts';
import { type CausalLM, type GenerateResult, generateBatch } from '../models/index.ts';
import { answerLogits, calibratedConfidence } from './calibrate/apply.ts';
import type { CalibratorFile } from './calibrate/serialize.ts';
import type { DensityFile } from './density.ts';
import { type GradeMetric, grade } from './grade.ts';
import type { HeadFile } from './head-file.ts';
import { type AnswerInternals, answerInternals } from './internals.ts';
import { type McDropoutOptions, mcDropoutScores } from './mc-dropout.ts';
import {
  type AnswerSamples,
  type AnswerTokens,
  type ExtraPassContext,
  extraPassScores,
  type SamplingScore,
  samplingScores,
} from './scores/index.ts';
import { sequenceConfidence, sequenceScores, tokensFromStats } from './scores.ts';

/**
 * One evaluation record: a prompt (or chat messages) and the reference answer. `answerable: false`
 * marks a question with no right answer (every answer is graded wrong).
 */
export interface EvalRecord {
  prompt?: string;
  messages?: ChatMessage[];
  answer: string;
  /** Any other fields are carried into the prediction (e.g. split, entity). */
  [field: string]: unknown;
}

export interface Prediction {
  prompt: string;
  reference: string;
  answer: string;
  correct: boolean;
  /** Uncertainty scores by name (higher = less sure). */
  scores: Record<string, number>;
  /** exp(mean log-prob) of the answer tokens, or the calibrator's output. */
  confidence: number;
  /** With a calibrator: the raw exp(mean log-prob) that `confidence` replaced. */
  uncalibratedConfidence?: number;
  /** log-prob of each answer token (for quantile-based cascades). */
  logprobs: number[];
  /** Extra fields of the record (split, entity, ...). */
  extra: Record<string, unknown>;
}

export interface PredictOptions {
  metric?: GradeMetric;
  maxNewTokens?: number;
  /** Generation stops once the answer contains one of these (e.g. "\n" for one-line answers). */
  stop?: readonly string[];
  /** MC dropout passes (0 = off). */
  mcDropout?: McDropoutOptions & { passes: number };
  eosTokenIds?: readonly number[];
  /** Maps the raw confidence (exp mean log-prob) to a calibrated one. */
  calibrate?: (confidence: number) => number;
  /** A calibrator file applied to every answer (any kind, temperature included); wins over `calibrate`. */
  calibrator?: CalibratorFile;
  /** Greedy answers decoded together (generateBatch), default 1. */
  batch?: number;
  /**
   * Sample N answers per question (decoded together, seeded, at a temperature) and report every
   * sampling score (semantic entropy, lexical similarity, graph scores).
   */
  samples?: AnswerSamplingOptions;
  /**
   * Extra-pass scores to compute (p_true, verbalized, rauq, mahalanobis, relative_mahalanobis):
   * each costs one more forward pass or generation per question.
   */
  extra?: readonly string[];
  /** The fitted density the mahalanobis scores read (uq fit-density). */
  density?: DensityFile;
  /** The fitted heads the head scores read (uq fit-head). */
  heads?: readonly HeadFile[];
  /** With `samples`: called with each record's sampled answers (e.g. to score them clustered another way). */
  onSamples?: (index: number, samples: AnswerSamples) => void;
  /** Called with each record's prompt and greedy answer ids (e.g. to fit a head on their hidden states). */
  onAnswer?: (index: number, ids: { promptIds: readonly number[]; answerIds: readonly number[] }) => void;
  /** Chat template source for {messages} records (default: the tokenizer's). */
  chatTemplate?: string;
  onProgress?: (done: number, total: number) => void;
}

/** How `predict` samples answers for the sampling scores. */
export interface AnswerSamplingOptions {
  /** Answers per question (>= 2). */
  n: number;
  temperature: number;
  /** Base seed: sample j of record i uses seed + i * n + j. */
  seed?: number;
  /** How answers are grouped into meanings (default exact). */
  cluster?: AnswerSamples['cluster'];
  /** ROUGE-L threshold of the rougeL clustering (default 0.5). */
  rougeThreshold?: number;
}

/** The answer a generation gives: the ids and token stats without the EOS / stop-completing token. */
export function keptAnswer(g: GenerateResult): { ids: number[]; logprobs: number[]; text: string } {
  const kept = g.stopReason === 'length' ? g.generatedIds.length : g.generatedIds.length - 1;
  return {
    ids: g.generatedIds.slice(0, kept),
    logprobs: g.tokenStats!.slice(0, kept).map((s) => s.logprob),
    text: (g.text ?? '').trim(),
  };
}

/**
 * N answers sampled for `promptIds` (decoded together, seeded: sample j uses seed + recordIndex * n
 * + j), as the sampling scores read them: texts, summed log-probs, and the clustering asked for.
 */
export function sampleAnswers(
  model: CausalLM,
  tokenizer: Tokenizer,
  promptIds: readonly number[],
  options: AnswerSamplingOptions & {
    maxNewTokens: number;
    stop: readonly string[];
    eosTokenIds: readonly number[];
  },
  recordIndex: number,
): AnswerSamples {
  if (!Number.isInteger(options.n) || options.n < 2)
    throw new UsageError(`--samples: sampling scores need at least 2 samples, found ${options.n}`);
  const base = (options.seed ?? 0) + recordIndex * options.n;
  const results = generateBatch(
    model,
    Array.from({ length: options.n }, (_, j) => ({ promptIds, seed: base + j })),
    {
      maxNewTokens: options.maxNewTokens,
      temperature: options.temperature,
      eosTokenIds: options.eosTokenIds,
      stopStrings: options.stop,
      tokenizer,
      returnStats: true,
    },
  ).map(keptAnswer);
  return {
    texts: results.map((r) => r.text),
    logprobs: results.map((r) => r.logprobs.reduce((s, v) => s + v, 0)),
    cluster: options.cluster ?? 'exact',
    rougeThreshold: options.rougeThreshold ?? 0.5,
  };
}

/** Every registered sampling score of sampled answers (`only`: just those the predicate keeps). */
export function scoresOfSamples(
  samples: AnswerSamples,
  only: (s: SamplingScore) => boolean = () => true,
): Record<string, number> {
  return Object.fromEntries(
    samplingScores()
      .filter(only)
      .map((s) => [s.name, s.computeSamples(samples)]),
  );
}

/** The question text of a record: its prompt, or the last user message of its chat. */
function questionOf(record: EvalRecord): string {
  if (record.prompt !== undefined) return record.prompt;
  const user = [...(record.messages ?? [])].reverse().find((m) => m.role === 'user');
  return typeof user?.content === 'string' ? user.content : '';
}

/**
 * The extra-pass scores named in `names` of one answer (an empty answer scores 0); the internals
 * pass runs at most once, with attention only when a score reads it.
 */
export function extraScoresOf(
  names: readonly string[],
  base: Omit<ExtraPassContext, 'internals' | 'tokens'> & { tokens: AnswerTokens },
): Record<string, number> {
  const wanted = extraPassScores().filter((s) => names.includes(s.name));
  const unknown = names.filter((n) => !wanted.some((s) => s.name === n));
  if (unknown.length > 0)
    throw new UsageError(
      `--extra: unknown score(s) ${unknown.join(', ')} (available: ${extraPassScores()
        .map((s) => s.name)
        .join(', ')})`,
    );
  if (base.answerIds.length === 0) return Object.fromEntries(wanted.map((s) => [s.name, 0]));
  const attention = wanted.some((s) => s.needsAttention);
  let internals: AnswerInternals | undefined;
  const ctx: ExtraPassContext = {
    ...base,
    internals: () => {
      internals ??= answerInternals(base.model, base.promptIds, base.answerIds, { attention });
      return internals;
    },
  };
  return Object.fromEntries(wanted.map((s) => [s.name, s.computeExtra(ctx)]));
}

/** Read `{prompt|messages, answer, ...}` JSONL records; errors name file and line. */
export function readEvalRecords(path: string): EvalRecord[] {
  const records: EvalRecord[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        throw new DataError(path, i + 1, `invalid JSON: ${(err as Error).message}`);
      }
      const r = value as Record<string, unknown>;
      if (typeof r !== 'object' || r === null || Array.isArray(r))
        throw new DataError(path, i + 1, 'expected a JSON object');
      if (!('answer' in r)) {
        const hint = 'completion' in r ? "; found 'completion', which is for training data" : '';
        throw new DataError(path, i + 1, `missing field 'answer' (eval records are {prompt, answer})${hint}`);
      }
      if (typeof r.answer !== 'string')
        throw new DataError(path, i + 1, `field 'answer' must be a string, found ${jsonTypeName(r.answer)}`);
      const hasPrompt = typeof r.prompt === 'string';
      const hasMessages = Array.isArray(r.messages);
      if (hasPrompt === hasMessages)
        throw new DataError(path, i + 1, "expected exactly one of 'prompt' (string) or 'messages' (array)");
      records.push(r as EvalRecord);
    });
  if (records.length === 0) throw new DataError(path, 1, 'no records');
  return records;
}

/** The prompt token ids of a record (its text, or its chat messages rendered with a generation prompt) and that text. */
export function promptIdsOf(
  record: EvalRecord,
  tokenizer: Tokenizer,
  chatTemplate: string | undefined,
): { ids: number[]; text: string } {
  if (record.messages) {
    const options = { addGenerationPrompt: true, chatTemplate };
    const text = tokenizer.applyChatTemplate(record.messages, options);
    return { ids: tokenizer.encodeChat(record.messages, options), text };
  }
  return { ids: tokenizer.encode(record.prompt!), text: record.prompt! };
}

/** Generate, grade and score every record. */
export function predict(
  model: CausalLM,
  tokenizer: Tokenizer,
  records: readonly EvalRecord[],
  options: PredictOptions = {},
): Prediction[] {
  const metric = options.metric ?? 'exact';
  const out: Prediction[] = [];
  const wasTraining = model.training;
  model.eval();
  try {
    const batch = options.batch ?? 1;
    if (!Number.isInteger(batch) || batch < 1)
      throw new UsageError(`--batch: expected an integer >= 1, found ${batch}`);
    const generation = {
      maxNewTokens: options.maxNewTokens ?? 32,
      eosTokenIds: options.eosTokenIds ?? tokenizer.eosTokenIds,
      stopStrings: options.stop ?? [],
      tokenizer,
      returnStats: true,
    };
    const prompts = records.map((record) => promptIdsOf(record, tokenizer, options.chatTemplate));
    // greedy answers, `batch` records decoded together (each equals its answer alone)
    const greedy: GenerateResult[] = [];
    for (let start = 0; start < records.length; start += batch) {
      const chunk = prompts.slice(start, start + batch).map((p) => ({ promptIds: p.ids }));
      greedy.push(...generateBatch(model, chunk, { ...generation, temperature: 0 }));
    }
    records.forEach((record, index) => {
      const { ids: promptIds, text: promptText } = prompts[index]!;
      const g = greedy[index]!;
      // the scored answer excludes the EOS token / the token that completed a stop string; the
      // generation pass already computed each answer token's distribution (same as a
      // teacher-forced pass over prompt + answer)
      const kept = g.stopReason === 'length' ? g.generatedIds.length : g.generatedIds.length - 1;
      const answerIds = g.generatedIds.slice(0, kept);
      const st = g.tokenStats!.slice(0, kept);
      const tokens = tokensFromStats(st);
      const scores: Record<string, number> = { ...sequenceScores(tokens) };
      if (options.mcDropout && options.mcDropout.passes > 0) {
        Object.assign(
          scores,
          mcDropoutScores(model, promptIds, answerIds, {
            ...options.mcDropout,
            seed: (options.mcDropout.seed ?? 0) + index,
          }),
        );
      }
      if (options.samples) {
        const samples = sampleAnswers(
          model,
          tokenizer,
          promptIds,
          { ...options.samples, ...generation, stop: generation.stopStrings },
          index,
        );
        Object.assign(scores, scoresOfSamples(samples));
        options.onSamples?.(index, samples);
      }
      if (options.extra && options.extra.length > 0)
        Object.assign(
          scores,
          extraScoresOf(options.extra, {
            model,
            tokenizer,
            question: questionOf(record),
            messages: record.messages,
            chatTemplate: options.chatTemplate,
            eosTokenIds: generation.eosTokenIds,
            promptIds,
            answerIds,
            answer: (g.text ?? '').trim(),
            tokens,
            density: options.density,
            heads: options.heads,
          }),
        );
      options.onAnswer?.(index, { promptIds, answerIds });
      const raw = sequenceConfidence(tokens);
      const calibrated = options.calibrator
        ? calibratedConfidence(options.calibrator, {
            confidence: raw,
            scores,
            answerIds,
            logits: () => answerLogits(model, promptIds, answerIds),
          })
        : options.calibrate
          ? options.calibrate(raw)
          : raw;
      const answer = (g.text ?? '').trim();
      const { prompt: _p, messages: _m, answer: reference, ...extra } = record;
      out.push({
        prompt: promptText,
        reference,
        answer,
        // a record marked "answerable": false has no right answer: anything said is a hallucination
        correct: record.answerable !== false && grade(answer, reference, metric),
        scores,
        confidence: calibrated,
        ...(options.calibrator || options.calibrate ? { uncalibratedConfidence: raw } : {}),
        logprobs: tokens.logprobs,
        extra,
      });
      options.onProgress?.(index + 1, records.length);
    });
  } finally {
    model.train(wasTraining);
  }
  return out;
}

/**
 * Keep only the scores named in `wanted` on every prediction (in place). An unknown name is a
 * UsageError listing the available ones.
 */
export function selectScores(predictions: Prediction[], wanted: readonly string[]): void {
  const known = Object.keys(predictions[0]?.scores ?? {});
  const unknown = wanted.filter((w) => !known.includes(w));
  if (unknown.length > 0)
    throw new UsageError(`--scores: unknown score(s) ${unknown.join(', ')} (available: ${known.join(', ')})`);
  for (const p of predictions)
    for (const k of Object.keys(p.scores)) if (!wanted.includes(k)) delete p.scores[k];
}

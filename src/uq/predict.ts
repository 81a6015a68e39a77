/**
 * Answer evaluation records with a model: greedy generation, grading against the reference, and
 * the uncertainty scores of the generated answer (single pass, optionally MC dropout).
 */
import { readFileSync } from 'node:fs';
import { jsonTypeName } from '../data/index.ts';
import { DataError, UsageError } from '../errors.ts';
import type { ChatMessage, Tokenizer } from '../io/index.ts';
import { type CausalLM, generate } from '../models/index.ts';
import { answerLogits, calibratedConfidence } from './calibrate/apply.ts';
import type { CalibratorFile } from './calibrate/serialize.ts';
import { type GradeMetric, grade } from './grade.ts';
import { type McDropoutOptions, mcDropoutScores } from './mc-dropout.ts';
import { sequenceConfidence, sequenceScores } from './scores.ts';

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
  /** Chat template source for {messages} records (default: the tokenizer's). */
  chatTemplate?: string;
  onProgress?: (done: number, total: number) => void;
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
    records.forEach((record, index) => {
      const { ids: promptIds, text: promptText } = promptIdsOf(record, tokenizer, options.chatTemplate);
      const g = generate(model, promptIds, {
        maxNewTokens: options.maxNewTokens ?? 32,
        temperature: 0,
        eosTokenIds: options.eosTokenIds ?? tokenizer.eosTokenIds,
        stopStrings: options.stop ?? [],
        tokenizer,
        returnStats: true,
      });
      // the scored answer excludes the EOS token / the token that completed a stop string; the
      // generation pass already computed each answer token's distribution (same as a
      // teacher-forced pass over prompt + answer)
      const kept = g.stopReason === 'length' ? g.generatedIds.length : g.generatedIds.length - 1;
      const answerIds = g.generatedIds.slice(0, kept);
      const st = g.tokenStats!.slice(0, kept);
      const tokens = {
        logprobs: st.map((s) => s.logprob),
        entropies: st.map((s) => s.entropy),
        top1: st.map((s) => s.top1),
        top2: st.map((s) => s.top2),
      };
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

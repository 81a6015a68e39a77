/**
 * The `attune` field of every choice the server returns: the single-pass uncertainty scores of the
 * answer (uq/ scores.ts, the same numbers `attune eval` reports), its confidence exp(mean log-prob),
 * the calibrated confidence when the served model has a calibrator, and `abstain` when the
 * confidence (calibrated when there is one) is below the configured threshold. The answer is the
 * generated tokens without the EOS or the stop-completing token, as in eval.
 */
import { ConfigError } from '../errors.ts';
import type { CausalLM } from '../models/index.ts';
import {
  type AdapterIdentity,
  adapterIdentity,
  answerLogits,
  type CalibratorFile,
  calibratedConfidence,
  checkCalibratorScore,
  checkFittedModel,
  type ModelIdentity,
  modelIdentity,
  SCORE_NAMES,
  sequenceConfidence,
  sequenceScores,
  tokensFromStats,
} from '../uq/index.ts';
import type { SequenceResult } from './engine.ts';
import type { AdapterRouter } from './multi-lora.ts';

/** What a client reads in `choices[i].attune`. */
export interface AttuneField {
  /** The served model id of the request (`base` or `base:adapter`). */
  model: string;
  /** exp(mean log-prob) of the answer tokens, calibrated when a calibrator applies. */
  confidence: number;
  /** The raw exp(mean log-prob) (equal to confidence without a calibrator). */
  uncalibrated_confidence: number;
  /** Whether `confidence` went through the calibrator. */
  calibrated: boolean;
  /** Uncertainty scores (higher = less sure): msp, log_perplexity, mean_entropy, ... */
  scores: Record<string, number>;
  /** confidence < the abstain threshold (false when no threshold is set). */
  abstain: boolean;
  abstain_threshold: number | null;
  /** Answer tokens scored (EOS / stop-completing token excluded). */
  answer_tokens: number;
  stop_reason: SequenceResult['stopReason'];
}

/** The calibrator and the abstain rule of a server. */
export interface UncertaintySettings {
  calibrator: CalibratorFile | null;
  /** Adapter indices (-1 = base) the calibrator was fitted on (all when it names no model). */
  calibrated: ReadonlySet<number>;
  abstainThreshold: number | null;
}

/**
 * Which served models (-1 = base, i = adapter i) `calibrator` applies to: all when it was fitted
 * from a predictions file; else the base or the adapter it was fitted on. A ConfigError (naming the
 * file) when it fits none of them or maps a score the server does not compute.
 */
export function calibratedTargets(
  calibrator: CalibratorFile,
  modelDir: string,
  adapterDirs: readonly string[],
): Set<number> {
  checkCalibratorScore(calibrator, ['confidence', ...SCORE_NAMES]);
  const all = new Set([-1, ...adapterDirs.map((_, i) => i)]);
  if (!calibrator.fittedOn?.model) return all;
  const base: ModelIdentity = modelIdentity(modelDir);
  const identities: (AdapterIdentity | null)[] = [null, ...adapterDirs.map((d) => adapterIdentity(d))];
  const fits = new Set<number>();
  const reasons: string[] = [];
  identities.forEach((identity, i) => {
    try {
      checkFittedModel(calibrator.fittedOn!, calibrator.path, base, identity);
      fits.add(i - 1);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      reasons.push(error.message);
    }
  });
  if (fits.size === 0)
    throw new ConfigError(
      `${calibrator.path}: fits neither the base nor any --adapter served: ${reasons[0] ?? ''}`,
    );
  return fits;
}

/** The `attune` field of one finished sequence (see the file comment). */
export function attuneField(
  result: SequenceResult,
  request: { promptIds: readonly number[]; adapter: number; modelId: string },
  settings: UncertaintySettings,
  model: CausalLM,
  router: AdapterRouter,
): AttuneField {
  const kept = result.tokens.slice(0, result.answerTokens);
  const tokens = tokensFromStats(kept.map((t) => t.stats));
  const raw = sequenceConfidence(tokens);
  const scores = sequenceScores(tokens);
  const answerIds = kept.map((t) => t.id);
  const calibrated = settings.calibrator !== null && settings.calibrated.has(request.adapter);
  const confidence = calibrated
    ? calibratedConfidence(settings.calibrator!, {
        confidence: raw,
        scores,
        answerIds,
        // temperature scaling rescales the answer's logits: one teacher-forced pass on its adapter
        logits: () =>
          router.withAdapter(request.adapter, 1, () => answerLogits(model, request.promptIds, answerIds)),
      })
    : raw;
  const threshold = settings.abstainThreshold;
  return {
    model: request.modelId,
    confidence,
    uncalibrated_confidence: raw,
    calibrated,
    scores,
    abstain: threshold !== null && confidence < threshold,
    abstain_threshold: threshold,
    answer_tokens: result.answerTokens,
    stop_reason: result.stopReason,
  };
}

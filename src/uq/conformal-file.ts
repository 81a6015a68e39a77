/** Abstention threshold files (`attune calibrate conformal --out`, read by `attune eval --abstain`). */
import { FormatError } from '../errors.ts';
import { describeJsonValue, isJsonObject, readJson, writeJsonAtomic } from '../io/index.ts';
import {
  type AbstentionOutcome,
  CONFORMAL_GUARANTEES,
  type ConformalGuarantee,
  type ConformalResult,
} from './conformal.ts';

/** The `type` of a threshold file. */
export const THRESHOLD_FILE_TYPE = 'abstention_threshold';
/** The version written and read. */
export const THRESHOLD_FORMAT_VERSION = 1;

/** An outcome as JSON (snake_case keys). */
export interface AbstentionOutcomeJSON {
  n: number;
  answered: number;
  coverage: number | null;
  risk: number | null;
  selective_risk: number | null;
}

/** A threshold file: the threshold, how it was chosen, and on which confidence field. */
export interface ThresholdJSON {
  type: typeof THRESHOLD_FILE_TYPE;
  version: number;
  /** Answer when confidence >= threshold; null = abstain on everything. */
  threshold: number | null;
  /** The prediction field the threshold applies to (e.g. "confidence"). */
  confidence: string;
  guarantee: ConformalGuarantee;
  alpha: number;
  delta: number | null;
  bound: number | null;
  calibration: AbstentionOutcomeJSON;
  note: string | null;
}

/** An outcome with snake_case keys, as files and --json write it. */
export function outcomeJSON(o: AbstentionOutcome): AbstentionOutcomeJSON {
  return {
    n: o.n,
    answered: o.answered,
    coverage: o.coverage,
    risk: o.risk,
    selective_risk: o.selectiveRisk,
  };
}

/** The file form of a chosen threshold for confidence field `field`. */
export function thresholdJSON(result: ConformalResult, field: string): ThresholdJSON {
  return {
    type: THRESHOLD_FILE_TYPE,
    version: THRESHOLD_FORMAT_VERSION,
    threshold: result.threshold,
    confidence: field,
    guarantee: result.guarantee,
    alpha: result.alpha,
    delta: result.delta,
    bound: result.bound,
    calibration: outcomeJSON(result.calibration),
    note: result.note,
  };
}

/** Write a threshold file atomically. */
export function saveThreshold(path: string, value: ThresholdJSON): void {
  writeJsonAtomic(path, value);
}

/** Read a threshold file; anything else is a FormatError naming the file and the field. */
export function loadThreshold(path: string): ThresholdJSON {
  const value = readJson(path);
  const fail = (what: string): never => {
    throw new FormatError(path, what);
  };
  if (!isJsonObject(value))
    fail(`expected an abstention threshold object, found ${describeJsonValue(value)}`);
  const v = value as Record<string, unknown>;
  if (v.type !== THRESHOLD_FILE_TYPE)
    fail(
      `type: expected '${THRESHOLD_FILE_TYPE}' (written by attune calibrate conformal --out), found ${JSON.stringify(v.type) ?? 'nothing'}`,
    );
  if (v.version !== THRESHOLD_FORMAT_VERSION)
    fail(
      `version: this Attune reads threshold format version ${THRESHOLD_FORMAT_VERSION}, found ${JSON.stringify(v.version) ?? 'nothing'}`,
    );
  if (v.threshold !== null && (typeof v.threshold !== 'number' || !Number.isFinite(v.threshold)))
    fail(`threshold: expected a finite number or null, found ${JSON.stringify(v.threshold) ?? 'nothing'}`);
  if (typeof v.confidence !== 'string' || v.confidence === '')
    fail(
      `confidence: expected the name of a confidence field, found ${JSON.stringify(v.confidence) ?? 'nothing'}`,
    );
  if (!CONFORMAL_GUARANTEES.includes(v.guarantee as ConformalGuarantee))
    fail(
      `guarantee: expected ${CONFORMAL_GUARANTEES.join(' or ')}, found ${JSON.stringify(v.guarantee) ?? 'nothing'}`,
    );
  if (typeof v.alpha !== 'number' || !(v.alpha > 0 && v.alpha < 1))
    fail(`alpha: expected a number in (0, 1), found ${JSON.stringify(v.alpha) ?? 'nothing'}`);
  return v as unknown as ThresholdJSON;
}

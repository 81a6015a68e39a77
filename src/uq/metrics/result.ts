/**
 * What every uncertainty metric returns — a value, or null with the reason the metric is undefined
 * for the input — and the error for inputs no metric or calibrator can use.
 */
import { AttuneError } from '../../errors.ts';

/**
 * A metric's value, or `null` with the reason it is undefined for this input (one class only, all
 * qualities equal, empty input, ...). Check `value === null` to narrow.
 */
export type MetricResult = { value: number; reason?: undefined } | { value: null; reason: string };

/**
 * Inputs a metric or calibrator cannot use at all: mismatched lengths, NaN, a confidence outside
 * [0, 1], a label that is not binary, invalid calibrator parameters.
 */
export class UqInputError extends AttuneError {}

/** A defined metric value. */
export function metricValue(value: number): MetricResult {
  return { value };
}

/** An undefined metric, with the reason. */
export function metricUndefined(reason: string): MetricResult {
  return { value: null, reason };
}

/** Reason used by every metric for an empty input. */
export const EMPTY_INPUT_REASON = 'empty input (no predictions)';

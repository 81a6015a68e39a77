/**
 * The uncertainty-metric registry: every metric `attune uq metrics`, `attune eval`, the reports and
 * `attune bench methods` print is an entry here, computed from binary correctness and a score.
 * Ranking metrics read an uncertainty (higher = less sure; for a confidence, its negation);
 * calibration metrics also need the confidence itself (in [0, 1]) and are undefined without one.
 * A new metric is one entry in a metrics file (ranking.ts, selective.ts, calibration.ts, or a new
 * one imported by metrics/index.ts) with one `registerUqMetric` call.
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import type { MetricResult } from './result.ts';

/** What a metric is computed from. */
export interface MetricInputs {
  /** 1 = the answer was correct. */
  correct: Uint8Array;
  /** Higher = less sure (for a confidence input: -confidence, which ranks like 1 - confidence). */
  uncertainty: ArrayLike<number>;
  /** The confidence in [0, 1] when the input is one, else null. */
  confidence: Float64Array | null;
  /** Equal-width bins of binned calibration metrics. */
  bins: number;
}

/** A registered metric. */
export interface UqMetric extends RegistryEntry {
  /** 'ranking': needs only an ordering; 'calibration': needs a confidence in [0, 1]. */
  readonly needs: 'ranking' | 'calibration';
  /** Higher is better (AUROC) or lower is better (ECE), for tables and headlines. */
  readonly better: 'higher' | 'lower';
  compute(inputs: MetricInputs): MetricResult;
}

/** Every uncertainty metric, in registration order (the order tables print them). */
export const uqMetrics = new Registry<UqMetric>('uncertainty metric', 'metric');

/** Register a metric (options: none today; the bins come with the inputs). */
export function registerUqMetric(metric: Omit<UqMetric, 'options'>): void {
  uqMetrics.register({ ...metric, options: z.object({}) });
}

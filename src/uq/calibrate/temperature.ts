/**
 * Temperature scaling (Guo et al. 2017): one T > 0 divides every token's logits, fitted to minimise
 * the NLL of held-out tokens. Dividing by a positive T never changes the argmax, so accuracy is
 * untouched; only the confidence moves.
 */
import { UqInputError } from '../metrics/result.ts';
import { CALIBRATOR_FORMAT_VERSION, type CalibratorJSON } from './format.ts';
import { brentMinimize } from './minimize.ts';

/** Temperature scaling as JSON. */
export type TemperatureCalibratorJSON = CalibratorJSON<'temperature', { temperature: number }>;

/**
 * Token logits: one row per token (each of the vocabulary size), or one flat row-major buffer
 * (e.g. a Float32Array of tokens x vocab) with its `vocabSize`.
 */
export type LogitsInput = readonly ArrayLike<number>[] | { data: ArrayLike<number>; vocabSize: number };

/** Options of `fitTemperature`. */
export interface TemperatureFitOptions {
  /** Starting temperature; default 1.5. */
  init?: number;
  /** The search interval [min, max] of T; default [0.01, 100]. */
  bounds?: readonly [number, number];
  /** Tokens with this label are skipped (the Hugging Face masking convention); default -100. */
  ignoreIndex?: number;
}

/** A fitted temperature: `apply(logits)` gives softmax(logits / T). */
export class TemperatureCalibrator {
  readonly type = 'temperature' as const;

  /** A calibrator dividing logits by `temperature` (finite, > 0). */
  constructor(readonly temperature: number) {
    if (!Number.isFinite(temperature) || temperature <= 0) {
      throw new UqInputError(`temperature: expected a finite number > 0, found ${temperature}`);
    }
  }

  /** logits / T. */
  scaleLogits(logits: ArrayLike<number>): Float64Array {
    const out = new Float64Array(logits.length);
    for (let j = 0; j < logits.length; j++) out[j] = logits[j]! / this.temperature;
    return out;
  }

  /** The calibrated distribution softmax(logits / T) of one token. */
  apply(logits: ArrayLike<number>): Float64Array {
    const out = this.scaleLogits(logits);
    let max = Number.NEGATIVE_INFINITY;
    for (const z of out) max = Math.max(max, z);
    let sum = 0;
    for (let j = 0; j < out.length; j++) {
      out[j] = Math.exp(out[j]! - max);
      sum += out[j]!;
    }
    for (let j = 0; j < out.length; j++) out[j]! /= sum;
    return out;
  }

  /** `{type: 'temperature', version, params: {temperature}}`. */
  toJSON(): TemperatureCalibratorJSON {
    return {
      type: 'temperature',
      version: CALIBRATOR_FORMAT_VERSION,
      params: { temperature: this.temperature },
    };
  }
}

/** A held-out token: its logits (`vocab` values of `data` from `offset`), their maximum and the gold id. */
interface Token {
  data: ArrayLike<number>;
  offset: number;
  max: number;
  gold: number;
}

function collectTokens(
  logits: LogitsInput,
  labels: ArrayLike<number>,
  ignoreIndex: number,
): {
  tokens: Token[];
  vocab: number;
} {
  const rows: { data: ArrayLike<number>; offset: number }[] = [];
  let vocab: number;
  if (Array.isArray(logits)) {
    const list = logits as readonly ArrayLike<number>[];
    vocab = list[0]?.length ?? 0;
    list.forEach((row, r) => {
      if (row.length !== vocab) {
        throw new UqInputError(`logits row ${r}: expected ${vocab} values (as row 0), found ${row.length}`);
      }
      rows.push({ data: row, offset: 0 });
    });
  } else {
    const flat = logits as { data: ArrayLike<number>; vocabSize: number };
    vocab = flat.vocabSize;
    if (!Number.isInteger(vocab) || vocab < 1 || flat.data.length % vocab !== 0) {
      throw new UqInputError(
        `logits: a flat buffer of ${flat.data.length} values is not a whole number of rows of vocabSize ${vocab}`,
      );
    }
    for (let r = 0; r < flat.data.length / vocab; r++) rows.push({ data: flat.data, offset: r * vocab });
  }
  if (rows.length !== labels.length) {
    throw new UqInputError(`fitTemperature: ${rows.length} logits rows but ${labels.length} labels`);
  }
  const tokens: Token[] = [];
  rows.forEach(({ data, offset }, r) => {
    const label = labels[r]!;
    if (label === ignoreIndex) return;
    if (!Number.isInteger(label) || label < 0 || label >= vocab) {
      throw new UqInputError(
        `labels[${r}]: expected a token id in [0, ${vocab}) or ${ignoreIndex}, found ${label}`,
      );
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < vocab; j++) {
      const z = data[offset + j]!;
      if (!Number.isFinite(z)) throw new UqInputError(`logits row ${r}, column ${j}: not finite (${z})`);
      max = Math.max(max, z);
    }
    tokens.push({ data, offset, max, gold: data[offset + label]! });
  });
  return { tokens, vocab };
}

function meanNll(tokens: readonly Token[], vocab: number, temperature: number): number {
  const inverse = 1 / temperature;
  let total = 0;
  for (const { data, offset, max, gold } of tokens) {
    let sum = 0;
    for (let j = 0; j < vocab; j++) sum += Math.exp((data[offset + j]! - max) * inverse);
    total += Math.log(sum) + (max - gold) * inverse;
  }
  return total / tokens.length;
}

/**
 * Mean NLL (nats) of the gold tokens under softmax(logits / T), skipping tokens labelled
 * `ignoreIndex` (default -100): the objective `fitTemperature` minimises.
 */
export function temperatureNll(
  logits: LogitsInput,
  labels: ArrayLike<number>,
  temperature: number,
  options: Pick<TemperatureFitOptions, 'ignoreIndex'> = {},
): number {
  const { tokens, vocab } = collectTokens(logits, labels, options.ignoreIndex ?? -100);
  if (tokens.length === 0)
    throw new UqInputError('temperatureNll: no tokens (all labels ignored or empty input)');
  return meanNll(tokens, vocab, new TemperatureCalibrator(temperature).temperature);
}

/**
 * Fit one temperature T to held-out token logits and gold ids (labels equal to `ignoreIndex`,
 * default -100, are skipped): T minimises the mean NLL of softmax(logits / T), found by Brent's
 * bounded 1-D search on log T within `bounds` (default [0.01, 100]) starting at `init` (1.5). The
 * NLL is unimodal in log T, so this is the global minimum on the interval; a result at a bound
 * means the data wants a more extreme T (e.g. every held-out token is right with a margin).
 */
export function fitTemperature(
  logits: LogitsInput,
  labels: ArrayLike<number>,
  options: TemperatureFitOptions = {},
): TemperatureCalibrator {
  const [minT, maxT] = options.bounds ?? [0.01, 100];
  const init = options.init ?? 1.5;
  if (!(minT > 0 && maxT > minT && Number.isFinite(maxT))) {
    throw new UqInputError(
      `fitTemperature bounds: expected 0 < min < max < infinity, found [${minT}, ${maxT}]`,
    );
  }
  if (!(init >= minT && init <= maxT)) {
    throw new UqInputError(
      `fitTemperature init: expected a temperature in [${minT}, ${maxT}], found ${init}`,
    );
  }
  const { tokens, vocab } = collectTokens(logits, labels, options.ignoreIndex ?? -100);
  if (tokens.length === 0)
    throw new UqInputError('fitTemperature: no tokens to fit (all labels ignored or empty input)');
  const best = brentMinimize(
    (logT) => meanNll(tokens, vocab, Math.exp(logT)),
    Math.log(minT),
    Math.log(maxT),
    Math.log(init),
  );
  return new TemperatureCalibrator(Math.exp(best.x));
}

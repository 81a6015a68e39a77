import { ConfigError, TensorMismatchError, UsageError } from '../errors.ts';
import { openCheckpoint, type TensorReader } from '../io/index.ts';
import { checkSameArchitecture } from '../models/index.ts';
import {
  formatShape,
  leftSingularVectors,
  type Matrix64,
  matmul64,
  tensorToMatrix64,
} from '../tensor/index.ts';
import { loraUpdate, openLoraDelta } from './lora-delta.ts';

/** Tuned singular vectors checked per matrix (the paper's default). */
export const DEFAULT_INTRUDER_TOP_K = 10;
/** Largest |cos| below which a tuned vector is an intruder (the paper's default). */
export const DEFAULT_INTRUDER_THRESHOLD = 0.5;

/** The matrices analysed unless told otherwise: every 2-D tensor but the vocabulary-sized ones. */
export const DEFAULT_EXCLUDED_MATRICES = /(^|\.)(embed_tokens|lm_head)\.weight$/;

/** Result of comparing one pair of matrices. */
export interface IntruderCount {
  /** How many of the top-k tuned singular vectors are intruders. */
  intruders: number;
  /** The k actually used (min(topK, out, in)). */
  topK: number;
  /** For each of the top-k tuned vectors, in order: max_i |cos(u'_j, u_i)|. */
  maxCos: number[];
  /** 0-based ranks (among the top k) of the intruders. */
  intruderRanks: number[];
}

function checkOptions(topK: number, threshold: number): void {
  if (!Number.isInteger(topK) || topK < 1)
    throw new ConfigError(`intruders: top-k must be an integer >= 1, found ${topK}`);
  if (!(threshold > 0 && threshold <= 1))
    throw new ConfigError(`intruders: the threshold must be in (0, 1], found ${threshold}`);
}

/**
 * Intruders among the columns of `tunedTop` (m x k, unit vectors) against the columns of `baseU`
 * (m x p, orthonormal): u'_j is an intruder when max_i |<u'_j, u_i>| < threshold.
 */
export function intrudersFromVectors(baseU: Matrix64, tunedTop: Matrix64, threshold: number): IntruderCount {
  if (baseU.rows !== tunedTop.rows) {
    throw new RangeError(
      `intrudersFromVectors: base vectors have ${baseU.rows} rows, tuned ${tunedTop.rows}`,
    );
  }
  const cos = matmul64(tunedTop, baseU, { transA: true }); // k x p
  const maxCos: number[] = [];
  const intruderRanks: number[] = [];
  for (let j = 0; j < cos.rows; j++) {
    let best = 0;
    for (let i = 0; i < cos.cols; i++) best = Math.max(best, Math.abs(cos.data[j * cos.cols + i]!));
    maxCos.push(best);
    if (best < threshold) intruderRanks.push(j);
  }
  return { intruders: intruderRanks.length, topK: cos.rows, maxCos, intruderRanks };
}

/**
 * Intruder dimensions of `tuned` relative to `base` (same shape): full SVD of the base, top-k left
 * singular vectors of the tuned matrix, count of those with max |cos| < threshold.
 */
export function countIntruders(
  base: Matrix64,
  tuned: Matrix64,
  options: { topK?: number; threshold?: number } = {},
): IntruderCount {
  const topK = options.topK ?? DEFAULT_INTRUDER_TOP_K;
  const threshold = options.threshold ?? DEFAULT_INTRUDER_THRESHOLD;
  checkOptions(topK, threshold);
  if (base.rows !== tuned.rows || base.cols !== tuned.cols) {
    throw new RangeError(
      `countIntruders: base is ${base.rows} x ${base.cols}, tuned ${tuned.rows} x ${tuned.cols}`,
    );
  }
  const baseU = leftSingularVectors(base).u;
  const top = leftSingularVectors(tuned, { count: topK }).u;
  return intrudersFromVectors(baseU, top, threshold);
}

/** Options of `analyzeIntruders`. */
export interface AnalyzeIntrudersOptions {
  /** Base model directory. */
  base: string;
  /** Fully fine-tuned model directory (exactly one of `tuned`, `adapter`). */
  tuned?: string;
  /** LoRA adapter directory, applied to the base as W + scaling B A. */
  adapter?: string;
  /** Tuned singular vectors compared (default 10). */
  topK?: number;
  /** Cosine below which a tuned vector is an intruder (default 0.5). */
  threshold?: number;
  /**
   * Which 2-D tensors to analyse (a regex over tensor names). Default: every 2-D tensor except
   * the token embedding and the LM head (vocabulary-sized; their SVDs are costly).
   */
  matrices?: RegExp | null;
  /** Called before each matrix (index from 0) with the total count. */
  onMatrix?: (index: number, total: number, name: string) => void;
}

/** Per-matrix result (snake_case: also the --json form). */
export interface MatrixIntruders {
  name: string;
  shape: [number, number];
  intruders: number;
  top_k: number;
  threshold: number;
  /** Smallest max-|cos| among the top-k tuned vectors (below the threshold iff any intruder). */
  min_max_cos: number;
  /** max |cos| of each of the top-k tuned vectors, in singular-value order. */
  max_cos: number[];
  /** 0-based ranks of the intruders among the top k. */
  intruder_ranks: number[];
}

/** What `analyzeIntruders` found. */
export interface IntruderReport {
  base: string;
  tuned: string | null;
  adapter: string | null;
  top_k: number;
  threshold: number;
  matrices: MatrixIntruders[];
  totals: { matrices: number; intruders: number; matrices_with_intruders: number };
}

function selected(reader: TensorReader, name: string, filter: RegExp | null): boolean {
  if (reader.info(name).shape.length !== 2) return false;
  return filter ? filter.test(name) : !DEFAULT_EXCLUDED_MATRICES.test(name);
}

function readMatrix(reader: TensorReader, name: string): Matrix64 {
  const t = reader.read(name, { dtype: 'f32' });
  try {
    return tensorToMatrix64(t);
  } finally {
    t.release();
  }
}

function summarise(
  name: string,
  shape: [number, number],
  count: IntruderCount,
  threshold: number,
): MatrixIntruders {
  return {
    name,
    shape,
    intruders: count.intruders,
    top_k: count.topK,
    threshold,
    min_max_cos: count.maxCos.length > 0 ? Math.min(...count.maxCos) : 1,
    max_cos: count.maxCos,
    intruder_ranks: count.intruderRanks,
  };
}

/**
 * Count intruder dimensions per matrix of a fine-tuned model (`tuned`) or base + LoRA adapter
 * (`adapter`) against `base`. Architectures, tensor names and shapes are checked first; a
 * mismatch is an error listing every offending tensor. Matrices are processed one at a time
 * (two matrices in memory).
 */
export function analyzeIntruders(options: AnalyzeIntrudersOptions): IntruderReport {
  const topK = options.topK ?? DEFAULT_INTRUDER_TOP_K;
  const threshold = options.threshold ?? DEFAULT_INTRUDER_THRESHOLD;
  checkOptions(topK, threshold);
  if ((options.tuned === undefined) === (options.adapter === undefined)) {
    throw new UsageError('intruders: give exactly one of a tuned model or an adapter');
  }
  const filter = options.matrices ?? null;
  const base = openCheckpoint(options.base);
  const results: MatrixIntruders[] = [];
  try {
    if (options.tuned !== undefined) {
      checkSameArchitecture(
        options.base,
        options.tuned,
        'intruder dimensions compare a model with its own base',
      );
      const tuned = openCheckpoint(options.tuned);
      try {
        const names = base.names().filter((n) => selected(base, n, filter));
        const problems: string[] = [];
        for (const name of names) {
          if (!tuned.has(name)) {
            problems.push(`'${name}' is missing from ${options.tuned}`);
            continue;
          }
          const a = base.info(name).shape;
          const b = tuned.info(name).shape;
          if (formatShape(a) !== formatShape(b))
            problems.push(
              `'${name}' is ${formatShape(a)} in the base but ${formatShape(b)} in the tuned model`,
            );
        }
        if (problems.length > 0) {
          throw new TensorMismatchError(
            `${options.tuned} does not match ${options.base}: ${problems.join('; ')}`,
          );
        }
        names.forEach((name, index) => {
          options.onMatrix?.(index, names.length, name);
          const w = readMatrix(base, name);
          const count = countIntruders(w, readMatrix(tuned, name), { topK, threshold });
          results.push(summarise(name, [w.rows, w.cols], count, threshold));
        });
      } finally {
        tuned.close();
      }
    } else {
      const delta = openLoraDelta(options.adapter!, base, options.base);
      try {
        const targets = delta.targets.filter((t) => (filter ? filter.test(t.weight) : true));
        targets.forEach((target, index) => {
          options.onMatrix?.(index, targets.length, target.weight);
          const w = readMatrix(base, target.weight);
          const update = loraUpdate(delta, target);
          const tuned: Matrix64 = { rows: w.rows, cols: w.cols, data: Float64Array.from(w.data) };
          for (let i = 0; i < tuned.data.length; i++) tuned.data[i]! += update.data[i]!;
          const count = countIntruders(w, tuned, { topK, threshold });
          results.push(summarise(target.weight, target.shape, count, threshold));
        });
      } finally {
        delta.reader.close();
      }
    }
  } finally {
    base.close();
  }
  return {
    base: options.base,
    tuned: options.tuned ?? null,
    adapter: options.adapter ?? null,
    top_k: topK,
    threshold,
    matrices: results,
    totals: {
      matrices: results.length,
      intruders: results.reduce((s, r) => s + r.intruders, 0),
      matrices_with_intruders: results.filter((r) => r.intruders > 0).length,
    },
  };
}

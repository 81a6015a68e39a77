/**
 * Per-example sequence log-probs of a frozen reference (DPO's pi_ref): for each example, the sum of
 * log p(token) over its trained tokens, computed once with the model in inference mode (no dropout,
 * no gradient), and the JSON cache that keeps them in the run directory so a resumed run reads them
 * back instead of recomputing. The cache is bound to the examples by a SHA-256 of their token ids
 * and labels: a cache for other data is refused.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { DataLoader, IGNORE_INDEX, type TokenizedExample } from '../../data/index.ts';
import { ConfigError, FormatError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import { type CausalLM, scoreNextTokens } from '../../models/index.ts';
import { noGrad, scope } from '../../tensor/index.ts';

/** Reference log-probs of a dataset's examples. */
export interface ReferenceLogProbs {
  /** Per example: sum of log p(token) over its trained tokens (nats). */
  logp: Float64Array;
  /** Per example: its trained tokens (labels != -100 at positions >= 1). */
  tokens: Int32Array;
}

/** Trained tokens of each example (what the fused head scores for it). */
export function trainedTokensOf(examples: readonly TokenizedExample[]): Int32Array {
  return Int32Array.from(examples, (e) => {
    let n = 0;
    for (let t = 1; t < e.labels.length; t++) if (e.labels[t] !== IGNORE_INDEX) n++;
    return n;
  });
}

/**
 * Add each scored token's log-prob into the sum of its example: `exampleOf[i]` is the example of
 * token i (a value < 0 is an error). Returns example -> [sum, tokens].
 */
export function sumByExample(
  logp: ArrayLike<number>,
  exampleOf: ArrayLike<number>,
  count: number,
): Map<number, { sum: number; tokens: number }> {
  const sums = new Map<number, { sum: number; tokens: number }>();
  for (let i = 0; i < count; i++) {
    const e = exampleOf[i]!;
    const entry = sums.get(e);
    if (entry) {
      entry.sum += logp[i]!;
      entry.tokens++;
    } else sums.set(e, { sum: logp[i]!, tokens: 1 });
  }
  return sums;
}

/** Sequence log-probs of every example under `model` (inference mode, no gradient; mode restored). */
export function referenceLogProbs(
  model: CausalLM,
  examples: readonly TokenizedExample[],
  options: { batchSize: number; padTokenId: number; onProgress?: (done: number) => void },
): ReferenceLogProbs {
  const logp = new Float64Array(examples.length);
  const loader = new DataLoader(examples, {
    batchSize: options.batchSize,
    padTokenId: options.padTokenId,
    shuffle: false,
  });
  const wasTraining = model.training;
  model.eval();
  try {
    noGrad(() => {
      for (let b = 0, n = loader.batchesPerEpoch(); b < n; b++) {
        // the batch's tensors are created inside the scope, so it releases them
        scope(() => {
          const batch = loader.next();
          const { result, rows, count } = scoreNextTokens(model, batch.inputIds, batch.labels);
          const values = result.logp.floatData();
          // row r predicts the token at r + 1 (as the training step's lookup)
          const exampleOf = Int32Array.from(rows, (r) => batch.exampleOf[r + 1]!);
          for (const [e, { sum }] of sumByExample(values, exampleOf, count)) logp[e] = sum;
        });
        options.onProgress?.(b + 1);
      }
    });
  } finally {
    model.train(wasTraining);
  }
  return { logp, tokens: trainedTokensOf(examples) };
}

/** SHA-256 of the examples' token ids and labels (what a cache is valid for). */
export function examplesFingerprint(examples: readonly TokenizedExample[]): string {
  const hash = createHash('sha256');
  for (const e of examples) {
    hash.update(new Uint8Array(Int32Array.of(e.inputIds.length).buffer));
    hash.update(new Uint8Array(e.inputIds.buffer, e.inputIds.byteOffset, e.inputIds.byteLength));
    hash.update(new Uint8Array(e.labels.buffer, e.labels.byteOffset, e.labels.byteLength));
  }
  return hash.digest('hex');
}

interface CacheFile {
  version: 1;
  what: string;
  examples: number;
  fingerprint: string;
  logp: number[];
  tokens: number[];
}

/** Write `reference` for `examples` to `path` as JSON (atomically; numbers round-trip exactly). */
export function writeReferenceCache(
  path: string,
  examples: readonly TokenizedExample[],
  reference: ReferenceLogProbs,
): void {
  const file: CacheFile = {
    version: 1,
    what: 'reference sequence log-probs (sum over trained tokens) per training example, in dataset order',
    examples: examples.length,
    fingerprint: examplesFingerprint(examples),
    logp: Array.from(reference.logp),
    tokens: Array.from(reference.tokens),
  };
  writeTextAtomic(path, `${JSON.stringify(file)}\n`);
}

/**
 * The cached reference log-probs of `examples` in `path`; null when there is no such file. A file
 * that is malformed is a FormatError; one written for other examples a ConfigError.
 */
export function readReferenceCache(
  path: string,
  examples: readonly TokenizedExample[],
): ReferenceLogProbs | null {
  if (!existsSync(path)) return null;
  let file: Partial<CacheFile>;
  try {
    file = JSON.parse(readFileSync(path, 'utf8')) as Partial<CacheFile>;
  } catch (error) {
    throw new FormatError(path, `not a reference log-prob cache: ${(error as Error).message}`);
  }
  const n = examples.length;
  if (file.version !== 1 || !Array.isArray(file.logp) || !Array.isArray(file.tokens))
    throw new FormatError(
      path,
      'not a reference log-prob cache (expected version 1 with logp and tokens lists)',
    );
  if (file.examples !== n || file.fingerprint !== examplesFingerprint(examples)) {
    throw new ConfigError(
      `${path}: the reference log-probs were computed for other training data (${file.examples} examples, fingerprint ${String(file.fingerprint).slice(0, 12)}; now ${n} examples); resume with the same data, or start a new run`,
    );
  }
  if (
    file.logp.length !== n ||
    file.tokens.length !== n ||
    file.logp.some((v) => typeof v !== 'number' || !Number.isFinite(v))
  )
    throw new FormatError(path, `expected ${n} finite log-probs and token counts`);
  return { logp: Float64Array.from(file.logp), tokens: Int32Array.from(file.tokens) };
}

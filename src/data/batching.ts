/**
 * Batches of tokenised examples for training: seeded shuffling per epoch, optional packing,
 * right padding, attention masks, and a serialisable position for exact resume.
 *
 * - Order: each epoch, the example order is a Fisher-Yates shuffle drawn from one seeded Rng (the
 *   generator runs on from epoch to epoch); `shuffle: false` keeps file order.
 * - Packing (off by default): examples, in the epoch's order, are concatenated greedily into rows
 *   of at most `maxLength` tokens (an example never spans two rows; one that does not fit starts a
 *   new row). Each example keeps its own labels, so the first token of a packed example is trained
 *   or masked as its own masking says (BOS is trained in text examples, masked in prompt/completion
 *   and chat examples). This is naive packing, like Hugging Face's simple packing: attention crosses
 *   the boundaries of packed examples and positions run on across them.
 * - Padding: rows are right-padded to the longest row of the batch with the pad id (use
 *   `padTokenIdOf(tokenizer)`: its pad token, else EOS); padding has attention mask 0 and label -100.
 * - Epochs: `next()` always returns a batch; after the last batch of an epoch it starts the next
 *   epoch (a new order). The last batch of an epoch may be smaller unless `dropLast`.
 * - Groups (`groupSize` g > 1, e.g. 2 for preference pairs): examples g*k .. g*k + g - 1 form a unit
 *   that is shuffled as a whole and never split across batches (batchSize must be a multiple of g),
 *   so a loss that couples the examples of a group (DPO's chosen and rejected) sees them together.
 * - Resume: `state()` is JSON (epoch, batches taken in it, the Rng state at the epoch's start,
 *   token counters); `restore(state)` on a loader built from the same examples and options gives
 *   exactly the batches the saved loader would have given next.
 */
import { ConfigError } from '../errors.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import { fromArray } from '../tensor/creation.ts';
import { Rng } from '../tensor/rng.ts';
import type { Tensor } from '../tensor/tensor.ts';
import { countTokens } from './dataset.ts';
import { IGNORE_INDEX, type TokenizedExample } from './tokenize.ts';

export interface DataLoaderOptions {
  /** Rows per batch (examples, or packed rows with `packing`). */
  batchSize: number;
  /** Id that fills padding (see `padTokenIdOf`). */
  padTokenId: number;
  /** Seed of the shuffling Rng (default 0). */
  seed?: number;
  /** Shuffle the examples each epoch (default true). */
  shuffle?: boolean;
  /** Concatenate examples into rows of up to `maxLength` tokens (default false). */
  packing?: boolean;
  /** Length of a packed row; required with `packing`. */
  maxLength?: number;
  /** Leave out the last, smaller batch of each epoch (default false). */
  dropLast?: boolean;
  /** Examples per unit that shuffles and batches as one (default 1; see the file comment). */
  groupSize?: number;
}

/** One batch; tensors are i32 [B, T] (B rows, T the longest row). */
export interface Batch {
  inputIds: Tensor;
  /** Aligned with inputIds (the loss shifts them, see `shiftLabels`); -100 where not trained and on padding. */
  labels: Tensor;
  /** 1 for tokens, 0 for padding. */
  attentionMask: Tensor;
  /** Tokens the loss trains on: labels != -100 at positions t >= 1 of each row (what `shiftLabels` keeps). */
  numTrainedTokens: number;
  /** Non-padding tokens. */
  numTokens: number;
  /** Examples in the batch (several per row when packing). */
  numExamples: number;
  /**
   * Per position [B*T]: the index (in the loader's examples) of the example the token belongs to,
   * -1 on padding; with `positionOf`, a loss can look up per-example data (reference log-probs,
   * a teacher's cached distribution).
   */
  exampleOf: Int32Array;
  /** Per position [B*T]: the token's position inside its example, -1 on padding. */
  positionOf: Int32Array;
  /** Epoch of this batch (0-based) and its index in the epoch. */
  epoch: number;
  index: number;
}

/** What must match between a saved state and the loader it is restored into. */
export interface DataLoaderFingerprint {
  examples: number;
  tokens: number;
  batchSize: number;
  shuffle: boolean;
  packing: boolean;
  maxLength: number | null;
  dropLast: boolean;
  /** Present only when > 1 (states saved before groups existed stay valid). */
  groupSize?: number;
}

/** The serialisable position of a DataLoader (plain JSON). */
export interface DataLoaderState {
  version: 1;
  /** Current epoch (0-based). */
  epoch: number;
  /** Batches already returned in this epoch. */
  position: number;
  /** Rng state at the start of this epoch, before its shuffle. */
  rng: { s: number[]; spareNormal: number | null };
  /** Non-padding tokens and trained tokens returned so far. */
  tokensSeen: number;
  trainedTokensSeen: number;
  /** Batches returned so far (all epochs). */
  batchesSeen: number;
  fingerprint: DataLoaderFingerprint;
}

/** The padding id of `tokenizer`: its pad token, else its (first) EOS; ConfigError when it has neither. */
export function padTokenIdOf(tokenizer: Pick<Tokenizer, 'padTokenId' | 'eosTokenIds' | 'origin'>): number {
  const id = tokenizer.padTokenId ?? tokenizer.eosTokenIds[0];
  if (id === undefined || id === null) {
    throw new ConfigError(
      `the tokenizer of ${tokenizer.origin} has no pad_token or eos_token to pad batches with`,
    );
  }
  return id;
}

/**
 * Next-token targets of row-major labels [rows, T]: targets[r, t] = labels[r, t + 1], and -100 at
 * t = T - 1. This is the shift the loss applies to `Batch.labels`.
 */
export function shiftLabels(labels: Int32Array, rows: number, T: number): Int32Array {
  if (labels.length !== rows * T) {
    throw new RangeError(`shiftLabels: ${labels.length} labels do not fill [${rows}, ${T}]`);
  }
  const targets = new Int32Array(rows * T);
  for (let r = 0; r < rows; r++) {
    const row = r * T;
    targets.set(labels.subarray(row + 1, row + T), row);
    targets[row + T - 1] = IGNORE_INDEX;
  }
  return targets;
}

/** Batches over tokenised examples (see the file comment). */
export class DataLoader {
  private readonly examples: readonly TokenizedExample[];
  private readonly batchSize: number;
  private readonly padTokenId: number;
  private readonly shuffle: boolean;
  private readonly packing: boolean;
  private readonly maxLength: number | null;
  private readonly dropLast: boolean;
  private readonly groupSize: number;
  private readonly rng: Rng;
  private readonly fingerprint: DataLoaderFingerprint;
  /** Dataset totals. */
  readonly stats: { examples: number; tokens: number; trainedTokens: number };

  private epochIndex = 0;
  private position = 0;
  private epochRngState: { s: number[]; spareNormal: number | null };
  /** Rows of the current epoch, each a list of example indices. */
  private rows: number[][] = [];
  private tokensSeen = 0;
  private trainedTokensSeen = 0;
  private batchesSeen = 0;

  /** A loader over `examples` (not copied: do not modify them while it is in use). */
  constructor(examples: readonly TokenizedExample[], options: DataLoaderOptions) {
    const positiveInteger = (name: string, value: unknown): number => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
        throw new ConfigError(
          `DataLoader option '${name}' must be a positive integer, found ${JSON.stringify(value)}`,
        );
      }
      return value;
    };
    this.batchSize = positiveInteger('batchSize', options.batchSize);
    if (!Number.isSafeInteger(options.padTokenId) || options.padTokenId < 0) {
      throw new ConfigError(
        `DataLoader option 'padTokenId' must be a token id, found ${JSON.stringify(options.padTokenId)}`,
      );
    }
    this.padTokenId = options.padTokenId;
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed)) {
      throw new ConfigError(
        `DataLoader option 'seed' must be an integer, found ${JSON.stringify(options.seed)}`,
      );
    }
    this.shuffle = options.shuffle ?? true;
    this.packing = options.packing ?? false;
    this.dropLast = options.dropLast ?? false;
    this.maxLength = options.maxLength === undefined ? null : positiveInteger('maxLength', options.maxLength);
    if (this.packing && this.maxLength === null) {
      throw new ConfigError(
        `DataLoader option 'maxLength' is required with packing (the length of a packed row)`,
      );
    }
    if (examples.length === 0) throw new ConfigError('DataLoader: there are no examples');
    this.groupSize = options.groupSize === undefined ? 1 : positiveInteger('groupSize', options.groupSize);
    if (this.groupSize > 1) {
      if (this.packing)
        throw new ConfigError(
          `DataLoader: packing cannot be used with groupSize ${this.groupSize} (grouped examples, e.g. preference pairs)`,
        );
      if (this.batchSize % this.groupSize !== 0)
        throw new ConfigError(
          `DataLoader: batchSize ${this.batchSize} must be a multiple of groupSize ${this.groupSize} (each group of examples, e.g. a preference pair, stays in one batch)`,
        );
      if (examples.length % this.groupSize !== 0)
        throw new ConfigError(
          `DataLoader: ${examples.length} examples do not form groups of ${this.groupSize}`,
        );
    }
    examples.forEach((example, index) => {
      const where = `example ${index} (${example.file}:${example.line})`;
      if (example.inputIds.length === 0 || example.inputIds.length !== example.labels.length) {
        throw new ConfigError(
          `DataLoader: ${where} has ${example.inputIds.length} input ids and ${example.labels.length} labels`,
        );
      }
      if (this.packing && example.inputIds.length > this.maxLength!) {
        throw new ConfigError(
          `DataLoader: ${where} has ${example.inputIds.length} tokens, more than the packing length ${this.maxLength}; tokenize with the same maxLength`,
        );
      }
    });
    this.examples = examples;
    this.stats = { examples: examples.length, ...countTokens(examples) };
    this.fingerprint = {
      examples: examples.length,
      tokens: this.stats.tokens,
      batchSize: this.batchSize,
      shuffle: this.shuffle,
      packing: this.packing,
      maxLength: this.maxLength,
      dropLast: this.dropLast,
      ...(this.groupSize > 1 ? { groupSize: this.groupSize } : {}),
    };
    this.rng = new Rng(seed);
    this.epochRngState = this.rng.getState();
    this.planEpoch();
  }

  /** The current epoch (0-based). */
  get epoch(): number {
    return this.epochIndex;
  }

  /** Batches in the current epoch (with packing it can vary a little from epoch to epoch). */
  batchesPerEpoch(): number {
    const rows = this.rows.length;
    return this.dropLast ? Math.floor(rows / this.batchSize) : Math.ceil(rows / this.batchSize);
  }

  /** The next batch (moving on to the next epoch after the last batch of this one). */
  next(): Batch {
    if (this.position >= this.batchesPerEpoch()) {
      this.epochIndex++;
      this.position = 0;
      this.epochRngState = this.rng.getState();
      this.planEpoch();
    }
    const index = this.position++;
    const rows = this.rows.slice(index * this.batchSize, (index + 1) * this.batchSize);
    const batch = this.collate(rows, index);
    this.tokensSeen += batch.numTokens;
    this.trainedTokensSeen += batch.numTrainedTokens;
    this.batchesSeen++;
    return batch;
  }

  /** The loader's position as plain JSON (see DataLoaderState). */
  state(): DataLoaderState {
    return {
      version: 1,
      epoch: this.epochIndex,
      position: this.position,
      rng: { s: [...this.epochRngState.s], spareNormal: this.epochRngState.spareNormal },
      tokensSeen: this.tokensSeen,
      trainedTokensSeen: this.trainedTokensSeen,
      batchesSeen: this.batchesSeen,
      fingerprint: { ...this.fingerprint },
    };
  }

  /**
   * Continue from `state` (from `state()` of a loader over the same examples with the same
   * options); a ConfigError names what differs otherwise.
   */
  restore(state: DataLoaderState): void {
    if (state?.version !== 1) {
      throw new ConfigError(`DataLoader.restore: unknown state version ${JSON.stringify(state?.version)}`);
    }
    const keys = new Set([...Object.keys(this.fingerprint), ...Object.keys(state.fingerprint ?? {})]);
    const differences = ([...keys] as (keyof DataLoaderFingerprint)[])
      .filter((key) => state.fingerprint?.[key] !== this.fingerprint[key])
      .map(
        (key) =>
          `${key} ${JSON.stringify(state.fingerprint?.[key])} in the state, ${this.fingerprint[key]} now`,
      );
    if (differences.length > 0) {
      throw new ConfigError(
        `DataLoader.restore: the state is for other data or options (${differences.join('; ')}); resume with the same data and settings`,
      );
    }
    const counter = (name: string, value: unknown): number => {
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
        throw new ConfigError(
          `DataLoader.restore: '${name}' must be a non-negative integer, found ${JSON.stringify(value)}`,
        );
      }
      return value;
    };
    const epoch = counter('epoch', state.epoch);
    const position = counter('position', state.position);
    this.rng.setState(state.rng);
    this.epochRngState = this.rng.getState();
    this.planEpoch();
    if (position > this.batchesPerEpoch()) {
      throw new ConfigError(
        `DataLoader.restore: position ${position} is past the ${this.batchesPerEpoch()} batches of epoch ${epoch}`,
      );
    }
    this.epochIndex = epoch;
    this.position = position;
    this.tokensSeen = counter('tokensSeen', state.tokensSeen);
    this.trainedTokensSeen = counter('trainedTokensSeen', state.trainedTokensSeen);
    this.batchesSeen = counter('batchesSeen', state.batchesSeen);
  }

  /** Order the examples for the epoch starting now (drawing from the Rng) and form its rows. */
  private planEpoch(): void {
    const g = this.groupSize;
    const units = Array.from({ length: this.examples.length / g }, (_, i) => i);
    if (this.shuffle) this.rng.shuffle(units);
    const order = g === 1 ? units : units.flatMap((u) => Array.from({ length: g }, (_, j) => u * g + j));
    if (!this.packing) {
      this.rows = order.map((i) => [i]);
    } else {
      const rows: number[][] = [];
      let current: number[] = [];
      let length = 0;
      for (const i of order) {
        const n = this.examples[i]!.inputIds.length;
        if (current.length > 0 && length + n > this.maxLength!) {
          rows.push(current);
          current = [];
          length = 0;
        }
        current.push(i);
        length += n;
      }
      if (current.length > 0) rows.push(current);
      this.rows = rows;
    }
    if (this.batchesPerEpoch() === 0) {
      throw new ConfigError(
        `DataLoader: ${this.rows.length} rows make no full batch of ${this.batchSize} (dropLast is true); lower batchSize`,
      );
    }
  }

  private collate(rows: readonly number[][], index: number): Batch {
    const lengths = rows.map((row) => row.reduce((sum, i) => sum + this.examples[i]!.inputIds.length, 0));
    const B = rows.length;
    const T = Math.max(...lengths);
    const inputIds = new Int32Array(B * T).fill(this.padTokenId);
    const labels = new Int32Array(B * T).fill(IGNORE_INDEX);
    const attentionMask = new Int32Array(B * T);
    const exampleOf = new Int32Array(B * T).fill(-1);
    const positionOf = new Int32Array(B * T).fill(-1);
    let numTrainedTokens = 0;
    let numExamples = 0;
    rows.forEach((row, r) => {
      let offset = r * T;
      for (const i of row) {
        const example = this.examples[i]!;
        inputIds.set(example.inputIds, offset);
        labels.set(example.labels, offset);
        const n = example.inputIds.length;
        exampleOf.fill(i, offset, offset + n);
        for (let t = 0; t < n; t++) positionOf[offset + t] = t;
        offset += n;
        numExamples++;
      }
      attentionMask.fill(1, r * T, r * T + lengths[r]!);
      for (let t = 1; t < lengths[r]!; t++) if (labels[r * T + t] !== IGNORE_INDEX) numTrainedTokens++;
    });
    return {
      inputIds: fromArray(inputIds, [B, T], { dtype: 'i32' }),
      labels: fromArray(labels, [B, T], { dtype: 'i32' }),
      attentionMask: fromArray(attentionMask, [B, T], { dtype: 'i32' }),
      numTrainedTokens,
      numTokens: lengths.reduce((a, b) => a + b, 0),
      numExamples,
      exampleOf,
      positionOf,
      epoch: this.epochIndex,
      index,
    };
  }
}

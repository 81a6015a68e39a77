/**
 * Token-level losses on the fused LM head. A loss sees, for the supervised tokens of one
 * micro-batch, each token's gold log-prob, predictive entropy, top-1 log-prob and whether the argmax
 * was correct, plus the number of supervised tokens in the whole optimizer step (so means over the
 * step make gradient accumulation equal one large batch). It returns its value and the per-token
 * coefficients dL/dlogp, dL/dH and dL/dtop1 that the fused backward consumes.
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import type { Dataset, LoadDatasetOptions, TokenizedExample } from '../../data/index.ts';
import type { Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';

export interface TokenTerms {
  /** log p(gold) per supervised token. */
  logp: Float32Array | Float64Array;
  /** Entropy of the predictive distribution (nats). */
  entropy: Float32Array | Float64Array;
  /** log-prob of the most likely token. */
  top1: Float32Array | Float64Array;
  /** 1 when the argmax is the gold token, else 0. */
  correct: Float32Array | Float64Array;
  /** Supervised tokens in this micro-batch (the arrays' length). */
  count: number;
  /**
   * Per token (when the trainer's loader provides them): the index of the example the gold token
   * belongs to, and the gold token's position inside that example — for losses that look up
   * per-example data (reference log-probs, a teacher's cached top-k).
   */
  exampleOf?: Int32Array;
  positionOf?: Int32Array;
  /** Per token: its loss weight (a `token_weight` data transform); absent = 1 for every token. */
  weights?: Float32Array;
  /**
   * Only for a loss with `extraTargets`: the ids it asked for ([count * perToken], row-major) and
   * the model's log-probs of them (same layout), differentiable through `LossOutput.cExtraLogp`.
   */
  extra?: ExtraTargetTerms;
}

/** Extra target ids per scored token (a loss's `extraTargets`): `ids` is [count * perToken]. */
export interface ExtraTargets {
  ids: Int32Array;
  perToken: number;
}

/** The model's log-probs of a loss's extra target ids. */
export interface ExtraTargetTerms extends ExtraTargets {
  logp: Float32Array | Float64Array;
}

/** What a loss sees of the scored tokens before the forward pass (to choose extra target ids). */
export interface ScoredTokens {
  count: number;
  /** The gold token id of each scored token. */
  targets: Int32Array;
  exampleOf?: Int32Array;
  positionOf?: Int32Array;
}

/** The training data a loss is bound to before the first step (`TokenLoss.bindData`). */
export interface BoundTrainingData {
  /** The training JSONL file. */
  trainFile: string;
  /** Its examples in the loader's order (example index = `exampleOf`). */
  examples: readonly { inputIds: Int32Array; labels: Int32Array; file?: string; line?: number }[];
  /** The student's vocabulary size (rows of its LM head). */
  vocabSize: number;
  /** The student's tokenizer (its vocabulary is compared with the one a cache was built with). */
  tokenizer: Pick<Tokenizer, 'vocabSize' | 'idToToken' | 'origin'>;
}

export interface StepContext {
  /** Supervised tokens in the whole optimizer step (all micro-batches). */
  stepTokens: number;
  /** Correct-argmax tokens in the whole step (for losses that average per group). */
  stepCorrect: number;
  /** Examples with supervised tokens in the whole step (when the loader gives `exampleOf`). */
  stepExamples?: number;
}

/**
 * What a loss needs besides the token terms, declared by the loss (the trainer knows no loss by
 * name): its own data shape, examples that must share a micro-batch, and per-example state computed
 * once before step 1 (DPO's reference log-probs), cached in the run directory.
 */
export interface LossData {
  /** Consecutive examples that must share a micro-batch (2: a preference pair); the loader groups them. */
  readonly groupSize: number;
  /** What `load` reads, for error messages (e.g. 'preference pairs {prompt, chosen, rejected}'). */
  readonly shape: string;
  /** Read, validate and tokenise a data file (data.train, data.eval) in the loss's shape. */
  load(path: string, tokenizer: Tokenizer, options: LoadDatasetOptions): Dataset;
  /**
   * Called before the tuner is applied (the model is still the base) and before any step: compute
   * the per-example state of `examples`, or on resume read it from the cache `save` wrote.
   */
  prepare(context: LossPrepareContext): void;
  /** Write the per-example state into the run directory once it exists (atomically). */
  save(outputDir: string): void;
}

/** What `LossData.prepare` gets. */
export interface LossPrepareContext {
  /** The base model (no tuner applied yet). */
  model: CausalLM;
  /** The training examples, indexed as the loader's `exampleOf`. */
  examples: readonly TokenizedExample[];
  /** The run directory (may not exist yet); on resume it holds what `save` wrote. */
  outputDir: string;
  resume: boolean;
  /** Rows per forward pass for computing the state. */
  batchSize: number;
  padTokenId: number;
  /** One-line notes (e.g. "reference log-probs read from the cache"). */
  report(line: string): void;
}

export interface LossOutput {
  /** This micro-batch's contribution to the step loss (contributions sum to the step loss). */
  value: number;
  /** Named parts of `value` for logging (e.g. nll, ua). */
  parts: Record<string, number>;
  cLogp: Float32Array;
  cEntropy: Float32Array | null;
  cTop1: Float32Array | null;
  /** dL/d(log-prob of each extra target id), [count * perToken]; only with `extraTargets`. */
  cExtraLogp?: Float32Array | null;
}

export interface TokenLoss {
  readonly name: string;
  /**
   * The loss averages per correct/incorrect group, so it needs the whole step's correct-token count
   * before the first micro-batch (the trainer counts it in a no-gradient pass when grad_accum > 1).
   */
  readonly needsCorrectCounts?: boolean;
  /** It applies `TokenTerms.weights` (per-token loss weights); a loss without it refuses them. */
  readonly acceptsWeights?: boolean;
  /** Data and per-example state the loss needs (absent: ordinary supervised examples). */
  readonly data?: LossData;
  /**
   * Extension point: extra token ids per scored token whose log-probs (and their gradient) the loss
   * needs, e.g. a teacher's top-k (they arrive as `TokenTerms.extra`); null = none this micro-batch.
   * Computed by a gather matmul from the hidden states, never [tokens, vocab].
   */
  extraTargets?(tokens: ScoredTokens): ExtraTargets | null;
  /**
   * Check the loss's own data against the training data before anything is written (e.g. that a
   * teacher cache was built from this data and tokenizer); throws a clear error when it does not fit.
   */
  bindData?(data: BoundTrainingData): void;
  /** Compute the loss and its coefficients. */
  compute(terms: TokenTerms, step: StepContext): LossOutput;
}

/** A registered loss: its name, description, options schema and how to build it. */
export interface LossFactory<O extends Record<string, unknown> = Record<string, unknown>>
  extends RegistryEntry {
  /** Build the loss from its validated options (defaults filled in). */
  create(options: O): TokenLoss;
}

/** Every loss `loss: {name, ...}` can name. */
export const losses = new Registry<LossFactory>('loss', 'loss');

/** Make a loss available as `loss: <name>` in training configs. */
export function registerLoss<S extends z.ZodObject>(factory: {
  name: string;
  description: string;
  options: S;
  create(options: z.output<S>): TokenLoss;
}): void {
  losses.register(factory as unknown as LossFactory);
}

/** The registered loss `name` built with `options` (validated against its schema; errors name the option). */
export function createLoss(name: string, options: Record<string, unknown> = {}): TokenLoss {
  const choice = losses.parse({ name, ...options });
  const { name: _, ...validated } = choice;
  return losses.get(name).create(validated);
}

/** Names and descriptions of the registered losses. */
export function listLosses(): { name: string; description: string }[] {
  return losses.list().map((f) => ({ name: f.name, description: f.description }));
}

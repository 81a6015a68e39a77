/**
 * Token-level losses on the fused LM head. A loss sees, for the supervised tokens of one
 * micro-batch, each token's gold log-prob, predictive entropy, top-1 log-prob and whether the argmax
 * was correct, plus the number of supervised tokens in the whole optimizer step (so means over the
 * step make gradient accumulation equal one large batch). It returns its value and the per-token
 * coefficients dL/dlogp, dL/dH and dL/dtop1 that the fused backward consumes.
 */
import { ConfigError } from '../../errors.ts';

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
}

export interface StepContext {
  /** Supervised tokens in the whole optimizer step (all micro-batches). */
  stepTokens: number;
  /** Correct-argmax tokens in the whole step (for losses that average per group). */
  stepCorrect: number;
}

export interface LossOutput {
  /** This micro-batch's contribution to the step loss (contributions sum to the step loss). */
  value: number;
  /** Named parts of `value` for logging (e.g. nll, ua). */
  parts: Record<string, number>;
  cLogp: Float32Array;
  cEntropy: Float32Array | null;
  cTop1: Float32Array | null;
}

export interface TokenLoss {
  readonly name: string;
  /**
   * The loss averages per correct/incorrect group, so it needs the whole step's correct-token count
   * before the first micro-batch (the trainer counts it in a no-gradient pass when grad_accum > 1).
   */
  readonly needsCorrectCounts?: boolean;
  /** Compute the loss and its coefficients. */
  compute(terms: TokenTerms, step: StepContext): LossOutput;
}

export interface LossFactory {
  /** One-line description for --help and docs. */
  description: string;
  /** Build the loss from its options (validated; unknown options are errors). */
  create(options: Record<string, unknown>): TokenLoss;
}

const registry = new Map<string, LossFactory>();

/** Make a loss available as `loss: <name>` in training configs. */
export function registerLoss(name: string, factory: LossFactory): void {
  if (registry.has(name)) throw new Error(`registerLoss: '${name}' is already registered`);
  registry.set(name, factory);
}

/** The registered loss `name` built with `options`. */
export function createLoss(name: string, options: Record<string, unknown> = {}): TokenLoss {
  const factory = registry.get(name);
  if (!factory)
    throw new ConfigError(`loss '${name}' is not known (known: ${[...registry.keys()].sort().join(', ')})`);
  return factory.create(options);
}

/** Names and descriptions of the registered losses. */
export function listLosses(): { name: string; description: string }[] {
  return [...registry.entries()]
    .map(([name, f]) => ({ name, description: f.description }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Throws on option keys the loss does not define. */
export function checkOptionKeys(
  loss: string,
  options: Record<string, unknown>,
  known: readonly string[],
): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(
        `loss '${loss}': unknown option '${key}' (options: ${known.join(', ') || 'none'})`,
      );
    }
  }
}

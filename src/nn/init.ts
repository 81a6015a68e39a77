/** Shared option handling for layers that draw random initial weights. */
import { ConfigError } from '../errors.ts';
import { type DType, Rng } from '../tensor/index.ts';

export interface InitOptions {
  /** Element type of the parameters (default f32; bf16 parameters are created frozen). */
  dtype?: DType;
  /** Seed of a fresh generator for the initial weights. */
  seed?: number;
  /** Generator to draw the initial weights from (shared by a whole model for determinism). */
  rng?: Rng;
  /**
   * 'default' (PyTorch's initialisation; needs `seed` or `rng`), 'zeros', or 'ones'. Layers about
   * to receive checkpoint weights can use 'zeros' to skip drawing random numbers.
   */
  init?: 'default' | 'zeros' | 'ones';
}

/** The generator for a layer's random initialisation (throws when none was given). */
export function initRng(options: InitOptions, layer: string): Rng {
  if (options.rng) return options.rng;
  if (options.seed !== undefined) return new Rng(options.seed);
  throw new ConfigError(
    `${layer}: pass a seed or an rng for the initial weights (Attune never draws unseeded randomness), or init: 'zeros'`,
  );
}

/** Throws unless n is a positive integer. */
export function checkPositiveInt(n: number, what: string, layer: string): void {
  if (!Number.isInteger(n) || n <= 0)
    throw new ConfigError(`${layer}: ${what} must be a positive integer, found ${n}`);
}

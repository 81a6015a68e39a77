/**
 * Dropout with deterministic, counter-based masks. Each module owns a seed; call n draws the
 * Philox stream at offsets [offset, offset + size), then advances `offset`, so masks never repeat
 * and the same seed gives the same masks. Active in training mode, or at any time at a forced rate
 * (`force(rate)`, used by MC dropout at inference).
 */
import { ConfigError } from '../errors.ts';
import { dropout, type Rng, type Tensor } from '../tensor/index.ts';
import { Module } from './module.ts';

export interface DropoutOptions {
  /** Seed of the mask stream. */
  seed?: number;
  /** Generator to draw the seed from (a model passes one Rng to all its dropout sites). */
  rng?: Rng;
}

function checkRate(p: number, where: string): void {
  if (!(p >= 0 && p < 1)) throw new ConfigError(`${where}: dropout rate must be in [0, 1), found ${p}`);
}

/** Zeroes each element with probability p and scales survivors by 1 / (1 - p). */
export class Dropout extends Module {
  /** Configured rate (used in training mode). */
  p: number;
  /** Seed of the mask stream. */
  readonly seed: number;
  /** Philox offset of the next call (save it for exact resume). */
  offset = 0;
  /** Rate forced on regardless of mode (null: follow `training`). */
  forcedRate: number | null = null;

  /** Dropout at rate p; needs a seed or an rng unless p is 0. */
  constructor(p: number, options: DropoutOptions = {}) {
    super();
    checkRate(p, 'Dropout');
    this.p = p;
    if (options.rng) this.seed = options.rng.nextSeed();
    else if (options.seed !== undefined) this.seed = options.seed >>> 0;
    else if (p === 0) this.seed = 0;
    else
      throw new ConfigError(
        'Dropout: pass a seed or an rng for the masks (Attune never draws unseeded randomness)',
      );
  }

  /** Force dropout on at `rate` in any mode (MC dropout); null restores normal behaviour. */
  force(rate: number | null): this {
    if (rate !== null) checkRate(rate, 'Dropout.force');
    this.forcedRate = rate;
    return this;
  }

  /** The rate the next forward applies (0 when inactive). */
  activeRate(): number {
    if (this.forcedRate !== null) return this.forcedRate;
    return this.training ? this.p : 0;
  }

  /** x (any shape) -> same shape; returns x itself when inactive. */
  forward(x: Tensor): Tensor {
    const rate = this.activeRate();
    if (rate === 0) return x;
    const offset = this.offset;
    this.offset += x.size;
    return dropout(x, rate, this.seed, offset);
  }
}

/** Force every Dropout module under `model` to `rate` (null restores normal behaviour). */
export function forceDropout(model: Module, rate: number | null): void {
  for (const m of model.modules()) if (m instanceof Dropout) m.force(rate);
}

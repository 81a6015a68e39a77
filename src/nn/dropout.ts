/**
 * Dropout with deterministic, counter-based masks keyed by (seed, key). Each module owns a seed; the
 * model sets a `key` (the training step, or an MC-dropout pass) on every site with `setKey`, which
 * restarts the site's stream at mixSeed(seed, key); within a key, call n draws the Philox stream at
 * offsets [offset, offset + size) and advances `offset`. So masks depend only on (seed, key, call
 * order): a resumed run, a recount pass and MC dropout reproduce them by setting the key again,
 * with nothing to save and restore. Active in training mode, or at any time at a forced rate
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

/** Mix a seed and a counter into a 32-bit seed (splitmix-style). */
export function mixSeed(seed: number, counter: number): number {
  let z = (seed ^ Math.imul(counter + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** Zeroes each element with probability p and scales survivors by 1 / (1 - p). */
export class Dropout extends Module {
  /** Configured rate (used in training mode). */
  p: number;
  /** Seed of the mask stream. */
  readonly seed: number;
  /** Philox offset of the next call within the current key. */
  offset = 0;
  /** The current key (see setKey). */
  key = 0;
  private streamSeed: number;
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
    this.streamSeed = mixSeed(this.seed, 0);
  }

  /** Restart the mask stream at (seed, key): the same key gives the same masks again. */
  setKey(key: number): void {
    if (!Number.isSafeInteger(key) || key < 0)
      throw new ConfigError(`Dropout.setKey: key must be a non-negative integer, found ${key}`);
    this.key = key;
    this.offset = 0;
    this.streamSeed = mixSeed(this.seed, key);
  }

  /** A fresh 32-bit seed for one in-kernel draw (attention dropout), from (seed, key, call). */
  nextCallSeed(): number {
    return mixSeed(this.streamSeed, this.offset++);
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
    return dropout(x, rate, this.streamSeed, offset);
  }
}

/** Force every Dropout module under `model` to `rate` (null restores normal behaviour). */
export function forceDropout(model: Module, rate: number | null): void {
  for (const m of model.modules()) if (m instanceof Dropout) m.force(rate);
}

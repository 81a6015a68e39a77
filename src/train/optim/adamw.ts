/**
 * AdamW (Loshchilov & Hutter): Adam with decoupled weight decay and bias correction, as
 * torch.optim.AdamW. The update runs in the backend's `adamw` kernel.
 */

import { z } from 'zod';
import { kernelsFor } from '../../backend/index.ts';
import type { FloatArray } from '../../backend/kernels.ts';
import { ConfigError } from '../../errors.ts';
import { checkNonNegative, Optimizer, type ParamsInput, zerosLike } from './optimizer.ts';
import { registerOptimizer } from './registry.ts';

export interface AdamWOptions {
  lr: number;
  /** Moment decay rates (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Denominator term (default 1e-8). */
  eps?: number;
  /** Decoupled weight decay (default 0.01, as torch.optim.AdamW); groups may override it. */
  weightDecay?: number;
}

function checkBetas(betas: readonly number[]): void {
  if (betas.length !== 2 || betas.some((b) => !(b >= 0 && b < 1))) {
    throw new ConfigError(`AdamW: betas must be two numbers in [0, 1), found [${betas.join(', ')}]`);
  }
}

/**
 * Per parameter with step t (counted per parameter, from 1):
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (wd * p + (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps))
 */
export class AdamW extends Optimizer {
  protected readonly typeName = 'AdamW';
  betas: [number, number];
  eps: number;
  private readonly m: (FloatArray | null)[];
  private readonly v: (FloatArray | null)[];

  /** AdamW over `params` (or parameter groups). */
  constructor(params: ParamsInput, options: AdamWOptions) {
    super(params, options.lr, options.weightDecay ?? 0.01, 'AdamW');
    this.betas = [...(options.betas ?? [0.9, 0.999])];
    checkBetas(this.betas);
    this.eps = options.eps ?? 1e-8;
    checkNonNegative(this.eps, 'eps', 'AdamW');
    this.m = this.params.map(() => null);
    this.v = this.params.map(() => null);
  }

  protected update(i: number, p: FloatArray, g: FloatArray): void {
    const m = (this.m[i] ??= zerosLike(p));
    const v = (this.v[i] ??= zerosLike(p));
    kernelsFor(p instanceof Float64Array).adamw(
      p,
      g,
      m,
      v,
      p.length,
      this.lr,
      this.betas[0],
      this.betas[1],
      this.eps,
      this.weightDecays[i]!,
      this.paramSteps[i]!,
    );
  }

  protected buffersOf(i: number): Record<string, FloatArray | null> {
    return { m: this.m[i]!, v: this.v[i]! };
  }

  protected setBuffers(i: number, buffers: Record<string, FloatArray | null>): void {
    this.m[i] = buffers.m ?? null;
    this.v[i] = buffers.v ?? null;
  }

  protected hyper(): Record<string, number | boolean | number[]> {
    return { betas: [...this.betas], eps: this.eps };
  }

  protected setHyper(hyper: Record<string, number | boolean | number[]>): void {
    const betas = hyper.betas;
    const eps = hyper.eps;
    if (!Array.isArray(betas) || typeof eps !== 'number') {
      throw new ConfigError('AdamW.loadStateDict: the state lacks betas or eps');
    }
    checkBetas(betas);
    checkNonNegative(eps, 'eps', 'AdamW');
    this.betas = [betas[0]!, betas[1]!];
    this.eps = eps;
  }
}

registerOptimizer({
  name: 'adamw',
  description: 'AdamW with decoupled weight decay (torch.optim.AdamW)',
  options: z.object({
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([0.9, 0.999])
      .describe('moment decay rates'),
    eps: z.number().positive().default(1e-8).describe('denominator term'),
    weight_decay: z.number().min(0).default(0).describe('decoupled weight decay'),
  }),
  create: (groups, lr, o) =>
    new AdamW(groups, { lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay }),
});

/** Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay, as torch.optim.SGD. */

import { z } from 'zod';
import type { FloatArray } from '../../backend/kernels.ts';
import { ConfigError } from '../../errors.ts';
import { checkNonNegative, Optimizer, type ParamsInput } from './optimizer.ts';
import { registerOptimizer } from './registry.ts';

export interface SGDOptions {
  lr: number;
  /** Momentum factor (default 0: plain SGD). */
  momentum?: number;
  /** Dampening of the momentum's gradient term (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (default 0); groups may override it. */
  weightDecay?: number;
  /** Nesterov momentum (needs momentum > 0 and dampening 0). */
  nesterov?: boolean;
}

/**
 * Per parameter: d = g + wd * p; with momentum, buf = d on the first update, else
 * buf = momentum * buf + (1 - dampening) * d, and d = nesterov ? d + momentum * buf : buf;
 * then p -= lr * d.
 */
export class SGD extends Optimizer {
  protected readonly typeName = 'SGD';
  momentum: number;
  dampening: number;
  nesterov: boolean;
  private readonly buf: (FloatArray | null)[];

  /** SGD over `params` (or parameter groups). */
  constructor(params: ParamsInput, options: SGDOptions) {
    super(params, options.lr, options.weightDecay ?? 0, 'SGD');
    this.momentum = options.momentum ?? 0;
    this.dampening = options.dampening ?? 0;
    this.nesterov = options.nesterov ?? false;
    this.checkHyper();
    this.buf = this.params.map(() => null);
  }

  private checkHyper(): void {
    checkNonNegative(this.momentum, 'momentum', 'SGD');
    checkNonNegative(this.dampening, 'dampening', 'SGD');
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) {
      throw new ConfigError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    }
  }

  protected update(i: number, p: FloatArray, g: FloatArray): void {
    const n = p.length;
    const lr = this.lr;
    const wd = this.weightDecays[i]!;
    const mu = this.momentum;
    if (mu === 0) {
      for (let j = 0; j < n; j++) p[j] = p[j]! - lr * (g[j]! + wd * p[j]!);
      return;
    }
    let buf = this.buf[i];
    const first = !buf;
    if (!buf) buf = this.buf[i] = p instanceof Float64Array ? new Float64Array(n) : new Float32Array(n);
    const keep = 1 - this.dampening;
    for (let j = 0; j < n; j++) {
      const d = g[j]! + wd * p[j]!;
      const b = first ? d : mu * buf[j]! + keep * d;
      buf[j] = b;
      p[j] = p[j]! - lr * (this.nesterov ? d + mu * b : b);
    }
  }

  protected buffersOf(i: number): Record<string, FloatArray | null> {
    return { momentum: this.buf[i]! };
  }

  protected setBuffers(i: number, buffers: Record<string, FloatArray | null>): void {
    this.buf[i] = buffers.momentum ?? null;
  }

  protected hyper(): Record<string, number | boolean | number[]> {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov };
  }

  protected setHyper(hyper: Record<string, number | boolean | number[]>): void {
    const { momentum, dampening, nesterov } = hyper;
    if (typeof momentum !== 'number' || typeof dampening !== 'number' || typeof nesterov !== 'boolean') {
      throw new ConfigError('SGD.loadStateDict: the state lacks momentum, dampening or nesterov');
    }
    this.momentum = momentum;
    this.dampening = dampening;
    this.nesterov = nesterov;
    this.checkHyper();
  }
}

registerOptimizer({
  name: 'sgd',
  description: 'stochastic gradient descent with momentum (torch.optim.SGD)',
  options: z.object({
    momentum: z.number().min(0).default(0).describe('momentum factor (0 = plain SGD)'),
    dampening: z.number().min(0).default(0).describe("dampening of the momentum's gradient term"),
    nesterov: z.boolean().default(false).describe('Nesterov momentum (needs momentum > 0, dampening 0)'),
    weight_decay: z.number().min(0).default(0).describe('L2 penalty added to the gradient'),
  }),
  create: (groups, lr, o) =>
    new SGD(groups, {
      lr,
      momentum: o.momentum,
      dampening: o.dampening,
      nesterov: o.nesterov,
      weightDecay: o.weight_decay,
    }),
});

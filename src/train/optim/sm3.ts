/**
 * SM3-II (Anil, Gupta, Koren & Singer, "Memory-Efficient Adaptive Optimization", Algorithm SM3-II),
 * an Adagrad-style optimizer whose second-moment state is sublinear: a matrix [m, n] keeps one
 * accumulator per row and per column (m + n values instead of m n); any other tensor one per entry
 * (a vector's only cover is its entries, which is Adagrad). Per step, for entry i:
 *
 *   g  = grad + wd * p                                  (L2 weight decay, default 0)
 *   nu = min over the covers r containing i of mu(r)  +  g^2      (matrix: min(row, col))
 *   u  = g / (sqrt(nu) + eps)
 *   mu'(r) = max over i in r of nu(i)                   (the new accumulators)
 *   m  = momentum * m + (1 - momentum) * u;  p -= lr * m       (momentum 0: p -= lr * u)
 *
 * (the momentum form of the authors' TensorFlow implementation, `sm3.py`). State for exact resume:
 * the accumulators (`row`, `col` or `acc`) and the momentum buffer.
 */
import { z } from 'zod';
import type { FloatArray } from '../../backend/kernels.ts';
import { ConfigError } from '../../errors.ts';
import type { Tensor } from '../../tensor/index.ts';
import { checkNonNegative, Optimizer, type ParamsInput, zerosLike } from './optimizer.ts';
import { registerOptimizer } from './registry.ts';

export interface SM3Options {
  lr: number;
  /** Momentum on the preconditioned update, in [0, 1) (default 0: SM3-II as in the paper's algorithm). */
  momentum?: number;
  /** Added to sqrt(nu) (default 1e-30: only guards 0 / 0 where nu and g are both 0). */
  eps?: number;
  /** L2 penalty added to the gradient (default 0); groups may override it. */
  weightDecay?: number;
}

interface SM3State {
  row: FloatArray | null;
  col: FloatArray | null;
  acc: FloatArray | null;
  momentum: FloatArray | null;
}

/** SM3-II over `params`; see the file comment. */
export class SM3 extends Optimizer {
  protected readonly typeName = 'SM3';
  momentum: number;
  eps: number;
  private readonly states: SM3State[];

  /** SM3 over `params` (or parameter groups). */
  constructor(params: ParamsInput, options: SM3Options) {
    super(params, options.lr, options.weightDecay ?? 0, 'SM3');
    this.momentum = options.momentum ?? 0;
    this.eps = options.eps ?? 1e-30;
    this.checkHyper();
    this.states = this.params.map(() => ({ row: null, col: null, acc: null, momentum: null }));
  }

  private checkHyper(): void {
    if (!(this.momentum >= 0 && this.momentum < 1))
      throw new ConfigError(`SM3: momentum must be in [0, 1), found ${this.momentum}`);
    checkNonNegative(this.eps, 'eps', 'SM3');
  }

  private isMatrix(i: number): boolean {
    return this.params[i]!.rank === 2;
  }

  protected update(i: number, p: FloatArray, g: FloatArray): void {
    const st = this.states[i]!;
    const wd = this.weightDecays[i]!;
    const lr = this.lr;
    const eps = this.eps;
    const beta = this.momentum;
    const f64 = p instanceof Float64Array;
    const m = beta > 0 ? (st.momentum ??= zerosLike(p)) : null;
    if (this.isMatrix(i)) {
      const [rows, cols] = this.params[i]!.shape as [number, number];
      const row = (st.row ??= f64 ? new Float64Array(rows) : new Float32Array(rows));
      const col = (st.col ??= f64 ? new Float64Array(cols) : new Float32Array(cols));
      const newRow = f64 ? new Float64Array(rows) : new Float32Array(rows);
      const newCol = f64 ? new Float64Array(cols) : new Float32Array(cols);
      for (let r = 0; r < rows; r++) {
        const mr = row[r]!;
        let rowMax = 0;
        for (let c = 0; c < cols; c++) {
          const j = r * cols + c;
          const gj = g[j]! + wd * p[j]!;
          const nu = Math.min(mr, col[c]!) + gj * gj;
          if (nu > rowMax) rowMax = nu;
          if (nu > newCol[c]!) newCol[c] = nu;
          const u = gj / (Math.sqrt(nu) + eps);
          if (m) {
            m[j] = beta * m[j]! + (1 - beta) * u;
            p[j] = p[j]! - lr * m[j]!;
          } else p[j] = p[j]! - lr * u;
        }
        newRow[r] = rowMax;
      }
      row.set(newRow);
      col.set(newCol);
      return;
    }
    const acc = (st.acc ??= zerosLike(p));
    for (let j = 0; j < p.length; j++) {
      const gj = g[j]! + wd * p[j]!;
      const nu = acc[j]! + gj * gj;
      acc[j] = nu;
      const u = gj / (Math.sqrt(nu) + eps);
      if (m) {
        m[j] = beta * m[j]! + (1 - beta) * u;
        p[j] = p[j]! - lr * m[j]!;
      } else p[j] = p[j]! - lr * u;
    }
  }

  /**
   * The second-moment estimate of a matrix parameter's entry (r, c): min(row[r], col[c]) (0 before
   * its first update). Sparse fine-tuning's regrowth reads it.
   */
  momentEstimate(param: Tensor, r: number, c: number): number {
    const st = this.states[this.params.indexOf(param)];
    if (!st?.row || !st.col) return 0;
    return Math.min(st.row[r]!, st.col[c]!);
  }

  /** Zero the per-entry state (a vector's accumulator, the momentum) at `positions`. */
  override resetEntries(param: Tensor, positions: ArrayLike<number>): void {
    const i = this.params.indexOf(param);
    if (i < 0) throw new ConfigError(`SM3.resetEntries: ${param.describe()} is not optimized here`);
    const st = this.states[i]!;
    for (const b of [st.acc, st.momentum])
      if (b) for (let j = 0; j < positions.length; j++) b[positions[j]!] = 0;
  }

  protected override bufferLength(i: number, key: string): number {
    const p = this.params[i]!;
    if (key === 'row') return p.shape[0]!;
    if (key === 'col') return p.shape[1]!;
    return p.size;
  }

  protected buffersOf(i: number): Record<string, FloatArray | null> {
    const st = this.states[i]!;
    return this.isMatrix(i)
      ? { row: st.row, col: st.col, momentum: st.momentum }
      : { acc: st.acc, momentum: st.momentum };
  }

  protected setBuffers(i: number, buffers: Record<string, FloatArray | null>): void {
    const st = this.states[i]!;
    st.row = buffers.row ?? null;
    st.col = buffers.col ?? null;
    st.acc = buffers.acc ?? null;
    st.momentum = buffers.momentum ?? null;
  }

  protected hyper(): Record<string, number | boolean | number[]> {
    return { momentum: this.momentum, eps: this.eps };
  }

  protected setHyper(hyper: Record<string, number | boolean | number[]>): void {
    const { momentum, eps } = hyper;
    if (typeof momentum !== 'number' || typeof eps !== 'number')
      throw new ConfigError('SM3.loadStateDict: the state lacks momentum or eps');
    this.momentum = momentum;
    this.eps = eps;
    this.checkHyper();
  }
}

registerOptimizer({
  name: 'sm3',
  description: 'SM3-II: Adagrad with row and column accumulators per matrix (sublinear memory)',
  options: z.object({
    momentum: z
      .number()
      .min(0)
      .lt(1)
      .default(0)
      .describe('momentum on the preconditioned update (the paper trains with 0.9)'),
    eps: z.number().min(0).default(1e-30).describe('added to sqrt(nu); guards 0 / 0 only'),
    weight_decay: z.number().min(0).default(0).describe('L2 penalty added to the gradient'),
  }),
  create: (groups, lr, o) =>
    new SM3(groups, { lr, momentum: o.momentum, eps: o.eps, weightDecay: o.weight_decay }),
});

/**
 * Finite-difference gradient checks in f64: the analytical gradient of sum(w * f(inputs)) for a
 * random weighting w is compared with central differences on every input element.
 */
import assert from 'node:assert/strict';
import {
  add as addOp,
  backward,
  fromArray,
  mul as mulOp,
  noGrad,
  Rng,
  randn,
  scope,
  sum as sumAll,
  type Tensor,
} from '../../src/tensor/index.ts';

export interface GradCheckOptions {
  eps?: number;
  /** Max allowed |analytic - numeric| / max(1, |numeric|). */
  tol?: number;
  seed?: number;
}

/** Random f64 input that requires grad. */
export function input64(shape: readonly number[], seed: number, scale = 1): Tensor {
  const t = randn(shape, { seed, dtype: 'f64', std: scale, track: false });
  t.requiresGrad = true;
  return t;
}

/** Weighted scalar of all outputs of f (a tensor or an array of tensors). */
function weightedSum(out: Tensor | Tensor[], weights: Float64Array[]): number {
  const outs = Array.isArray(out) ? out : [out];
  let s = 0;
  outs.forEach((o, k) => {
    const d = o.data as Float64Array;
    for (let i = 0; i < d.length; i++) s += d[i]! * weights[k]![i]!;
  });
  return s;
}

/**
 * Check d/d(inputs) of f. `f` must be deterministic. Inputs that do not require grad are held fixed.
 */
export function gradCheck(
  name: string,
  f: (...inputs: Tensor[]) => Tensor | Tensor[],
  inputs: Tensor[],
  options: GradCheckOptions = {},
): void {
  const eps = options.eps ?? 1e-6;
  const tol = options.tol ?? 1e-6;
  const rng = new Rng(options.seed ?? 1234);
  // analytic
  for (const x of inputs) x.grad = null;
  const weights: Float64Array[] = [];
  scope(() => {
    const out = f(...inputs);
    const outs = Array.isArray(out) ? out : [out];
    for (const o of outs) weights.push(Float64Array.from({ length: o.size }, () => rng.normal()));
    // loss = sum_k sum(w_k * out_k), through the engine so the tape runs
    let total: Tensor | null = null;
    outs.forEach((o, k) => {
      if (!o.requiresGrad) return;
      const w = fromArray(weights[k]!, o.shape, { dtype: 'f64' });
      const term = sumAll(mulOp(o, w));
      total = total ? addOp(total, term) : term;
    });
    assert.ok(total, `${name}: no output requires grad`);
    backward(total);
  });
  for (const [idx, x] of inputs.entries()) {
    if (!x.requiresGrad) continue;
    assert.ok(x.grad, `${name}: input ${idx} got no gradient`);
    const analytic = x.grad.data as Float64Array;
    const data = x.data as Float64Array;
    for (let i = 0; i < data.length; i++) {
      const orig = data[i]!;
      data[i] = orig + eps;
      const plus = noGrad(() => scope(() => weightedSum(f(...inputs), weights)));
      data[i] = orig - eps;
      const minus = noGrad(() => scope(() => weightedSum(f(...inputs), weights)));
      data[i] = orig;
      const numeric = (plus - minus) / (2 * eps);
      const err = Math.abs(analytic[i]! - numeric) / Math.max(1, Math.abs(numeric));
      assert.ok(
        err <= tol,
        `${name}: d/d input${idx}[${i}] analytic ${analytic[i]} vs numeric ${numeric} (rel err ${err.toExponential(2)} > ${tol})`,
      );
    }
    x.grad.dispose();
    x.grad = null;
  }
}

/**
 * Ridge regression in float64 with an unpenalised intercept: w = (Xc^T Xc + lambda I)^-1 Xc^T yc on
 * the centred features and targets, bias = mean(y) - mean(X) w. MATES' data-influence model is a
 * fine-tuned small LM; this is the small influence model the selection here fits on embeddings.
 */

/** A fitted linear model. */
export interface RidgeModel {
  weights: Float64Array;
  bias: number;
}

/** Solve the symmetric positive definite system A x = y (A row-major d x d) by Cholesky. */
function choleskySolve(A: Float64Array, y: Float64Array, d: number): Float64Array {
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let s = A[i * d + j]!;
      for (let k = 0; k < j; k++) s -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(s > 0)) throw new RangeError('ridge: the system is not positive definite (raise lambda)');
        L[i * d + i] = Math.sqrt(s);
      } else L[i * d + j] = s / L[j * d + j]!;
    }
  }
  const z = new Float64Array(d);
  for (let i = 0; i < d; i++) {
    let s = y[i]!;
    for (let k = 0; k < i; k++) s -= L[i * d + k]! * z[k]!;
    z[i] = s / L[i * d + i]!;
  }
  const x = new Float64Array(d);
  for (let i = d - 1; i >= 0; i--) {
    let s = z[i]!;
    for (let k = i + 1; k < d; k++) s -= L[k * d + i]! * x[k]!;
    x[i] = s / L[i * d + i]!;
  }
  return x;
}

/** Fit ridge regression of `y` on the rows of `X` (each of the same length) with penalty `lambda` >= 0. */
export function fitRidge(X: readonly ArrayLike<number>[], y: ArrayLike<number>, lambda: number): RidgeModel {
  const n = X.length;
  if (n === 0 || y.length !== n) throw new RangeError(`ridge: ${n} rows and ${y.length} targets`);
  const d = X[0]!.length;
  const meanX = new Float64Array(d);
  for (const x of X) for (let j = 0; j < d; j++) meanX[j]! += x[j]! / n;
  let meanY = 0;
  for (let i = 0; i < n; i++) meanY += y[i]! / n;
  const A = new Float64Array(d * d);
  const rhs = new Float64Array(d);
  const c = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    const x = X[i]!;
    for (let j = 0; j < d; j++) c[j] = x[j]! - meanX[j]!;
    const yc = y[i]! - meanY;
    for (let j = 0; j < d; j++) {
      rhs[j]! += c[j]! * yc;
      for (let k = 0; k <= j; k++) A[j * d + k]! += c[j]! * c[k]!;
    }
  }
  for (let j = 0; j < d; j++) {
    for (let k = 0; k < j; k++) A[k * d + j] = A[j * d + k]!;
    A[j * d + j]! += lambda;
  }
  const weights = choleskySolve(A, rhs, d);
  let bias = meanY;
  for (let j = 0; j < d; j++) bias -= meanX[j]! * weights[j]!;
  return { weights, bias };
}

/** The model's prediction for one feature row. */
export function predictRidge(model: RidgeModel, x: ArrayLike<number>): number {
  let s = model.bias;
  for (let j = 0; j < model.weights.length; j++) s += model.weights[j]! * x[j]!;
  return s;
}

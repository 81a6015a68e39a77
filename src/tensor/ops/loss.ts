/**
 * Token-level losses: cross-entropy on materialised logits, and the fused LM head
 * (`linearCrossEntropy`) that never holds the [N, V] logits. Labels of -100 are ignored.
 */
import type { Bf16Array, FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import type { ComputePrecision } from './matmul.ts';
import { emptyLike, floatOf, kernelsOf, sameShape } from './util.ts';

/** Label value of a token excluded from the loss (as PyTorch's ignore_index). */
export const IGNORE_INDEX = -100;

export interface CrossEntropyOptions {
  /** Label smoothing s in [0, 1]: loss = -(1-s) logp[label] - s mean_v logp[v] (default 0). */
  smoothing?: number;
  /** 'mean' over non-ignored tokens (0 when there are none), 'sum', or 'none' (per token, 0 where ignored). */
  reduction?: 'mean' | 'sum' | 'none';
}

function checkLabels(labels: Tensor, V: number, op: string): Int32Array {
  if (labels.dtype !== 'i32') throw new TypeError(`${op}: labels ${labels.describe()} must be i32`);
  const d = labels.data as Int32Array;
  for (let i = 0; i < d.length; i++) {
    const l = d[i]!;
    if (l !== IGNORE_INDEX && (l < 0 || l >= V)) {
      throw new RangeError(
        `${op}: label ${l} at position ${i} is outside the vocabulary [0, ${V}) (use -100 to ignore a token)`,
      );
    }
  }
  return d;
}

/**
 * Cross-entropy of logits [..., V] against labels i32 [...] (same leading shape), with optional
 * label smoothing. Returns a scalar ('mean', 'sum') or per-token losses shaped like labels
 * ('none'). Gradient flows to the logits.
 */
export function crossEntropy(logits: Tensor, labels: Tensor, options: CrossEntropyOptions = {}): Tensor {
  const ld = floatOf(logits, 'crossEntropy', 'logits');
  const smoothing = options.smoothing ?? 0;
  const reduction = options.reduction ?? 'mean';
  if (!(smoothing >= 0 && smoothing <= 1))
    throw new RangeError(`crossEntropy: smoothing must be in [0, 1], found ${smoothing}`);
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new RangeError(
      `crossEntropy: reduction must be 'mean', 'sum' or 'none', found '${String(reduction)}'`,
    );
  }
  if (logits.rank === 0 || !sameShape(logits.shape.slice(0, -1), labels.shape)) {
    throw new RangeError(
      `crossEntropy: logits ${formatShape(logits.shape)} and labels ${formatShape(labels.shape)}: labels must be the logits' shape without the last (vocabulary) dim`,
    );
  }
  const V = logits.shape[logits.rank - 1]!;
  if (V === 0)
    throw new RangeError(`crossEntropy: logits ${formatShape(logits.shape)} have an empty vocabulary`);
  const rows = labels.size;
  const labelData = checkLabels(labels, V, 'crossEntropy');
  let count = 0;
  for (let i = 0; i < rows; i++) if (labelData[i] !== IGNORE_INDEX) count++;
  const k = kernelsOf(logits);
  const perToken = Tensor.alloc(labels.shape, logits.dtype, false, { track: reduction === 'none' });
  const lse = Tensor.alloc([rows], logits.dtype, false, { track: false });
  k.crossEntropy(ld, labelData, perToken.data as FloatArray, lse.data as FloatArray, rows, V, smoothing);
  let out = perToken;
  if (reduction !== 'none') {
    const lossData = perToken.data as FloatArray;
    let total = 0;
    for (let i = 0; i < rows; i++) total += lossData[i]!;
    out = Tensor.alloc([], logits.dtype, false);
    (out.data as FloatArray)[0] = reduction === 'mean' ? (count === 0 ? 0 : total / count) : total;
    perToken.release();
  }
  if (needsGrad(logits)) {
    record('crossEntropy', [logits], [out], [logits, labels, lse], ([g]) => {
      const gd = g!.data as FloatArray;
      let gLoss: FloatArray;
      if (reduction === 'none') gLoss = gd;
      else {
        gLoss = logits.dtype === 'f64' ? new Float64Array(rows) : new Float32Array(rows);
        gLoss.fill(reduction === 'sum' ? gd[0]! : count === 0 ? 0 : gd[0]! / count);
      }
      const gLogits = emptyLike(logits);
      k.crossEntropyBackward(
        ld,
        labelData,
        lse.data as FloatArray,
        gLoss,
        gLogits.data as FloatArray,
        rows,
        V,
        smoothing,
      );
      return [gLogits];
    });
  }
  lse.release(); // the tape holds its own reference when recorded
  return out;
}

/** Per-token outputs of the fused LM head. */
export interface LinearCrossEntropyResult {
  /** log p(label) [N]; 0 where the label is -100. Differentiable. */
  logp: Tensor;
  /** Entropy of the predictive distribution [N], in nats. Differentiable. */
  entropy: Tensor;
  /** Log-prob of the most likely token [N] (the maximum softmax probability, in log space). Differentiable. */
  top1: Tensor;
  /** Log-prob of the second most likely token [N] (-Infinity when V == 1). No gradient. */
  top2: Tensor;
  /** 1 where the argmax equals the label, else 0 (0 for -100) [N], in hidden's float dtype. No gradient. */
  correct: Tensor;
  /** Argmax token per row (first index on ties). */
  argmax: Int32Array;
}

/**
 * The fused LM head: logits = hidden [N, d] x weight [V, d]^T computed chunk by chunk over the
 * vocabulary (never [N, V] at once), reduced to per-token statistics. `weight` is hidden's dtype,
 * or bf16 (a frozen head) with f32 hidden; labels are i32 with N entries (-100 = ignored).
 * logp, entropy and top1 are the outputs of one autograd node: any loss built from them
 * backpropagates to hidden and (when it requires grad) weight in one chunked pass. With
 * `precision: 'bf16'` the logits and the two backward products take bf16-rounded inputs with f32
 * accumulation (`linearCrossEntropyBf16`); the softmax statistics stay f32.
 */
export function linearCrossEntropy(
  hidden: Tensor,
  weight: Tensor,
  labels: Tensor,
  options: { precision?: ComputePrecision } = {},
): LinearCrossEntropyResult {
  const precision = options.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'bf16') {
    throw new TypeError(
      `linearCrossEntropy: precision must be 'f32' or 'bf16', found '${String(precision)}'`,
    );
  }
  const bf16Compute = precision === 'bf16';
  const hd = floatOf(hidden, 'linearCrossEntropy', 'hidden');
  if (hidden.rank !== 2 || weight.rank !== 2 || weight.shape[1] !== hidden.shape[1]) {
    throw new RangeError(
      `linearCrossEntropy: hidden ${formatShape(hidden.shape)} and weight ${formatShape(weight.shape)}: expected [N, d] and [V, d]`,
    );
  }
  const wBf16 = weight.dtype === 'bf16';
  if (!(weight.dtype === hidden.dtype || (wBf16 && hidden.dtype === 'f32'))) {
    throw new TypeError(
      `linearCrossEntropy: hidden ${hidden.dtype} and weight ${weight.dtype} do not combine`,
    );
  }
  if (wBf16 && needsGrad(weight)) {
    throw new TypeError(
      `linearCrossEntropy: bf16 weight ${weight.describe()} requires grad, but bf16 is frozen storage; convert it to f32 to train it`,
    );
  }
  const [N, d] = hidden.shape as [number, number];
  const V = weight.shape[0]!;
  if (V === 0)
    throw new RangeError(`linearCrossEntropy: weight ${formatShape(weight.shape)} has an empty vocabulary`);
  if (labels.size !== N) {
    throw new RangeError(
      `linearCrossEntropy: labels ${formatShape(labels.shape)} must hold one label per row of hidden ${formatShape(hidden.shape)}`,
    );
  }
  const labelData = checkLabels(labels, V, 'linearCrossEntropy');
  const dtype = hidden.dtype;
  const logp = Tensor.alloc([N], dtype, false);
  const entropy = Tensor.alloc([N], dtype, false);
  const top1 = Tensor.alloc([N], dtype, false);
  const top2 = Tensor.alloc([N], dtype, false);
  const correct = Tensor.alloc([N], dtype, false);
  const lse = Tensor.alloc([N], dtype, false, { track: false });
  const argmax = new Int32Array(N);
  const k = kernelsOf(hidden);
  const wd = weight.data as FloatArray | Bf16Array;
  const forward = bf16Compute ? k.linearCrossEntropyBf16.bind(k) : k.linearCrossEntropy.bind(k);
  forward(hd, wd, wBf16, labelData, N, d, V, {
    lse: lse.data as FloatArray,
    logp: logp.data as FloatArray,
    entropy: entropy.data as FloatArray,
    argmax,
    top1: top1.data as FloatArray,
    top2: top2.data as FloatArray,
  });
  const cd = correct.data as FloatArray;
  for (let i = 0; i < N; i++) cd[i] = argmax[i] === labelData[i] ? 1 : 0;
  if (needsGrad(hidden, weight)) {
    record(
      'linearCrossEntropy',
      [hidden, weight],
      [logp, entropy, top1],
      [hidden, weight, labels, lse, entropy],
      (grads) => {
        const [gLogp, gEnt, gTop1] = grads;
        const coefficient = (g: Tensor | null | undefined): FloatArray =>
          g ? (g.data as FloatArray) : (Tensor.alloc([N], dtype, true).data as FloatArray);
        const gh = hidden.requiresGrad ? emptyLike(hidden) : null;
        const gw = weight.requiresGrad ? Tensor.alloc(weight.shape, dtype, true) : null;
        const backward = bf16Compute
          ? k.linearCrossEntropyBf16Backward.bind(k)
          : k.linearCrossEntropyBackward.bind(k);
        backward(
          hd,
          wd,
          wBf16,
          labelData,
          lse.data as FloatArray,
          entropy.data as FloatArray,
          argmax,
          coefficient(gLogp),
          coefficient(gEnt),
          gTop1 ? (gTop1.data as FloatArray) : null,
          (gh?.data as FloatArray | undefined) ?? null,
          (gw?.data as FloatArray | undefined) ?? null,
          N,
          d,
          V,
        );
        return [gh, gw];
      },
    );
  }
  lse.release(); // the tape holds its own reference when recorded
  return { logp, entropy, top1, top2, correct, argmax };
}

/**
 * Losses: the fused LM head (linear + cross-entropy statistics, chunked over the vocabulary so the
 * [N, V] logits never exist) and cross-entropy on materialised logits. Labels of -100 are ignored.
 * Everything is accumulated in JS doubles.
 */
import type { Bf16Array, FloatArray, LinearCrossEntropyOutputs } from '../kernels.ts';
import { bf16 } from './basic.ts';
import { roundedCopy, roundToBf16 } from './gemm-bf16.ts';

/** Label value that marks a token excluded from the loss. */
export const IGNORE_INDEX = -100;
/** Vocabulary columns per chunk of logits. */
const VOCAB_CHUNK = 1024;
/** Rows (tokens) per block: a block's logits chunk is ROW_BLOCK x VOCAB_CHUNK doubles. */
const ROW_BLOCK = 16;

/** Throws unless every label is -100 or in [0, V). */
function checkLabels(labels: Int32Array, N: number, V: number, where: string): void {
  for (let r = 0; r < N; r++) {
    const l = labels[r]!;
    if (l !== IGNORE_INDEX && (l < 0 || l >= V)) {
      throw new RangeError(
        `${where}: label ${l} of row ${r} is outside the vocabulary [0, ${V}) (use -100 to ignore a token)`,
      );
    }
  }
}

/** Row v of w widened into `row` (doubles). */
function loadRow(w: FloatArray | Bf16Array, wBf16: boolean, v: number, d: number, row: Float64Array): void {
  const base = v * d;
  if (wBf16) for (let k = 0; k < d; k++) row[k] = bf16(w[base + k]!);
  else for (let k = 0; k < d; k++) row[k] = w[base + k]!;
}

/** z[r*nc + c] = h[r0 + r] . w[v0 + c] for r < nr, c < nc. */
function logitsBlock(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  r0: number,
  nr: number,
  v0: number,
  nc: number,
  d: number,
  z: Float64Array,
  wRow: Float64Array,
): void {
  for (let c = 0; c < nc; c++) {
    loadRow(w, wBf16, v0 + c, d, wRow);
    for (let r = 0; r < nr; r++) {
      const hBase = (r0 + r) * d;
      let s = 0;
      for (let k = 0; k < d; k++) s += h[hBase + k]! * wRow[k]!;
      z[r * nc + c] = s;
    }
  }
}

/**
 * Fused LM head forward: logits = h [N, d] x w [V, d]^T, chunk by chunk over V (online max /
 * sum-exp / sum-exp*logit, rescaled when the max grows). Per row: lse, logp of the label (0 for
 * -100), entropy H = log S - sum(e (z - m)) / S (= lse - sum p z), argmax (first index on ties),
 * top1 and top2 log-probs (top2 -Infinity when V == 1).
 */
export function linearCrossEntropy(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  labels: Int32Array,
  N: number,
  d: number,
  V: number,
  outs: LinearCrossEntropyOutputs,
): void {
  checkLabels(labels, N, V, 'linearCrossEntropy');
  const chunk = Math.max(1, Math.min(VOCAB_CHUNK, V));
  const z = new Float64Array(ROW_BLOCK * chunk);
  const wRow = new Float64Array(d);
  const m = new Float64Array(ROW_BLOCK);
  const S = new Float64Array(ROW_BLOCK);
  const T = new Float64Array(ROW_BLOCK);
  const best1 = new Float64Array(ROW_BLOCK);
  const best2 = new Float64Array(ROW_BLOCK);
  const arg = new Int32Array(ROW_BLOCK);
  const zLabel = new Float64Array(ROW_BLOCK);
  for (let r0 = 0; r0 < N; r0 += ROW_BLOCK) {
    const nr = Math.min(ROW_BLOCK, N - r0);
    m.fill(-Infinity);
    S.fill(0);
    T.fill(0);
    best1.fill(-Infinity);
    best2.fill(-Infinity);
    arg.fill(0);
    zLabel.fill(0);
    for (let v0 = 0; v0 < V; v0 += chunk) {
      const nc = Math.min(chunk, V - v0);
      logitsBlock(h, w, wBf16, r0, nr, v0, nc, d, z, wRow);
      for (let r = 0; r < nr; r++) {
        const zb = r * nc;
        const label = labels[r0 + r]!;
        if (label >= v0 && label < v0 + nc) zLabel[r] = z[zb + label - v0]!;
        let cm = -Infinity;
        for (let c = 0; c < nc; c++) {
          const x = z[zb + c]!;
          if (x > cm) cm = x;
          if (x > best1[r]!) {
            best2[r] = best1[r]!;
            best1[r] = x;
            arg[r] = v0 + c;
          } else if (x > best2[r]!) best2[r] = x;
        }
        const newM = Math.max(m[r]!, cm);
        if (newM === -Infinity) continue;
        if (m[r]! !== -Infinity && newM > m[r]!) {
          // rescale: e^{z - m} -> e^{z - m'}, (z - m) -> (z - m') + ...
          const a = Math.exp(m[r]! - newM);
          T[r] = a * (T[r]! + (m[r]! - newM) * S[r]!);
          S[r] = a * S[r]!;
        }
        m[r] = newM;
        let s = S[r]!;
        let t = T[r]!;
        for (let c = 0; c < nc; c++) {
          const x = z[zb + c]! - newM;
          const e = Math.exp(x);
          s += e;
          if (e !== 0) t += e * x;
        }
        S[r] = s;
        T[r] = t;
      }
    }
    for (let r = 0; r < nr; r++) {
      const row = r0 + r;
      const logS = Math.log(S[r]!);
      const rowLse = m[r]! + logS;
      outs.lse[row] = rowLse;
      outs.entropy[row] = logS - T[r]! / S[r]!;
      outs.logp[row] = labels[row] === IGNORE_INDEX ? 0 : zLabel[r]! - rowLse;
      outs.argmax[row] = arg[r]!;
      outs.top1[row] = best1[r]! - rowLse;
      outs.top2[row] = best2[r]! - rowLse;
    }
  }
}

/**
 * Fused LM head backward, chunk by chunk over V, from per-row coefficients:
 *   dz_v = cLogp (1[v = label] - p_v) + cEnt (-p_v (log p_v + H)) + cTop1 (1[v = argmax] - p_v)
 * (rows labelled -100 drop the cLogp term; cTop1 null = 0). gh = dz w is written when given;
 * gw += dz^T h is ACCUMULATED when given.
 */
export function linearCrossEntropyBackward(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  labels: Int32Array,
  lse: FloatArray,
  entropy: FloatArray,
  argmax: Int32Array,
  cLogp: FloatArray,
  cEnt: FloatArray,
  cTop1: FloatArray | null,
  gh: FloatArray | null,
  gw: FloatArray | null,
  N: number,
  d: number,
  V: number,
): void {
  lceBackward(h, w, wBf16, labels, lse, entropy, argmax, cLogp, cEnt, cTop1, gh, gw, N, d, V, false);
}

/**
 * Kernels.linearCrossEntropyBf16: the fused LM head with bf16-compute logits, h and w rounded to
 * bf16 (a bf16 w as is), then the f64 reference (which stands in for native f32 accumulation).
 */
export function linearCrossEntropyBf16(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  labels: Int32Array,
  N: number,
  d: number,
  V: number,
  outs: LinearCrossEntropyOutputs,
): void {
  linearCrossEntropy(roundedCopy(h), wBf16 ? w : roundedCopy(w as FloatArray), wBf16, labels, N, d, V, outs);
}

/**
 * Kernels.linearCrossEntropyBf16Backward: logits as linearCrossEntropyBf16, and dL/dlogits rounded
 * to bf16 (through f32, as native rounds its f32 dZ) before the two backward products.
 */
export function linearCrossEntropyBf16Backward(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  labels: Int32Array,
  lse: FloatArray,
  entropy: FloatArray,
  argmax: Int32Array,
  cLogp: FloatArray,
  cEnt: FloatArray,
  cTop1: FloatArray | null,
  gh: FloatArray | null,
  gw: FloatArray | null,
  N: number,
  d: number,
  V: number,
): void {
  const wr = wBf16 ? w : roundedCopy(w as FloatArray);
  lceBackward(
    roundedCopy(h),
    wr,
    wBf16,
    labels,
    lse,
    entropy,
    argmax,
    cLogp,
    cEnt,
    cTop1,
    gh,
    gw,
    N,
    d,
    V,
    true,
  );
}

function lceBackward(
  h: FloatArray,
  w: FloatArray | Bf16Array,
  wBf16: boolean,
  labels: Int32Array,
  lse: FloatArray,
  entropy: FloatArray,
  argmax: Int32Array,
  cLogp: FloatArray,
  cEnt: FloatArray,
  cTop1: FloatArray | null,
  gh: FloatArray | null,
  gw: FloatArray | null,
  N: number,
  d: number,
  V: number,
  roundGrad: boolean,
): void {
  checkLabels(labels, N, V, 'linearCrossEntropyBackward');
  if (!gh && !gw) return;
  const chunk = Math.max(1, Math.min(VOCAB_CHUNK, V));
  const z = new Float64Array(ROW_BLOCK * chunk);
  const wRow = new Float64Array(d);
  const ghAcc = new Float64Array(ROW_BLOCK * d);
  const gwAcc = new Float64Array(d);
  for (let r0 = 0; r0 < N; r0 += ROW_BLOCK) {
    const nr = Math.min(ROW_BLOCK, N - r0);
    ghAcc.fill(0);
    for (let v0 = 0; v0 < V; v0 += chunk) {
      const nc = Math.min(chunk, V - v0);
      logitsBlock(h, w, wBf16, r0, nr, v0, nc, d, z, wRow);
      // logits -> dL/dlogits in place
      for (let r = 0; r < nr; r++) {
        const row = r0 + r;
        const rowLse = lse[row]!;
        const H = entropy[row]!;
        const label = labels[row]!;
        const cl = label === IGNORE_INDEX ? 0 : cLogp[row]!;
        const ce = cEnt[row]!;
        const ct = cTop1 ? cTop1[row]! : 0;
        const am = argmax[row]!;
        const cSum = cl + ct;
        const zb = r * nc;
        for (let c = 0; c < nc; c++) {
          const v = v0 + c;
          const logp = z[zb + c]! - rowLse;
          const p = Math.exp(logp);
          let g = p === 0 ? 0 : -p * (cSum + ce * (logp + H));
          if (v === label) g += cl;
          if (v === am) g += ct;
          z[zb + c] = roundGrad ? roundToBf16(g) : g;
        }
      }
      for (let c = 0; c < nc; c++) {
        const v = v0 + c;
        if (gh) {
          loadRow(w, wBf16, v, d, wRow);
          for (let r = 0; r < nr; r++) {
            const g = z[r * nc + c]!;
            if (g === 0) continue;
            const gb = r * d;
            for (let k = 0; k < d; k++) ghAcc[gb + k]! += g * wRow[k]!;
          }
        }
        if (gw) {
          gwAcc.fill(0);
          for (let r = 0; r < nr; r++) {
            const g = z[r * nc + c]!;
            if (g === 0) continue;
            const hb = (r0 + r) * d;
            for (let k = 0; k < d; k++) gwAcc[k]! += g * h[hb + k]!;
          }
          const wb = v * d;
          for (let k = 0; k < d; k++) gw[wb + k] = gw[wb + k]! + gwAcc[k]!;
        }
      }
    }
    if (gh) for (let i = 0; i < nr * d; i++) gh[r0 * d + i] = ghAcc[i]!;
  }
}

/**
 * Cross-entropy on materialised logits [rows, cols] with label smoothing s:
 *   loss = -(1-s) logp[label] - s * mean_v logp[v]   (0 for label -100); lse saved per row.
 */
export function crossEntropy(
  logits: FloatArray,
  labels: Int32Array,
  loss: FloatArray,
  lse: FloatArray,
  rows: number,
  cols: number,
  smoothing: number,
): void {
  checkLabels(labels, rows, cols, 'crossEntropy');
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    let m = -Infinity;
    let zSum = 0;
    for (let j = 0; j < cols; j++) {
      const x = logits[base + j]!;
      if (x > m || Number.isNaN(x)) m = x;
      zSum += x;
    }
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(logits[base + j]! - m);
    const rowLse = m + Math.log(s);
    lse[r] = rowLse;
    const label = labels[r]!;
    if (label === IGNORE_INDEX) {
      loss[r] = 0;
      continue;
    }
    const nll = rowLse - logits[base + label]!;
    loss[r] = smoothing === 0 ? nll : (1 - smoothing) * nll + smoothing * (rowLse - zSum / cols);
  }
}

/** gLogits = gLoss[row] * (p - (1-s) onehot(label) - s/cols); 0 for rows labelled -100. */
export function crossEntropyBackward(
  logits: FloatArray,
  labels: Int32Array,
  lse: FloatArray,
  gLoss: FloatArray,
  gLogits: FloatArray,
  rows: number,
  cols: number,
  smoothing: number,
): void {
  checkLabels(labels, rows, cols, 'crossEntropyBackward');
  const uniform = smoothing / cols;
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    const label = labels[r]!;
    if (label === IGNORE_INDEX) {
      for (let j = 0; j < cols; j++) gLogits[base + j] = 0;
      continue;
    }
    const g = gLoss[r]!;
    const rowLse = lse[r]!;
    for (let j = 0; j < cols; j++) {
      const p = Math.exp(logits[base + j]! - rowLse);
      gLogits[base + j] = g * (p - uniform - (j === label ? 1 - smoothing : 0));
    }
  }
}

/**
 * CorDA ("CorDA: Context-Oriented Decomposition Adaptation of Large Language Models"), PEFT's
 * `init_lora_weights="corda"` (peft/tuners/lora/corda.py and LoraLayer.corda_init):
 *
 * 1. covariance: every target Linear's inputs on calibration data, as PEFT's forward hook collects
 *    them: per forward call (one calibration example), X [tokens, in] is divided by |max(X)|, then
 *    C += X^T X; at the end C /= number of calls (so C is the mean X^T X of the examples);
 * 2. damping until invertible: C' = C + damp * mean(diag C) * I with damp = 0.01, doubled until
 *    ||C' C'^-1 - I||_F < 0.05;
 * 3. SVD of W C' = U S V'^T, and V = (V'^T C'^-1)^T, so W = U S V^T exactly;
 * 4. `ipm` (instruction-previewed) keeps the top r triplets, `kpm` (knowledge-preserving) the
 *    bottom r; with S_r divided by the scaling, A = sqrt(S_r) V_r^T [r, in], B = U_r sqrt(S_r)
 *    [out, r], and the base becomes the residual W - scaling * B A.
 *
 * The cropped triplets are PEFT's `CordaEigens` (S_WC, U_WC, V_WC): Attune saves them next to the
 * adapter (`corda_eigens.safetensors`, keys `<module path>.eigens.S_WC` etc., PEFT's cache_file
 * key names; f64) so a saved CorDA adapter re-initialises the original base to the same residual
 * on load, without the calibration data.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.ts';
import { openSafetensors, writeSafetensors } from '../io/index.ts';
import { isCausalLM } from '../models/index.ts';
import { type Linear, Module } from '../nn/index.ts';
import {
  fromArray,
  type Matrix64,
  matmul,
  matmul64,
  matrix64,
  max,
  noGrad,
  reshape,
  scope,
  svd,
  Tensor,
  tensorToMatrix64,
} from '../tensor/index.ts';
import type { MutatingInit } from './lora-init.ts';
import type { CalibrationExample } from './tuner.ts';

/** Which singular triplets become the adapter: the top r (ipm) or the bottom r (kpm). */
export type CordaMethod = 'ipm' | 'kpm';

/** The r singular triplets of W C kept for one target (PEFT's CordaEigens), f64. */
export interface CordaEigens {
  /** S_WC [r]. */
  s: Float64Array;
  /** U_WC [out, r]. */
  u: Matrix64;
  /** V_WC [in, r] (right singular vectors times C^-1). */
  v: Matrix64;
}

/** File (in the adapter directory) holding every target's CordaEigens. */
export const CORDA_EIGENS_FILE = 'corda_eigens.safetensors';

/** Records X^T X of its inputs, then runs the wrapped Linear (PEFT's forward hook). */
class CovarianceRecorder extends Module {
  readonly sum: Float64Array;
  count = 0;

  constructor(
    readonly linear: Linear,
    readonly name: string,
  ) {
    super();
    this.sum = new Float64Array(linear.inFeatures * linear.inFeatures);
  }

  forward(x: Tensor): Tensor {
    scope(() => {
      const n = this.linear.inFeatures;
      const x2 = reshape(x, [x.size / n, n]);
      const top = max(x2).floatData()[0]!;
      const scale = Math.abs(top);
      if (!Number.isFinite(scale) || scale === 0) {
        throw new ConfigError(
          `lora: init_lora_weights 'corda': the inputs of '${this.name}' on a calibration example are ${Number.isFinite(scale) ? 'all zero or have max 0' : 'not finite'}; check the calibration data`,
        );
      }
      const gram = matmul(x2, x2, { transA: true }).floatData();
      const k = 1 / (scale * scale);
      for (let i = 0; i < this.sum.length; i++) this.sum[i] = this.sum[i]! + k * gram[i]!;
    });
    this.count += 1;
    return this.linear.forward(x);
  }
}

/**
 * C = mean over calibration examples of X^T X / max(X)^2 for each target (see the file comment),
 * by running `model` (a causal LM, in eval mode, no gradients) on each example's tokens. The
 * model is left as it was.
 */
export function collectCovariances(
  model: Module,
  targets: readonly [string, Linear][],
  examples: readonly CalibrationExample[],
): Map<string, Matrix64> {
  if (!isCausalLM(model)) throw new ConfigError("lora: init_lora_weights 'corda' needs a causal LM");
  if (examples.length === 0)
    throw new ConfigError("lora: init_lora_weights 'corda': the calibration data has no examples");
  const recorders = targets.map(([name, linear]) => new CovarianceRecorder(linear, name));
  const wasTraining = model.training;
  for (const r of recorders) model.setSubmodule(r.name, r);
  model.eval();
  try {
    noGrad(() => {
      for (const ex of examples) {
        scope(() => {
          model.forwardHidden(fromArray(ex.inputIds, [1, ex.inputIds.length], { dtype: 'i32' }));
        });
      }
    });
  } finally {
    for (const r of recorders) model.setSubmodule(r.name, r.linear);
    model.train(wasTraining);
  }
  const out = new Map<string, Matrix64>();
  for (const r of recorders) {
    const n = r.linear.inFeatures;
    const c = matrix64(n, n);
    for (let i = 0; i < c.data.length; i++) c.data[i] = r.sum[i]! / r.count;
    out.set(r.name, c);
  }
  return out;
}

/** The inverse of a square f64 matrix by Gauss-Jordan elimination with partial pivoting (null if singular). */
export function invert64(a: Matrix64): Matrix64 | null {
  const n = a.rows;
  const m = Float64Array.from(a.data);
  const inv = matrix64(n, n);
  for (let i = 0; i < n; i++) inv.data[i * n + i] = 1;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++)
      if (Math.abs(m[r * n + col]!) > Math.abs(m[pivot * n + col]!)) pivot = r;
    const p = m[pivot * n + col]!;
    if (p === 0 || !Number.isFinite(p)) return null;
    if (pivot !== col) {
      for (let j = 0; j < n; j++) {
        const t = m[col * n + j]!;
        m[col * n + j] = m[pivot * n + j]!;
        m[pivot * n + j] = t;
        const u = inv.data[col * n + j]!;
        inv.data[col * n + j] = inv.data[pivot * n + j]!;
        inv.data[pivot * n + j] = u;
      }
    }
    const ip = 1 / p;
    for (let j = 0; j < n; j++) {
      m[col * n + j] = m[col * n + j]! * ip;
      inv.data[col * n + j] = inv.data[col * n + j]! * ip;
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * n + col]!;
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j] = m[r * n + j]! - f * m[col * n + j]!;
        inv.data[r * n + j] = inv.data[r * n + j]! - f * inv.data[col * n + j]!;
      }
    }
  }
  return inv;
}

/** Largest number of damping doublings before giving up (0.01 * 2^40 is far past any useful C). */
const MAX_DAMPING_STEPS = 40;

/**
 * C' = C + damp * mean(diag C) * I and its inverse, damp = 0.01 doubled until
 * ||C' C'^-1 - I||_F < 0.05 (PEFT's rule). Throws naming `name` when C is unusable.
 */
export function dampedCovariance(
  c: Matrix64,
  name: string,
): { fixed: Matrix64; inverse: Matrix64; damp: number } {
  const n = c.rows;
  let trace = 0;
  for (let i = 0; i < n; i++) trace += c.data[i * n + i]!;
  const meanDiag = trace / n;
  if (!Number.isFinite(meanDiag) || meanDiag <= 0) {
    throw new ConfigError(
      `lora: init_lora_weights 'corda': the input covariance of '${name}' has mean diagonal ${meanDiag}; the calibration data gives this layer no signal`,
    );
  }
  let damp = 0.01;
  for (let step = 0; step <= MAX_DAMPING_STEPS; step++, damp *= 2) {
    const fixed = matrix64(n, n, Float64Array.from(c.data));
    for (let i = 0; i < n; i++) fixed.data[i * n + i] = fixed.data[i * n + i]! + damp * meanDiag;
    const inverse = invert64(fixed);
    if (!inverse) continue;
    const prod = matmul64(fixed, inverse);
    let err = 0;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++) {
        const d = prod.data[i * n + j]! - (i === j ? 1 : 0);
        err += d * d;
      }
    if (Math.sqrt(err) < 0.05) return { fixed, inverse, damp };
  }
  throw new ConfigError(
    `lora: init_lora_weights 'corda': the input covariance of '${name}' stayed singular after ${MAX_DAMPING_STEPS} damping steps`,
  );
}

/**
 * The CorDA triplets of `w` ([out, in], f64) under input covariance `c` ([in, in]): the top r
 * (`ipm`) or bottom r (`kpm`) of SVD(W C'), with V = C'^-T V'. See the file comment.
 */
export function cordaEigens(
  w: Matrix64,
  c: Matrix64,
  r: number,
  method: CordaMethod,
  name = 'the layer',
): CordaEigens {
  const out = w.rows;
  const inF = w.cols;
  if (c.rows !== inF || c.cols !== inF)
    throw new ConfigError(
      `lora: corda: covariance of '${name}' is ${c.rows} x ${c.cols}, expected ${inF} x ${inF}`,
    );
  const k = Math.min(out, inF);
  if (r > k)
    throw new ConfigError(
      `lora: init_lora_weights 'corda' needs r <= min(out, in) = ${k} for '${name}', found r = ${r}`,
    );
  const { fixed, inverse } = dampedCovariance(c, name);
  const full = svd(matmul64(w, fixed));
  const u = full.u!;
  const vPrime = full.v!;
  // V = (V'^T C'^-1)^T = C'^-T V'
  const vAll = matmul64(inverse, vPrime, { transA: true });
  const start = method === 'ipm' ? 0 : k - r;
  const s = full.s.slice(start, start + r);
  const uR = matrix64(out, r);
  const vR = matrix64(inF, r);
  for (let j = 0; j < r; j++) {
    for (let o = 0; o < out; o++) uR.data[o * r + j] = u.data[o * u.cols + start + j]!;
    for (let i = 0; i < inF; i++) vR.data[i * r + j] = vAll.data[i * vAll.cols + start + j]!;
  }
  return { s, u: uR, v: vR };
}

/**
 * A = sqrt(S / scaling) V^T [r, in], B = U sqrt(S / scaling) [out, r] (rounded to `dtype`) and
 * the residual W - scaling * B A, as PEFT's corda_init.
 */
export function cordaInit(
  w: Matrix64,
  eigens: CordaEigens,
  scaling: number,
  dtype: 'f32' | 'f64',
): MutatingInit {
  const out = w.rows;
  const inF = w.cols;
  const r = eigens.s.length;
  const a = matrix64(r, inF);
  const b = matrix64(out, r);
  for (let j = 0; j < r; j++) {
    const root = Math.sqrt(eigens.s[j]! / scaling);
    for (let o = 0; o < out; o++) b.data[o * r + j] = eigens.u.data[o * r + j]! * root;
    for (let i = 0; i < inF; i++) a.data[j * inF + i] = root * eigens.v.data[i * r + j]!;
  }
  if (dtype === 'f32') {
    a.data.set(Float32Array.from(a.data));
    b.data.set(Float32Array.from(b.data));
  }
  const ba = matmul64(b, a);
  const residual = matrix64(out, inF);
  for (let i = 0; i < residual.data.length; i++) residual.data[i] = w.data[i]! - scaling * ba.data[i]!;
  return { a, b, residual };
}

/**
 * Every target's CorDA triplets: input covariances collected on `examples`, then `cordaEigens`
 * of each weight. Nothing in the model is changed.
 */
export function computeCordaEigens(
  model: Module,
  targets: readonly [string, Linear][],
  examples: readonly CalibrationExample[],
  r: number,
  method: CordaMethod,
): Map<string, CordaEigens> {
  const covariances = collectCovariances(model, targets, examples);
  const out = new Map<string, CordaEigens>();
  for (const [name, linear] of targets)
    out.set(name, cordaEigens(tensorToMatrix64(linear.weight), covariances.get(name)!, r, method, name));
  return out;
}

function wrap(m: Matrix64): Tensor {
  return Tensor.wrap(Float64Array.from(m.data), [m.rows, m.cols], { track: false });
}

/** Write every target's triplets into `dir`/corda_eigens.safetensors (f64, PEFT's cache key names). */
export function saveCordaEigens(dir: string, eigens: ReadonlyMap<string, CordaEigens>): void {
  const tensors = new Map<string, Tensor>();
  for (const [name, e] of eigens) {
    tensors.set(`${name}.eigens.S_WC`, Tensor.wrap(Float64Array.from(e.s), [e.s.length], { track: false }));
    tensors.set(`${name}.eigens.U_WC`, wrap(e.u));
    tensors.set(`${name}.eigens.V_WC`, wrap(e.v));
  }
  writeSafetensors(join(dir, CORDA_EIGENS_FILE), tensors, { format: 'pt' });
}

/** Read `dir`/corda_eigens.safetensors (written by `saveCordaEigens`); errors name the file and tensor. */
export function loadCordaEigens(dir: string): Map<string, CordaEigens> {
  const file = join(dir, CORDA_EIGENS_FILE);
  if (!existsSync(file)) {
    throw new FormatError(
      file,
      "file not found: a CorDA adapter (init_lora_weights 'corda') needs the triplets saved next to it to rebuild the residual base; convert it to a plain LoRA where it was trained (attune export --format peft --to-plain-lora)",
    );
  }
  const reader = openSafetensors(file);
  const out = new Map<string, CordaEigens>();
  try {
    const modules = new Set<string>();
    for (const n of reader.names()) {
      const m = /^(.*)\.eigens\.(S_WC|U_WC|V_WC)$/.exec(n);
      if (!m)
        throw new FormatError(file, `unexpected tensor '${n}' (expected <module>.eigens.S_WC, .U_WC, .V_WC)`);
      modules.add(m[1]!);
    }
    for (const name of modules) {
      const read = (k: string): Tensor => {
        const key = `${name}.eigens.${k}`;
        if (!reader.has(key)) throw new FormatError(file, `missing tensor '${key}'`);
        return reader.read(key);
      };
      const s = read('S_WC');
      const u = read('U_WC');
      const v = read('V_WC');
      const r = s.size;
      if (s.rank !== 1 || u.rank !== 2 || v.rank !== 2 || u.shape[1] !== r || v.shape[1] !== r) {
        throw new FormatError(
          file,
          `'${name}': S_WC, U_WC, V_WC must be [r], [out, r], [in, r], found [${s.shape}], [${u.shape}], [${v.shape}]`,
        );
      }
      out.set(name, { s: Float64Array.from(s.toArray()), u: tensorToMatrix64(u), v: tensorToMatrix64(v) });
      for (const t of [s, u, v]) t.release();
    }
  } finally {
    reader.close();
  }
  return out;
}

/**
 * CorDA (init_lora_weights: corda, corda_config.corda_method ipm | kpm) as PEFT computes it: the
 * input covariance collected on calibration data, the damped SVD of W C, the top / bottom r
 * triplets as A and B, the residual base; save -> load onto the original base (from the saved
 * triplets), merge, and PEFT's conversion to a plain LoRA.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, FormatError } from '../../../src/errors.ts';
import { Linear, Module } from '../../../src/nn/index.ts';
import {
  applyLora,
  type CalibrationExample,
  CORDA_EIGENS_FILE,
  collectCovariances,
  cordaEigens,
  dampedCovariance,
  getTuner,
  type LoraConfig,
  LoraLinear,
  loadAdapter,
  savePlainLora,
} from '../../../src/peft/index.ts';
import {
  type Matrix64,
  matmul64,
  matrix64,
  noGrad,
  Rng,
  scope,
  svd,
  type Tensor,
  tensorToMatrix64,
} from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, randomizeLora, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-corda-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const IDS = tokens(9);

function examples(n: number, length = 7): CalibrationExample[] {
  return Array.from({ length: n }, (_, i) => {
    const ids = Int32Array.from(tokens(length, 100 + i));
    return { inputIds: ids, labels: ids };
  });
}

function cordaConfig(method: 'ipm' | 'kpm', r = 2): LoraConfig {
  return {
    r,
    loraAlpha: 4,
    targetModules: ['q_proj', 'v_proj'],
    init: 'corda',
    corda: { method, data: null, maxSamples: 16, calibration: () => examples(5) },
  };
}

/** Records a Linear's inputs (the test's own hook, independent of collectCovariances). */
class InputTap extends Module {
  readonly seen: number[][] = [];
  constructor(readonly linear: Linear) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.seen.push(x.toArray());
    return this.linear.forward(x);
  }
}

/** A random f64 W [out, in] and a covariance of inputs confined to a `rank`-dimensional subspace. */
function problem(out: number, inF: number, rank: number): { w: Matrix64; c: Matrix64 } {
  const rng = new Rng(11);
  const w = matrix64(
    out,
    inF,
    Float64Array.from({ length: out * inF }, () => rng.normal()),
  );
  const basis = matrix64(
    rank,
    inF,
    Float64Array.from({ length: rank * inF }, () => rng.normal()),
  );
  const coef = matrix64(
    30,
    rank,
    Float64Array.from({ length: 30 * rank }, () => rng.normal()),
  );
  const x = matmul64(coef, basis); // 30 tokens in a rank-`rank` subspace: C is singular
  const c = matmul64(x, x, { transA: true });
  for (let i = 0; i < c.data.length; i++) c.data[i] = c.data[i]! / 30;
  return { w, c };
}

describe('CorDA init', () => {
  it('covariance: mean over examples of X^T X / max(X)^2 of each target input (PEFT hook)', () => {
    const model = tinyLlama();
    const path = 'model.layers.1.self_attn.q_proj';
    const q = model.getSubmodule(path) as Linear;
    const data = examples(3);
    const cov = collectCovariances(model, [[path, q]], data).get(path)!;
    assert.equal(model.getSubmodule(path), q, 'the model is restored');
    const tap = new InputTap(q);
    model.setSubmodule(path, tap);
    for (const ex of data) logitsOf(model, Array.from(ex.inputIds));
    model.setSubmodule(path, q);
    const n = q.inFeatures;
    const want = new Float64Array(n * n);
    for (const xs of tap.seen) {
      const m = Math.abs(Math.max(...xs));
      const t = xs.length / n;
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let k = 0; k < t; k++) s += xs[k * n + i]! * xs[k * n + j]!;
          want[i * n + j] = want[i * n + j]! + s / (m * m) / tap.seen.length;
        }
    }
    assert.equal(tap.seen.length, 3);
    assert.ok(maxAbsDiff(cov.data, want) < 1e-5 * Math.max(...want), `${maxAbsDiff(cov.data, want)}`);
  });

  it('damping: a singular covariance is damped (0.01 doubled) until C C^-1 is within 0.05 of I', () => {
    const { c } = problem(6, 8, 3);
    const { fixed, inverse, damp } = dampedCovariance(c, 'x');
    assert.ok(damp >= 0.01);
    const prod = matmul64(fixed, inverse);
    let err = 0;
    for (let i = 0; i < 8; i++)
      for (let j = 0; j < 8; j++) err += (prod.data[i * 8 + j]! - (i === j ? 1 : 0)) ** 2;
    assert.ok(Math.sqrt(err) < 0.05);
    let trace = 0;
    for (let i = 0; i < 8; i++) trace += c.data[i * 9]!;
    assert.ok(
      Math.abs(fixed.data[0]! - c.data[0]! - damp * (trace / 8)) < 1e-12,
      'C + damp * mean(diag C) I',
    );
    assert.throws(() => dampedCovariance(matrix64(3, 3), 'zero'), ConfigError);
  });

  it('ipm keeps the top r, kpm the bottom r triplets of SVD(W C); U_r^T W = S_r V_r^T', () => {
    const { w, c } = problem(6, 8, 3);
    const { fixed } = dampedCovariance(c, 'x');
    const all = svd(matmul64(w, fixed)).s;
    for (const method of ['ipm', 'kpm'] as const) {
      const e = cordaEigens(w, c, 2, method);
      const want = method === 'ipm' ? all.slice(0, 2) : all.slice(4, 6);
      assert.ok(maxAbsDiff(e.s, want) < 1e-9, `${method} singular values`);
      // W = U S V^T exactly (V = C'^-1 V'), so projecting W on U_r gives S_r V_r^T
      const utw = matmul64(e.u, w, { transA: true }); // [2, 8]
      const sv = matrix64(2, 8);
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < 8; i++) sv.data[j * 8 + i] = e.s[j]! * e.v.data[i * 2 + j]!;
      assert.ok(maxAbsDiff(utw.data, sv.data) < 1e-9, `${method}: U^T W = S V^T`);
    }
    // all min(out, in) triplets reconstruct W
    const full = cordaEigens(w, c, 6, 'ipm');
    const rec = matrix64(6, 8);
    for (let o = 0; o < 6; o++)
      for (let i = 0; i < 8; i++) {
        let s = 0;
        for (let j = 0; j < 6; j++) s += full.u.data[o * 6 + j]! * full.s[j]! * full.v.data[i * 6 + j]!;
        rec.data[o * 8 + i] = s;
      }
    assert.ok(maxAbsDiff(rec.data, w.data) < 1e-9);
  });

  it('layer: A = sqrt(S/s) V^T, B = U sqrt(S/s), residual W - s B A; gradients match finite differences', () => {
    const base = new Linear(8, 6, { seed: 3, dtype: 'f64' });
    const { c } = problem(6, 8, 3);
    const w = tensorToMatrix64(base.weight);
    const e = cordaEigens(w, c, 2, 'kpm');
    const l = new LoraLinear(base, { r: 2, scaling: 2, rng: new Rng(1), init: 'corda', cordaEigens: e });
    const A = tensorToMatrix64(l.lora_A.weight);
    const B = tensorToMatrix64(l.lora_B.weight);
    for (let j = 0; j < 2; j++) {
      const root = Math.sqrt(e.s[j]! / 2);
      assert.ok(Math.abs(A.data[j * 8 + 3]! - root * e.v.data[3 * 2 + j]!) < 1e-12);
      assert.ok(Math.abs(B.data[4 * 2 + j]! - root * e.u.data[4 * 2 + j]!) < 1e-12);
    }
    const ba = matmul64(B, A);
    const res = l.weight.toArray();
    assert.ok(
      maxAbsDiff(
        res.map((v, i) => v + 2 * ba.data[i]!),
        w.data,
      ) < 1e-12,
      'residual + s B A = W',
    );
    const x = input64([3, 8], 4);
    const y = noGrad(() => scope(() => l.forward(x).toArray()));
    const original = new Linear(8, 6, { seed: 3, dtype: 'f64' });
    const plain = noGrad(() => scope(() => original.forward(x).toArray()));
    assert.ok(maxAbsDiff(y, plain) < 1e-12, 'starts equal to the base layer');
    gradCheck('corda x, A, B', (input) => l.forward(input!), [x, l.lora_A.weight, l.lora_B.weight]);
    assert.throws(
      () => new LoraLinear(new Linear(8, 6), { r: 2, scaling: 1, rng: new Rng(1), init: 'corda' }),
      ConfigError,
    );
  });

  for (const method of ['ipm', 'kpm'] as const) {
    it(`${method}: the model starts as the base; save -> load on the original base; merge; plain LoRA`, () => {
      const model = tinyLlama();
      const base = logitsOf(model, IDS);
      const adapter = applyLora(model, cordaConfig(method));
      assert.ok(maxAbsDiff(logitsOf(model, IDS), base) < 1e-4, 'residual + s B0 A0 = W');
      const w = model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
      assert.ok(
        maxAbsDiff(w, tinyLlama().getParameter('model.layers.0.self_attn.q_proj.weight').toArray()) > 1e-3,
        'W is the residual',
      );
      randomizeLora(model, 2, 0.1);
      const tuned = logitsOf(model, IDS);
      assert.ok(maxAbsDiff(tuned, base) > 1e-3);
      const dir = join(tmp, method);
      adapter.save(dir);
      const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.equal(json.init_lora_weights, 'corda');
      assert.deepEqual(json.corda_config, {
        cache_file: null,
        corda_method: method,
        covariance_file: null,
        prune_temporary_fields: true,
        use_float16_for_covariance: false,
        verbose: false,
      });
      const fresh = tinyLlama();
      loadAdapter(fresh, dir);
      assert.ok(maxAbsDiff(logitsOf(fresh, IDS), tuned) < 1e-5, 'same residual from the saved triplets');
      adapter.merge();
      assert.ok(maxAbsDiff(logitsOf(model, IDS), tuned) < 1e-4, 'merged = unmerged');
      adapter.unmerge();
      const plainDir = join(tmp, `${method}-plain`);
      savePlainLora(adapter, plainDir);
      const original = tinyLlama();
      loadAdapter(original, plainDir);
      assert.ok(maxAbsDiff(logitsOf(original, IDS), tuned) < 1e-4, 'plain LoRA on the original base');
    });
  }

  it('lora declares the corda-ipm / corda-kpm bench variants (calibrated on the training data)', () => {
    const v = getTuner('lora').variants!;
    assert.deepEqual(v['corda-ipm'], { init_lora_weights: 'corda', corda_config: { corda_method: 'ipm' } });
    assert.deepEqual(v['corda-kpm'], { init_lora_weights: 'corda', corda_config: { corda_method: 'kpm' } });
    const config = getTuner<LoraConfig>('lora').fromOptions(v['corda-kpm']!, { seed: 0 });
    assert.equal(config.corda?.data, null);
    assert.equal(config.corda?.maxSamples, 256);
    assert.throws(() => config.corda!.calibration!(), /only a training run provides/);
  });

  it('ipm and kpm start from different directions; errors name what is missing, nothing changed', () => {
    const a = applyLora(tinyLlama(), cordaConfig('ipm')).layers()[0]![1].lora_B.weight.toArray();
    const b = applyLora(tinyLlama(), cordaConfig('kpm')).layers()[0]![1].lora_B.weight.toArray();
    assert.ok(maxAbsDiff(a, b) > 1e-3);
    const model = tinyLlama();
    const w0 = model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
    assert.throws(
      () => applyLora(model, { ...cordaConfig('ipm'), corda: { method: 'ipm', data: null, maxSamples: 4 } }),
      /needs calibration data/,
    );
    assert.throws(() => applyLora(model, { ...cordaConfig('ipm'), r: 64 }), ConfigError);
    assert.deepEqual(model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray(), w0);
    const dir = join(tmp, 'no-eigens');
    applyLora(tinyLlama(), cordaConfig('ipm')).save(dir);
    rmSync(join(dir, CORDA_EIGENS_FILE));
    assert.throws(() => loadAdapter(tinyLlama(), dir), FormatError);
  });
});

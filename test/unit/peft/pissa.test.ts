/**
 * PiSSA / OLoRA inits (init_lora_weights: pissa | pissa_niter_N | olora) as PEFT computes them,
 * the residual base, loading such an adapter onto the original base (re-initialised as in PEFT),
 * PEFT's conversion to a plain rank-2r LoRA against the original base, and the residual model.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { writeByteTokenizer } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import { Linear } from '../../../src/nn/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  applyLora,
  getTuner,
  type LoraInit,
  LoraLinear,
  loadAdapter,
  loraConfigFromAdapterJson,
  plainLoraState,
  savePlainLora,
  saveResidualModel,
} from '../../../src/peft/index.ts';
import { Rng } from '../../../src/tensor/index.ts';
import { logitsOf, maxAbsDiff, snapshotParameters, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-pissa-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const IDS = tokens(9);

/** a [m, k] @ b [k, n] on plain arrays. */
function mm(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let t = 0; t < k; t++) s += a[i * k + t]! * b[t * n + j]!;
      out[i * n + j] = s;
    }
  return out;
}

function transposed(a: number[], rows: number, cols: number): number[] {
  const out = new Array<number>(a.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = a[i * cols + j]!;
  return out;
}

/** A 10 -> 12 f64 Linear with a LoRA layer of rank 3 (scaling 2) and the given init. */
function layerWith(init: LoraInit): { l: LoraLinear; W: number[] } {
  const base = new Linear(10, 12, { seed: 5, dtype: 'f64' });
  const W = base.weight.toArray();
  const l = new LoraLinear(base, { r: 3, scaling: 2, rng: new Rng(1), init });
  return { l, W };
}

function frob2(a: number[]): number {
  return a.reduce((s, v) => s + v * v, 0);
}

describe('PiSSA and OLoRA inits', () => {
  it('pissa: A = sqrt(S_r/s) V_r^T, B = U_r sqrt(S_r/s); W is replaced by the residual W - s B A', () => {
    const { l, W } = layerWith('pissa');
    const A = l.lora_A.weight.toArray(); // [3, 10]
    const B = l.lora_B.weight.toArray(); // [12, 3]
    const res = l.weight.toArray();
    const sBA = mm(B, A, 12, 3, 10).map((v) => 2 * v);
    assert.ok(
      maxAbsDiff(
        res.map((v, i) => v + sBA[i]!),
        W,
      ) < 1e-12,
      'residual + s B A = W',
    );
    // A A^T = B^T B = diag(S_r / s), decreasing: the principal singular directions, split by sqrt
    const AAt = mm(A, transposed(A, 3, 10), 3, 10, 3);
    const BtB = mm(transposed(B, 12, 3), B, 3, 12, 3);
    for (let i = 0; i < 3; i++)
      for (let j = 0; j < 3; j++) {
        if (i === j) assert.ok(Math.abs(AAt[i * 3 + i]! - BtB[i * 3 + i]!) < 1e-10);
        else assert.ok(Math.abs(AAt[i * 3 + j]!) < 1e-10 && Math.abs(BtB[i * 3 + j]!) < 1e-10);
      }
    assert.ok(AAt[0]! >= AAt[4]! && AAt[4]! >= AAt[8]!);
    // the residual is orthogonal to the adapted directions: W_res A^T = 0 ...
    assert.ok(mm(res, transposed(A, 3, 10), 12, 10, 3).every((v) => Math.abs(v) < 1e-10));
    // ... and they are the top ones: ||W_res||^2 = ||W||^2 - sum of the top-3 S^2, the least any rank-3 removal leaves
    const top = 2 * 2 * (AAt[0]! ** 2 + AAt[4]! ** 2 + AAt[8]! ** 2);
    assert.ok(Math.abs(frob2(res) - (frob2(W) - top)) < 1e-9);
    const { l: g } = layerWith('gaussian');
    assert.ok(maxAbsDiff(g.weight.toArray(), W) === 0 && !g.initialLora, 'other inits leave W alone');
  });

  it('pissa_niter_N: a randomized top-r SVD (fixed sketch seed), close to the exact one', () => {
    const { l, W } = layerWith('pissa_niter_4');
    const A = l.lora_A.weight.toArray();
    const B = l.lora_B.weight.toArray();
    const res = l.weight.toArray();
    const sBA = mm(B, A, 12, 3, 10).map((v) => 2 * v);
    assert.ok(
      maxAbsDiff(
        res.map((v, i) => v + sBA[i]!),
        W,
      ) < 1e-12,
    );
    const exact = layerWith('pissa').l.weight.toArray();
    assert.ok(frob2(res) >= frob2(exact) - 1e-9, 'no rank-3 removal beats the exact SVD');
    assert.ok(frob2(res) < 1.05 * frob2(exact), `randomized residual ${frob2(res)} vs exact ${frob2(exact)}`);
    assert.deepEqual(layerWith('pissa_niter_4').l.lora_A.weight.toArray(), A, 'reproducible');
  });

  it('olora: B = Q[:, :r] (orthonormal), A = R[:r] (upper triangular), W - s B A', () => {
    const { l, W } = layerWith('olora');
    const A = l.lora_A.weight.toArray();
    const B = l.lora_B.weight.toArray();
    const BtB = mm(transposed(B, 12, 3), B, 3, 12, 3);
    assert.ok(maxAbsDiff(BtB, [1, 0, 0, 0, 1, 0, 0, 0, 1]) < 1e-12);
    for (let k = 0; k < 3; k++) for (let i = 0; i < k; i++) assert.ok(Math.abs(A[k * 10 + i]!) < 1e-12);
    // Q_r R_r are the first r columns of the QR of W: B A reproduces W's first r columns exactly
    const BA = mm(B, A, 12, 3, 10);
    for (let o = 0; o < 12; o++)
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(BA[o * 10 + i]! - W[o * 10 + i]!) < 1e-12);
    const res = l.weight.toArray();
    assert.ok(
      maxAbsDiff(
        res.map((v, i) => v + 2 * BA[i]!),
        W,
      ) < 1e-12,
    );
  });

  it('a model starts equal to the base; unload gives W back; bad targets are refused untouched', () => {
    const model = tinyLlama();
    const base = snapshotParameters(model);
    const before = logitsOf(model, IDS);
    for (const init of ['pissa', 'olora'] as const) {
      const adapter = applyLora(model, { init, r: 4, targetModules: 'all-linear' });
      assert.ok(maxAbsDiff(logitsOf(model, IDS), before) < 1e-5, init);
      const q = 'model.layers.0.self_attn.q_proj.weight';
      assert.ok(maxAbsDiff(model.getParameter(q).toArray(), base.get(q)!) > 1e-3, 'W is the residual');
      assert.equal(adapter.adapterConfigJson().init_lora_weights, init);
      adapter.unload();
      for (const [name, values] of base)
        assert.ok(maxAbsDiff(model.getParameter(name).toArray(), values) < 1e-6, `${init}: ${name}`);
    }
    const restored = snapshotParameters(model);
    assert.throws(
      () => applyLora(model, { init: 'pissa', r: 20, targetModules: 'all-linear' }),
      (e: Error) =>
        e instanceof ConfigError &&
        /needs r <= min\(in, out\) = 16 for 'model.layers.0.self_attn.k_proj'/.test(e.message),
    );
    assert.deepEqual(snapshotParameters(model), restored, 'nothing rewritten');
    assert.deepEqual(getTuner('lora').variants?.pissa, { init_lora_weights: 'pissa' });
    assert.deepEqual(getTuner('lora').variants?.olora, { init_lora_weights: 'olora' });
    assert.equal(
      getTuner('lora').fromOptions({ init_lora_weights: 'pissa_niter_16' }, { seed: 0 }) && true,
      true,
    );
    assert.throws(() => getTuner('lora').fromOptions({ init_lora_weights: 'pissa_niter_x' }, { seed: 0 }));
  });

  it('the converted rank-2r LoRA on the original base gives the trained PiSSA logits on the residual base', () => {
    for (const [init, useRslora] of [
      ['pissa', false],
      ['olora', true],
    ] as const) {
      const model = tinyLlama();
      const adapter = applyLora(model, { init, r: 4, loraAlpha: 8, useRslora, targetModules: 'all-linear' });
      // "train": move every A and B away from its initial value
      const rng = new Rng(17);
      for (const [, l] of adapter.layers()) {
        for (const p of [l.lora_A.weight, l.lora_B.weight]) {
          const d = p.data as Float32Array;
          for (let i = 0; i < d.length; i++) d[i] = d[i]! + 0.05 * rng.normal();
        }
      }
      const trained = logitsOf(model, IDS);
      assert.ok(maxAbsDiff(trained, logitsOf(tinyLlama(), IDS)) > 1e-3, 'training changed the outputs');
      // 1. the adapter as saved (its config names the init) loads onto the original base, as in PEFT
      const own = join(tmp, `${init}-own`);
      adapter.save(own);
      const reloaded = tinyLlama();
      loadAdapter(reloaded, own);
      assert.ok(maxAbsDiff(logitsOf(reloaded, IDS), trained) < 1e-4, `${init}: re-initialised on load`);
      // 2. PEFT's conversion: a plain LoRA of rank 2r against the original base
      const plain = join(tmp, `${init}-plain`);
      savePlainLora(adapter, plain);
      const json = JSON.parse(readFileSync(join(plain, ADAPTER_CONFIG_FILE), 'utf8'));
      assert.equal(json.r, 8);
      assert.ok(Math.abs(json.lora_alpha - (useRslora ? 8 * Math.SQRT2 : 16)) < 1e-12);
      assert.equal(json.init_lora_weights, true);
      loraConfigFromAdapterJson(json, 'plain'); // a plain LoRA: the by-name tools accept it
      const original = tinyLlama();
      const converted = loadAdapter(original, plain);
      assert.equal(
        converted.state().get('base_model.model.model.layers.0.mlp.up_proj.lora_A.weight')!.shape[0],
        8,
      );
      assert.ok(
        maxAbsDiff(logitsOf(original, IDS), trained) < 1e-4,
        `${init}: converted on the original base`,
      );
      // 3. the residual model, with the adapter's own A and B (config init_lora_weights: true)
      const residualDir = join(tmp, `${init}-residual`);
      writeByteTokenizer(residualDir);
      saveResidualModel(adapter, residualDir);
      const onResidual = join(tmp, `${init}-on-residual`);
      cpSync(own, onResidual, { recursive: true });
      const ownJson = JSON.parse(readFileSync(join(own, ADAPTER_CONFIG_FILE), 'utf8'));
      writeFileSync(
        join(onResidual, ADAPTER_CONFIG_FILE),
        JSON.stringify({ ...ownJson, init_lora_weights: true }),
      );
      const residual = loadModel(residualDir).model;
      loadAdapter(residual, onResidual);
      assert.ok(maxAbsDiff(logitsOf(residual, IDS), trained) < 1e-4, `${init}: on the residual model`);
      assert.ok(
        model.modules().some((m) => m instanceof LoraLinear),
        'the adapter is back in place',
      );
    }
    const lora = applyLora(tinyLlama(), { r: 2 });
    assert.throws(() => plainLoraState(lora), /needs an adapter initialised with pissa/);
    const dora = applyLora(tinyLlama(), { r: 2, init: 'pissa', useDora: true });
    assert.throws(() => plainLoraState(dora), /DoRA adapter cannot be converted/);
  });
});

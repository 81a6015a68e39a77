import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Linear } from '../../../src/nn/index.ts';
import { applyLora, LoraLinear, loraScaling, resolveLoraConfig } from '../../../src/peft/index.ts';
import { fromArray, noGrad, Rng, scope, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, randomizeLora, snapshotParameters, tinyLlama, tokens } from './helpers.ts';

const IDS = tokens(10);

function forwardValues(layer: LoraLinear | Linear, x: Tensor): number[] {
  return noGrad(() => scope(() => layer.forward(x).toArray()));
}

describe('LoRA on a llama', () => {
  it('wraps the targets, keeps Hub names for the base and freezes everything but A and B', () => {
    const model = tinyLlama();
    const before = model.namedParameters().map(([n]) => n);
    const adapter = applyLora(model, { r: 4, targetModules: ['q_proj', 'v_proj'] });
    assert.equal(adapter.layers().length, 4);
    const q = model.getSubmodule('model.layers.0.self_attn.q_proj');
    assert.ok(q instanceof LoraLinear);
    assert.equal(model.model.layers.at(0).self_attn.q_proj, q, 'the parent property points at the wrapper');
    const names = new Map(model.namedParameters());
    for (const n of before) assert.ok(names.has(n), `base parameter ${n} keeps its name`);
    assert.deepEqual(names.get('model.layers.0.self_attn.q_proj.lora_A.weight')!.shape, [4, 32]);
    assert.deepEqual(names.get('model.layers.0.self_attn.v_proj.lora_B.weight')!.shape, [16, 4]);
    const trainable = model.namedTrainableParameters().map(([n]) => n);
    assert.equal(trainable.length, 8);
    assert.ok(trainable.every((n) => /\.lora_[AB]\.weight$/.test(n)));
    assert.deepEqual(
      adapter.namedTrainableParameters().map(([n]) => n),
      trainable,
    );
    assert.equal(adapter.trainableParameters().length, 8);
  });

  it('starts equal to the base model (B = 0), kaiming A within 1/sqrt(in)', () => {
    const model = tinyLlama({ tied: false });
    const base = logitsOf(model, IDS);
    const adapter = applyLora(model, { targetModules: 'all-linear', r: 4, loraAlpha: 16 });
    assert.deepEqual(logitsOf(model, IDS), base);
    for (const [, l] of adapter.layers()) {
      const bound = 1 / Math.sqrt(l.inFeatures);
      const a = l.lora_A.weight.toArray();
      assert.ok(a.every((v) => Math.abs(v) <= bound));
      assert.ok(Math.max(...a.map(Math.abs)) > 0.8 * bound, 'spans the range');
      assert.ok(l.lora_B.weight.toArray().every((v) => v === 0));
    }
  });

  it('gaussian init draws A ~ N(0, 1/r^2); the seed makes it reproducible', () => {
    const base = new Linear(512, 8, { seed: 1 });
    const l = new LoraLinear(base, { r: 4, scaling: 1, init: 'gaussian', rng: new Rng(5) });
    const a = l.lora_A.weight.toArray();
    const mean = a.reduce((s, v) => s + v, 0) / a.length;
    const std = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / a.length);
    assert.ok(Math.abs(std - 1 / 4) < 0.025, `std ${std}`);
    assert.ok(Math.abs(mean) < 0.02, `mean ${mean}`);
    const again = new LoraLinear(new Linear(512, 8, { seed: 1 }), {
      r: 4,
      scaling: 1,
      init: 'gaussian',
      rng: new Rng(5),
    });
    assert.deepEqual(again.lora_A.weight.toArray(), a);
    const m1 = tinyLlama();
    const m2 = tinyLlama();
    applyLora(m1, { seed: 11 });
    applyLora(m2, { seed: 11 });
    assert.deepEqual([...snapshotParameters(m1).values()], [...snapshotParameters(m2).values()]);
  });

  it('computes x W^T + b + scaling B A x, with scaling alpha/r or alpha/sqrt(r) (rsLoRA)', () => {
    assert.equal(loraScaling(16, 4, false), 4);
    assert.equal(loraScaling(16, 4, true), 8);
    assert.equal(resolveLoraConfig({}).r, 8);
    assert.equal(resolveLoraConfig({}).loraAlpha, 8);
    const model = tinyLlama();
    assert.equal(applyLora(model, { r: 4, loraAlpha: 16, useRslora: true }).scaling, 8);
    assert.equal(applyLora(tinyLlama(), { r: 4, loraAlpha: 16 }).scaling, 4);
    const rng = new Rng(2);
    const base = new Linear(6, 5, { seed: 3 });
    for (const useRslora of [false, true]) {
      const scaling = loraScaling(16, 4, useRslora);
      const l = new LoraLinear(base, { r: 4, scaling, rng: new Rng(4) });
      l.lora_B.weight.fillWith(() => rng.normal());
      const xs = Array.from({ length: 2 * 6 }, () => rng.normal());
      const x = fromArray(xs, [2, 6]);
      const y = forwardValues(l, x);
      const W = base.weight.toArray();
      const b = base.bias!.toArray();
      const A = l.lora_A.weight.toArray();
      const B = l.lora_B.weight.toArray();
      for (let n = 0; n < 2; n++) {
        for (let o = 0; o < 5; o++) {
          let want = b[o]!;
          for (let i = 0; i < 6; i++) want += W[o * 6 + i]! * xs[n * 6 + i]!;
          for (let k = 0; k < 4; k++) {
            let ax = 0;
            for (let i = 0; i < 6; i++) ax += A[k * 6 + i]! * xs[n * 6 + i]!;
            want += scaling * B[o * 4 + k]! * ax;
          }
          assert.ok(
            Math.abs(y[n * 5 + o]! - want) < 1e-5,
            `rslora=${useRslora} y[${n},${o}] ${y[n * 5 + o]} vs ${want}`,
          );
        }
      }
    }
  });

  it('merge gives the same outputs (1e-5); unmerge restores the base weights (1e-6)', () => {
    const model = tinyLlama();
    const base = snapshotParameters(model);
    const adapter = applyLora(model, { targetModules: 'all-linear', r: 4, loraAlpha: 8 });
    randomizeLora(model, 9);
    const adapted = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(adapted, logitsOf(tinyLlama(), IDS)) > 1e-3, 'the update changes the outputs');
    adapter.merge();
    assert.ok(adapter.merged);
    assert.ok(maxAbsDiff(logitsOf(model, IDS), adapted) < 1e-5);
    const q = model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
    assert.ok(maxAbsDiff(q, base.get('model.layers.0.self_attn.q_proj.weight')!) > 1e-4, 'merge changed W');
    adapter.merge(); // idempotent
    adapter.unmerge();
    assert.ok(!adapter.merged);
    for (const [name, values] of base) {
      assert.ok(maxAbsDiff(model.getParameter(name).toArray(), values) < 1e-6, `${name} restored`);
    }
    assert.ok(maxAbsDiff(logitsOf(model, IDS), adapted) < 1e-5);
  });

  it('merges into a bf16 weight with bf16 rounding and unmerges it exactly', () => {
    const base = new Linear(16, 12, { seed: 1, dtype: 'bf16' });
    const bits = Uint16Array.from(base.weight.data as Uint16Array);
    const l = new LoraLinear(base, { r: 2, scaling: 2, rng: new Rng(1) });
    assert.equal(l.lora_A.weight.dtype, 'f32');
    const rng = new Rng(3);
    l.lora_B.weight.fillWith(() => 0.1 * rng.normal());
    const x = fromArray(
      Array.from({ length: 3 * 16 }, () => rng.normal()),
      [3, 16],
    );
    const y = forwardValues(l, x);
    l.merge();
    const merged = forwardValues(l, x);
    // each W element rounded to bf16 (relative 2^-9): the outputs agree to bf16 precision
    assert.ok(maxAbsDiff(merged, y) < 2e-2 * Math.max(...y.map(Math.abs)), `merged ${maxAbsDiff(merged, y)}`);
    l.unmerge();
    assert.deepEqual(base.weight.data, bits);
    assert.deepEqual(forwardValues(l, x), y);
  });

  it('unload puts the original Linear layers back; mergeAndUnload gives a plain merged model', () => {
    const model = tinyLlama();
    const q = model.model.layers.at(0).self_attn.q_proj;
    const flags = model.parameters().map((p) => p.requiresGrad);
    const base = logitsOf(model, IDS);
    const adapter = applyLora(model, { r: 2 });
    randomizeLora(model, 4);
    adapter.merge();
    adapter.unload();
    assert.equal(model.model.layers.at(0).self_attn.q_proj, q);
    assert.equal(model.getSubmodule('model.layers.0.self_attn.q_proj'), q);
    assert.deepEqual(
      model.parameters().map((p) => p.requiresGrad),
      flags,
    );
    assert.ok(maxAbsDiff(logitsOf(model, IDS), base) < 1e-5);
    assert.throws(() => adapter.merge(), /unloaded/);

    const names = model.namedParameters().map(([n]) => n);
    const second = applyLora(model, { r: 2, targetModules: 'all-linear' });
    randomizeLora(model, 5);
    const adapted = logitsOf(model, IDS);
    second.mergeAndUnload();
    assert.ok(model.modules().every((m) => !(m instanceof LoraLinear)));
    assert.deepEqual(
      model.namedParameters().map(([n]) => n),
      names,
    );
    assert.ok(maxAbsDiff(logitsOf(model, IDS), adapted) < 1e-5);
  });

  it('LoRA dropout is active in training mode only, with seeded masks', () => {
    const base = new Linear(8, 8, { seed: 1 });
    const make = () => {
      const l = new LoraLinear(base, { r: 2, scaling: 1, dropout: 0.5, rng: new Rng(6) });
      l.lora_B.weight.fillWith(() => 1);
      return l;
    };
    const x = fromArray(
      Array.from({ length: 16 }, (_, i) => i / 8 - 1),
      [2, 8],
    );
    const l = make();
    const a = forwardValues(l, x);
    const b = forwardValues(l, x);
    assert.notDeepEqual(a, b, 'fresh masks per call');
    assert.deepEqual(forwardValues(make(), x), a, 'same seed, same masks');
    l.eval();
    assert.deepEqual(forwardValues(l, x), forwardValues(l, x));
  });

  it('gradients of x, A and B match finite differences (f64)', () => {
    const base = new Linear(5, 4, { seed: 2, dtype: 'f64' });
    const l = new LoraLinear(base, { r: 3, scaling: 1.5, rng: new Rng(3) });
    assert.equal(l.lora_A.weight.dtype, 'f64');
    const rng = new Rng(8);
    l.lora_B.weight.fillWith(() => rng.normal());
    base.weight.freeze();
    base.bias!.freeze();
    const x = input64([2, 3, 5], 11);
    gradCheck('LoraLinear', (input) => l.forward(input!), [x, l.lora_A.weight, l.lora_B.weight]);
    // the base weight gets a gradient too when it is trainable
    base.weight.unfreeze();
    gradCheck('LoraLinear base weight', () => l.forward(x), [base.weight]);
  });
});

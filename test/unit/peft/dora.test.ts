/**
 * DoRA (use_dora: true) as PEFT computes it: magnitude initialised to the row norms of W, output
 * (m / ||W + s B A||_row) (W + s B A) x + b with the norm a constant in backward, PEFT's saved
 * key `...lora_magnitude_vector`, merge / unmerge, and a PEFT-layout DoRA adapter loading.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import { Conv1D, Linear } from '../../../src/nn/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  applyLora,
  getTuner,
  LoraLinear,
  loadAdapter,
  loraConfigFromAdapterJson,
} from '../../../src/peft/index.ts';
import { backward, fromArray, mul, noGrad, Rng, scope, sum, Tensor } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, randomizeLora, snapshotParameters, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-dora-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const IDS = tokens(9);

interface Values {
  W: number[]; // [out, in]
  b: number[] | null;
  A: number[]; // [r, in]
  B: number[]; // [out, r]
  m: number[]; // [out]
}

/** (W + s B A) [out, in] in f64. */
function combined(v: Values, out: number, inF: number, r: number, s: number): number[] {
  const c = new Array<number>(out * inF);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inF; i++) {
      let d = 0;
      for (let k = 0; k < r; k++) d += v.B[o * r + k]! * v.A[k * inF + i]!;
      c[o * inF + i] = v.W[o * inF + i]! + s * d;
    }
  return c;
}

/** Row norms of W + s B A. */
function rowNorms(v: Values, out: number, inF: number, r: number, s: number): number[] {
  const c = combined(v, out, inF, r, s);
  return Array.from({ length: out }, (_, o) => {
    let q = 0;
    for (let i = 0; i < inF; i++) q += c[o * inF + i]! ** 2;
    return Math.sqrt(q);
  });
}

/** The DoRA output for x [n, in] with the norm `norm` held as given (the detached definition). */
function reference(
  v: Values,
  x: number[],
  n: number,
  dims: [number, number, number],
  s: number,
  norm: number[],
): number[] {
  const [out, inF, r] = dims;
  const c = combined(v, out, inF, r, s);
  const y = new Array<number>(n * out);
  for (let t = 0; t < n; t++)
    for (let o = 0; o < out; o++) {
      let acc = 0;
      for (let i = 0; i < inF; i++) acc += c[o * inF + i]! * x[t * inF + i]!;
      y[t * out + o] = (v.m[o]! / norm[o]!) * acc + (v.b ? v.b[o]! : 0);
    }
  return y;
}

/** An f64 DoRA layer 6 -> 5, rank 3, with random A, B and m (a Conv1D base when asked). */
function doraLayer(conv = false): { l: LoraLinear; s: number } {
  const base = conv
    ? new Conv1D(6, 5, { seed: 4, dtype: 'f64' })
    : new Linear(6, 5, { seed: 2, dtype: 'f64' });
  const s = 1.5;
  const l = new LoraLinear(base, { r: 3, scaling: s, rng: new Rng(3), useDora: true });
  const rng = new Rng(8);
  l.lora_B.weight.fillWith(() => rng.normal());
  l.lora_A.weight.fillWith(() => rng.normal());
  l.lora_magnitude_vector!.fillWith(() => 0.5 + rng.uniform());
  base.weight.freeze();
  base.bias?.freeze();
  return { l, s };
}

function valuesOf(l: LoraLinear): Values {
  const w = l.weight.toArray();
  let W = w;
  if (l.fanInFanOut) {
    W = new Array<number>(w.length);
    for (let i = 0; i < l.inFeatures; i++)
      for (let o = 0; o < l.outFeatures; o++) W[o * l.inFeatures + i] = w[i * l.outFeatures + o]!;
  }
  return {
    W,
    b: l.bias ? l.bias.toArray() : null,
    A: l.lora_A.weight.toArray(),
    B: l.lora_B.weight.toArray(),
    m: l.lora_magnitude_vector!.toArray(),
  };
}

describe('DoRA', () => {
  it('starts with m = the row norms of W, so the layer equals the base; a model with DoRA too', () => {
    for (const conv of [false, true]) {
      const base = conv
        ? new Conv1D(6, 5, { seed: 1, dtype: 'f64' })
        : new Linear(6, 5, { seed: 1, dtype: 'f64' });
      const l = new LoraLinear(base, { r: 2, scaling: 2, rng: new Rng(1), useDora: true });
      const v = valuesOf(l);
      assert.ok(maxAbsDiff(v.m, rowNorms(v, 5, 6, 2, 2)) < 1e-12, 'm = ||W||_row');
      const x = input64([3, 6], 5);
      const got = noGrad(() => scope(() => l.forward(x).toArray()));
      const want = noGrad(() => scope(() => base.forward(x).toArray()));
      assert.ok(maxAbsDiff(got, want) < 1e-12, `conv=${conv}`);
    }
    const model = tinyLlama();
    const before = logitsOf(model, IDS);
    const adapter = applyLora(model, { r: 4, useDora: true });
    assert.ok(maxAbsDiff(logitsOf(model, IDS), before) < 1e-5);
    const names = adapter.namedTrainableParameters().map(([n]) => n);
    assert.ok(names.includes('model.layers.0.self_attn.q_proj.lora_magnitude_vector'));
    assert.equal(names.length, 2 * 2 * 3, 'A, B and m of q_proj and v_proj in 2 layers');
  });

  it('forward matches the float64 reference (m / ||W + sBA||) (W + sBA) x + b (Linear and Conv1D)', () => {
    for (const conv of [false, true]) {
      const { l, s } = doraLayer(conv);
      const v = valuesOf(l);
      const x = input64([4, 6], 9);
      const got = noGrad(() => scope(() => l.forward(x).toArray()));
      const want = reference(v, x.toArray(), 4, [5, 6, 3], s, rowNorms(v, 5, 6, 3, s));
      assert.ok(maxAbsDiff(got, want) < 1e-12, `conv=${conv}: ${maxAbsDiff(got, want)}`);
    }
  });

  it('gradients of A, B and m match finite differences with the norm held constant', () => {
    const { l, s } = doraLayer();
    const x = input64([2, 3, 6], 11);
    const rng = new Rng(5);
    const w = Array.from({ length: 2 * 3 * 5 }, () => rng.normal());
    const params = [l.lora_A.weight, l.lora_B.weight, l.lora_magnitude_vector!];
    for (const p of params) p.grad = null;
    scope(() => {
      const y = l.forward(x);
      backward(sum(mul(y, fromArray(w, y.shape, { dtype: 'f64' }))));
    });
    const norm0 = rowNorms(valuesOf(l), 5, 6, 3, s);
    const loss = () => {
      const y = reference(valuesOf(l), x.toArray(), 6, [5, 6, 3], s, norm0);
      return y.reduce((acc, yi, i) => acc + yi * w[i]!, 0);
    };
    const eps = 1e-6;
    for (const [k, p] of params.entries()) {
      const data = p.data as Float64Array;
      const analytic = p.grad!.data as Float64Array;
      for (let i = 0; i < data.length; i++) {
        const orig = data[i]!;
        data[i] = orig + eps;
        const up = loss();
        data[i] = orig - eps;
        const down = loss();
        data[i] = orig;
        const numeric = (up - down) / (2 * eps);
        assert.ok(
          Math.abs(analytic[i]! - numeric) < 1e-6 * Math.max(1, Math.abs(numeric)),
          `param ${k}[${i}]: analytic ${analytic[i]} vs numeric ${numeric}`,
        );
      }
    }
    // m does not enter the norm, so the layer itself passes the engine's finite-difference check for m and x
    gradCheck('DoRA m, x', (input) => l.forward(input!), [x, l.lora_magnitude_vector!]);
  });

  it('merge gives the unmerged outputs, unmerge restores W; mergeAndUnload is a plain merged model', () => {
    const { l } = doraLayer();
    const x = input64([3, 6], 2);
    const W0 = l.weight.toArray();
    const before = noGrad(() => scope(() => l.forward(x).toArray()));
    l.merge();
    assert.ok(maxAbsDiff(l.weight.toArray(), W0) > 1e-3, 'merge changed W');
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );
    l.unmerge();
    assert.ok(maxAbsDiff(l.weight.toArray(), W0) < 1e-12);
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );

    const model = tinyLlama();
    const base = snapshotParameters(model);
    const adapter = applyLora(model, { r: 4, useDora: true, targetModules: 'all-linear' });
    randomizeLora(model, 9);
    const rng = new Rng(4);
    for (const [, layer] of adapter.layers())
      layer.lora_magnitude_vector!.fillWith(() => 0.5 + rng.uniform());
    const adapted = logitsOf(model, IDS);
    adapter.merge();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), adapted) < 1e-4);
    adapter.unmerge();
    for (const [name, values] of base)
      assert.ok(maxAbsDiff(model.getParameter(name).toArray(), values) < 1e-5, `${name} restored`);
    const plain = adapter.mergeAndUnload();
    assert.ok(plain.modules().every((m) => !(m instanceof LoraLinear)));
    assert.ok(maxAbsDiff(logitsOf(model, IDS), adapted) < 1e-4);
  });

  it('runs on a bf16 base weight (widened for the norm); merge / unmerge give the bf16 bits back', () => {
    const base = new Linear(16, 12, { seed: 1, dtype: 'bf16' });
    const l = new LoraLinear(base, { r: 2, scaling: 2, rng: new Rng(2), useDora: true });
    const rng = new Rng(3);
    l.lora_B.weight.fillWith(() => 0.3 * rng.normal());
    l.lora_magnitude_vector!.fillWith(() => 0.5 + rng.uniform());
    const v = valuesOf(l);
    const xs = Array.from({ length: 2 * 16 }, () => rng.normal());
    const got = noGrad(() => scope(() => l.forward(fromArray(xs, [2, 16])).toArray()));
    const want = reference(v, xs, 2, [12, 16, 2], 2, rowNorms(v, 12, 16, 2, 2));
    assert.ok(maxAbsDiff(got, want) < 1e-4, `${maxAbsDiff(got, want)}`);
    const bits = Uint16Array.from(base.weight.data as Uint16Array);
    l.merge();
    assert.notDeepEqual(Uint16Array.from(base.weight.data as Uint16Array), bits);
    l.unmerge();
    assert.deepEqual(Uint16Array.from(base.weight.data as Uint16Array), bits);
  });

  it('saves the magnitude as base_model.model.<module>.lora_magnitude_vector, use_dora true; loads back', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, { r: 4, useDora: true });
    randomizeLora(model, 3);
    const rng = new Rng(6);
    for (const [, layer] of adapter.layers())
      layer.lora_magnitude_vector!.fillWith(() => 0.5 + rng.uniform());
    const adapted = logitsOf(model, IDS);
    const dir = join(tmp, 'dora');
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.equal(json.use_dora, true);
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    const key = 'base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector';
    assert.ok(reader.has(key));
    assert.deepEqual(reader.info(key).shape, [32]);
    assert.equal(reader.names().filter((n) => n.endsWith('lora_magnitude_vector')).length, 4);
    assert.ok(!reader.names().some((n) => n.endsWith('lora_magnitude_vector.weight')));
    reader.close();
    const fresh = tinyLlama();
    const loaded = loadAdapter(fresh, dir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), adapted) < 1e-6);
    assert.equal((loaded.state().get(key) as Tensor).shape[0], 32);
    // commands that fold B A by name refuse DoRA instead of dropping its magnitude
    assert.throws(() => loraConfigFromAdapterJson(json, 'x/adapter_config.json'), /'use_dora' is true/);
    assert.equal(getTuner('lora').variants?.dora?.use_dora, true);
  });

  it('loads a DoRA adapter in the layout PEFT writes (F32 magnitude, PEFT config fields)', () => {
    const model = tinyLlama();
    const layer = model.getSubmodule('model.layers.1.self_attn.v_proj') as Linear;
    const out = layer.outFeatures;
    const inF = layer.inFeatures;
    const r = 2;
    const rng = new Rng(12);
    const rand = (n: number, scale: number) => Float32Array.from({ length: n }, () => scale * rng.normal());
    const tensors = new Map<string, Tensor>();
    const values = new Map<string, Float32Array>();
    for (const l of [0, 1]) {
      for (const proj of ['q_proj', 'v_proj']) {
        const m = model.getSubmodule(`model.layers.${l}.self_attn.${proj}`) as Linear;
        const p = `base_model.model.model.layers.${l}.self_attn.${proj}`;
        const a = rand(r * m.inFeatures, 0.3);
        const b = rand(m.outFeatures * r, 0.3);
        const mag = Float32Array.from({ length: m.outFeatures }, () => 0.5 + rng.uniform());
        tensors.set(`${p}.lora_A.weight`, Tensor.wrap(a, [r, m.inFeatures], { track: false }));
        tensors.set(`${p}.lora_B.weight`, Tensor.wrap(b, [m.outFeatures, r], { track: false }));
        tensors.set(`${p}.lora_magnitude_vector`, Tensor.wrap(mag, [m.outFeatures], { track: false }));
        values.set(`${l}.${proj}`, mag);
        if (l === 1 && proj === 'v_proj') {
          values.set('A', a);
          values.set('B', b);
        }
      }
    }
    const dir = join(tmp, 'peft-dora');
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors);
    const W = layer.weight.toArray();
    const bias = layer.bias ? layer.bias.toArray() : null;
    writeFileSync(
      join(dir, ADAPTER_CONFIG_FILE),
      JSON.stringify({
        alpha_pattern: {},
        auto_mapping: null,
        base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
        bias: 'none',
        corda_config: null,
        eva_config: null,
        exclude_modules: null,
        fan_in_fan_out: false,
        inference_mode: true,
        init_lora_weights: true,
        layer_replication: null,
        layers_pattern: null,
        layers_to_transform: null,
        loftq_config: {},
        lora_alpha: 16,
        lora_bias: false,
        lora_dropout: 0.05,
        megatron_config: null,
        megatron_core: 'megatron.core',
        modules_to_save: null,
        peft_type: 'LORA',
        r,
        rank_pattern: {},
        revision: null,
        target_modules: ['v_proj', 'q_proj'],
        task_type: 'CAUSAL_LM',
        trainable_token_indices: null,
        use_dora: true,
        use_rslora: false,
      }),
    );
    loadAdapter(model, dir);
    const l = model.getSubmodule('model.layers.1.self_attn.v_proj') as LoraLinear;
    assert.ok(l instanceof LoraLinear && l.useDora);
    assert.deepEqual(l.lora_magnitude_vector!.toArray(), Array.from(values.get('1.v_proj')!));
    const v: Values = {
      W,
      b: bias,
      A: Array.from(values.get('A')!),
      B: Array.from(values.get('B')!),
      m: Array.from(values.get('1.v_proj')!),
    };
    const x = Array.from({ length: 2 * inF }, () => rng.normal());
    const got = noGrad(() =>
      scope(() =>
        l
          .eval()
          .forward(fromArray(x, [2, inF]))
          .toArray(),
      ),
    );
    const s = 16 / r;
    const want = reference(v, x, 2, [out, inF, r], s, rowNorms(v, out, inF, r, s));
    assert.ok(maxAbsDiff(got, want) < 1e-4, `${maxAbsDiff(got, want)}`);
  });
});

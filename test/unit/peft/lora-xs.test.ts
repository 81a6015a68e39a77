/**
 * LoRA-XS (tuner lora_xs): frozen SVD factors B = U_r, A = S_r V_r^T of W, a trained r x r core R
 * (N(0, 1e-5^2) at the start), y = W x + B R A x; f64 forward and finite-difference gradients,
 * merge, save -> load (peft_type LORA_XS), merge-and-unload, and a training run from a config.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { openSafetensors } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import { Linear } from '../../../src/nn/index.ts';
import {
  applyTuner,
  type LoraRAdapter,
  LoraRLinear,
  loadAdapter,
  loraXsInit,
} from '../../../src/peft/index.ts';
import { noGrad, Rng, scope, svd, tensorToMatrix64 } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-lora-xs-');
after(() => rmSync(root, { recursive: true, force: true }));
const IDS = tokens(9);

function mm(a: number[], b: number[], m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) out[i * n + j] += a[i * k + t]! * b[t * n + j]!;
  return out;
}

function xsLayer(): LoraRLinear {
  const base = new Linear(10, 12, { seed: 5, dtype: 'f64' });
  const init = loraXsInit(tensorToMatrix64(base.weight), 3, 1e-5, new Rng(2));
  const l = new LoraRLinear(base, 3, 1, init);
  const rng = new Rng(9);
  l.lora_R.weight.fillWith(() => 0.2 * rng.normal()); // a trained-looking core
  return l;
}

describe('LoRA-XS', () => {
  it('init: B = U_r (orthonormal), B A = the best rank-r approximation of W, R ~ N(0, 1e-5^2)', () => {
    const w = tensorToMatrix64(new Linear(10, 12, { seed: 5, dtype: 'f64' }).weight);
    const { a, b, r } = loraXsInit(w, 3, 1e-5, new Rng(2));
    const B = Array.from(b.data);
    const BtB = mm(
      Array.from({ length: 36 }, (_, k) => B[(k % 12) * 3 + Math.floor(k / 12)]!),
      B,
      3,
      12,
      3,
    );
    assert.ok(maxAbsDiff(BtB, [1, 0, 0, 0, 1, 0, 0, 0, 1]) < 1e-12);
    const ba = mm(B, Array.from(a.data), 12, 3, 10);
    const s = svd(w).s;
    const resid = Array.from(w.data).reduce((acc, v, i) => acc + (v - ba[i]!) ** 2, 0);
    const tail = Array.from(s.slice(3)).reduce((acc, v) => acc + v * v, 0);
    assert.ok(Math.abs(resid - tail) < 1e-10, 'Eckart-Young: the residual is the tail of the spectrum');
    assert.ok(
      Math.max(...Array.from(r.data, Math.abs)) < 1e-4 && Math.max(...Array.from(r.data, Math.abs)) > 0,
    );
  });

  it('forward is W x + b + B R A x; gradients of x and R match finite differences; A, B frozen', () => {
    const l = xsLayer();
    const x = input64([4, 10], 3);
    const W = l.weight.toArray();
    const bias = l.bias!.toArray();
    const bra = mm(
      mm(l.lora_B.weight.toArray(), l.lora_R.weight.toArray(), 12, 3, 3),
      l.lora_A.weight.toArray(),
      12,
      3,
      10,
    );
    const xs = x.toArray();
    const want: number[] = [];
    for (let t = 0; t < 4; t++)
      for (let o = 0; o < 12; o++) {
        let s = bias[o]!;
        for (let i = 0; i < 10; i++) s += (W[o * 10 + i]! + bra[o * 10 + i]!) * xs[t * 10 + i]!;
        want.push(s);
      }
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        want,
      ) < 1e-12,
    );
    assert.equal(l.lora_A.weight.requiresGrad, false);
    assert.equal(l.lora_B.weight.requiresGrad, false);
    gradCheck('lora_xs', (input) => l.forward(input!), [x, l.lora_R.weight]);
  });

  it('merge gives the unmerged outputs; unmerge restores W exactly', () => {
    const l = xsLayer();
    const x = input64([3, 10], 4);
    const W0 = l.weight.toArray();
    const before = noGrad(() => scope(() => l.forward(x).toArray()));
    l.merge();
    assert.ok(maxAbsDiff(l.weight.toArray(), W0) > 1e-3);
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );
    l.unmerge();
    assert.deepEqual(l.weight.toArray(), W0);
  });

  it('save -> load (peft_type LORA_XS, lora_A / lora_B / lora_R keys); merge-and-unload; refusals', () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const adapter = applyTuner(model, 'lora_xs', {
      r: 4,
      targetModules: ['q_proj', 'v_proj'],
    }) as LoraRAdapter;
    assert.equal(adapter.trainableParameters().length, 4);
    assert.ok(adapter.trainableParameters().every((p) => p.size === 16));
    assert.ok(maxAbsDiff(logitsOf(model, IDS), base) < 1e-4, 'R ~ 1e-5: starts at the base');
    const rng = new Rng(5);
    for (const p of adapter.trainableParameters()) p.fillWith(() => 0.5 * rng.normal());
    const tuned = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(tuned, base) > 1e-3);
    const dir = join(root, 'xs');
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'LORA_XS');
    assert.equal(json.r, 4);
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(
      reader.info('base_model.model.model.layers.0.self_attn.q_proj.lora_R.weight').shape,
      [4, 4],
    );
    assert.deepEqual(
      reader.info('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight').shape,
      [4, 32],
    );
    reader.close();
    const fresh = tinyLlama();
    const loaded = loadAdapter(fresh, dir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), tuned) < 1e-6);
    const plain = loaded.mergeAndUnload();
    assert.ok(!plain.namedParameters().some(([n]) => n.includes('lora_')), 'a plain model');
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), tuned) < 1e-4, 'merged weights give the adapter outputs');
    const untouched = tinyLlama();
    const w0 = untouched.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
    assert.throws(() => applyTuner(untouched, 'lora_xs', { r: 40 }), ConfigError);
    assert.deepEqual(untouched.getParameter('model.layers.0.self_attn.q_proj.weight').toArray(), w0);
  });

  it('trains from a config (only R), and the saved adapter loads onto the base with the trained outputs', () => {
    const modelDir = writeTinyModel(join(root, 'model'));
    const data = writeJsonl(join(root, 'train.jsonl'), FACTS);
    const config = validateTrainConfig(
      {
        model: modelDir,
        data: { train: data, max_length: 32 },
        method: { name: 'lora_xs', r: 4, target_modules: ['q_proj', 'v_proj', 'o_proj'] },
        train: { steps: 6, batch_size: 2, lr: 5e-2, seed: 1 },
        output_dir: join(root, 'run'),
      },
      'lora_xs',
    );
    const result = train(config);
    const trained = logitsOf(result.model, IDS);
    const fresh = loadModel(modelDir).model;
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) > 1e-4, 'training changed the outputs');
    loadAdapter(fresh, result.adapterDir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) < 1e-4);
  });
});

/**
 * LoRA-SB (tuner lora_sb): the accumulated weight gradient G (checked by finite differences), the
 * init B = U_r, A = V_r^T, R = diag(S_r) of G~ = -lr_eff sign(G) with lr_eff = lr / (warmup_ratio *
 * total_steps), f64 forward / gradients of R, merge, save -> load (peft_type LORA_SB), training run.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel, scoreNextTokens } from '../../../src/models/index.ts';
import type { Linear } from '../../../src/nn/index.ts';
import {
  accumulateWeightGradients,
  applyTuner,
  type CalibrationExample,
  type LoraRAdapter,
  LoraRLinear,
  loadAdapter,
  loraSbInit,
} from '../../../src/peft/index.ts';
import { fromArray, noGrad, Rng, scope, svd, tensorToMatrix64 } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-lora-sb-');
after(() => rmSync(root, { recursive: true, force: true }));
const IDS = tokens(9);

function examples(n: number): CalibrationExample[] {
  return Array.from({ length: n }, (_, i) => {
    const ids = Int32Array.from(tokens(8, 40 + i));
    return { inputIds: ids, labels: ids };
  });
}

function mm(a: ArrayLike<number>, b: ArrayLike<number>, m: number, k: number, n: number): number[] {
  const out = new Array<number>(m * n).fill(0);
  for (let i = 0; i < m; i++)
    for (let t = 0; t < k; t++) for (let j = 0; j < n; j++) out[i * n + j] += a[i * k + t]! * b[t * n + j]!;
  return out;
}

describe('LoRA-SB', () => {
  it('G is the gradient of the summed mean NLL (finite differences); flags and grads are restored', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const path = 'model.layers.1.self_attn.v_proj';
    const layer = model.getSubmodule(path) as Linear;
    const data = examples(3);
    const [g] = accumulateWeightGradients(model, [[path, layer]], data);
    assert.ok(
      model.parameters().every((p) => p.requiresGrad && p.grad === null),
      'restored',
    );
    const loss = () =>
      noGrad(() =>
        data.reduce(
          (acc, ex) =>
            acc +
            scope(() => {
              const ids = fromArray(ex.inputIds, [1, 8], { dtype: 'i32' });
              const { result, count } = scoreNextTokens(model, ids, ids);
              return -result.logp.toArray().reduce((s, v) => s + v, 0) / count;
            }),
          0,
        ),
      );
    const w = layer.weight.data as Float64Array;
    for (const k of [0, 37, 200, w.length - 1]) {
      const orig = w[k]!;
      w[k] = orig + 1e-6;
      const up = loss();
      w[k] = orig - 1e-6;
      const down = loss();
      w[k] = orig;
      const numeric = (up - down) / 2e-6;
      assert.ok(
        Math.abs(g![k]! - numeric) < 1e-6 * Math.max(1, Math.abs(numeric)),
        `${k}: ${g![k]} vs ${numeric}`,
      );
    }
  });

  it('init: B R A is the best rank-r approximation of G~ = -lr_eff sign(G); B, A orthonormal, R diagonal', () => {
    const rng = new Rng(3);
    const g = Float64Array.from({ length: 12 * 10 }, () => rng.normal());
    const lrEff = 1e-4 / (0.02 * 10);
    const { a, b, r } = loraSbInit(g, 12, 10, 3, lrEff);
    const tilde = Array.from(g, (v) => -lrEff * Math.sign(v));
    const bra = mm(mm(b.data, r.data, 12, 3, 3), a.data, 12, 3, 10);
    const s = svd({ rows: 12, cols: 10, data: Float64Array.from(tilde) }).s;
    const resid = tilde.reduce((acc, v, i) => acc + (v - bra[i]!) ** 2, 0);
    const tail = Array.from(s.slice(3)).reduce((acc, v) => acc + v * v, 0);
    assert.ok(Math.abs(resid - tail) < 1e-16, `${resid} vs ${tail}`);
    assert.ok(
      maxAbsDiff(
        mm(
          a.data,
          Array.from({ length: 30 }, (_, k) => a.data[(k % 3) * 10 + Math.floor(k / 3)]!),
          3,
          10,
          3,
        ),
        [1, 0, 0, 0, 1, 0, 0, 0, 1],
      ) < 1e-12,
    );
    assert.deepEqual([r.data[1], r.data[3]], [0, 0]);
    assert.ok(Math.abs(r.data[0]! - s[0]!) < 1e-15);
  });

  it('forward and R gradients in f64 (finite differences); merge = unmerged', () => {
    const rng = new Rng(4);
    const model = tinyLlama({ dtype: 'f64' });
    const base = model.getSubmodule('model.layers.0.self_attn.q_proj') as Linear;
    const g = Float64Array.from({ length: base.weight.size }, () => rng.normal());
    const l = new LoraRLinear(base, 3, 1, loraSbInit(g, 32, 32, 3, 0.05));
    const x = input64([3, 32], 5);
    const W = tensorToMatrix64(l.weight).data;
    const bra = mm(
      mm(l.lora_B.weight.toArray(), l.lora_R.weight.toArray(), 32, 3, 3),
      l.lora_A.weight.toArray(),
      32,
      3,
      32,
    );
    const xs = x.toArray();
    const want: number[] = [];
    for (let t = 0; t < 3; t++)
      for (let o = 0; o < 32; o++) {
        let s = 0;
        for (let i = 0; i < 32; i++) s += (W[o * 32 + i]! + bra[o * 32 + i]!) * xs[t * 32 + i]!;
        want.push(s);
      }
    const before = noGrad(() => scope(() => l.forward(x).toArray()));
    assert.ok(maxAbsDiff(before, want) < 1e-12);
    gradCheck('lora_sb', (input) => l.forward(input!), [x, l.lora_R.weight]);
    l.merge();
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );
  });

  it('the model starts one approximated step away from the base; save -> load (LORA_SB); merge-and-unload', () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const adapter = applyTuner(model, 'lora_sb', {
      r: 4,
      targetModules: ['q_proj', 'v_proj'],
      initLr: 1e-2,
      totalSteps: 10,
      gradSamples: 4,
      calibration: () => examples(6),
    }) as LoraRAdapter;
    const start = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(start, base) > 1e-5, 'B R A = (G~)_r is not zero');
    const dir = join(root, 'sb');
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'LORA_SB');
    assert.equal(json.total_steps, 10);
    const fresh = tinyLlama();
    const loaded = loadAdapter(fresh, dir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), start) < 1e-6);
    loaded.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), start) < 1e-4);
    assert.throws(() => applyTuner(tinyLlama(), 'lora_sb', { r: 4 }), /lr_eff/);
    // r beyond a layer's min(in, out) = 16 (v_proj) is reduced to it there; q_proj keeps r
    const big = applyTuner(tinyLlama(), 'lora_sb', {
      r: 24,
      totalSteps: 10,
      gradSamples: 2,
      calibration: () => examples(2),
    }) as LoraRAdapter;
    assert.deepEqual(
      big.layers().map(([n, l]) => [n.split('.').pop(), l.rank]),
      [
        ['q_proj', 24],
        ['v_proj', 16],
        ['q_proj', 24],
        ['v_proj', 16],
      ],
    );
    const bigDir = join(root, 'sb-big');
    big.save(bigDir);
    loadAdapter(tinyLlama(), bigDir);
  });

  it('trains from a config (total_steps = train.steps, gradient on data.train) and loads back', () => {
    const modelDir = writeTinyModel(join(root, 'model'));
    const data = writeJsonl(join(root, 'train.jsonl'), FACTS);
    const config = validateTrainConfig(
      {
        model: modelDir,
        data: { train: data, max_length: 32 },
        method: { name: 'lora_sb', r: 4, target_modules: ['q_proj', 'v_proj'], grad_samples: 4 },
        train: { steps: 5, batch_size: 2, lr: 5e-2, seed: 1 },
        output_dir: join(root, 'run'),
      },
      'lora_sb',
    );
    const result = train(config);
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.total_steps, 5);
    assert.equal(json.grad_samples, 4);
    const trained = logitsOf(result.model, IDS);
    const fresh = loadModel(modelDir).model;
    loadAdapter(fresh, result.adapterDir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) < 1e-4);
  });
});

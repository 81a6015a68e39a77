/**
 * KaSA (kasa_config, PEFT's names): the base truncated by its r smallest singular components, the
 * update scaling * B diag(lora_diag) A, its regulariser beta ||lambda||^2 + gamma (||B^T B - I||_F +
 * ||A A^T - I||_F), merge / unmerge / unload, and save -> load onto the original base.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { openSafetensors } from '../../../src/io/index.ts';
import { Linear } from '../../../src/nn/index.ts';
import { applyLora, getTuner, LoraLinear, loadAdapter, savePlainLora } from '../../../src/peft/index.ts';
import { noGrad, Rng, scope, svd, tensorToMatrix64 } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, randomizeLora, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-kasa-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const IDS = tokens(9);

function kasaLayer(): { l: LoraLinear; W: number[] } {
  const base = new Linear(10, 12, { seed: 5, dtype: 'f64', bias: false });
  const W = base.weight.toArray();
  const l = new LoraLinear(base, { r: 3, scaling: 2, rng: new Rng(1), kasa: true });
  const rng = new Rng(8);
  l.lora_B.weight.fillWith(() => 0.3 * rng.normal());
  return { l, W };
}

/** y = x W^T + s B diag(d) A x on plain arrays (x [n, in]). */
function reference(l: LoraLinear, x: number[], n: number): number[] {
  const W = l.weight.toArray();
  const A = l.lora_A.weight.toArray();
  const B = l.lora_B.weight.toArray();
  const d = l.lora_diag!.toArray();
  const [out, inF, r] = [l.outFeatures, l.inFeatures, l.r];
  const y = new Array<number>(n * out).fill(0);
  for (let t = 0; t < n; t++) {
    const ax = Array.from({ length: r }, (_, j) => {
      let s = 0;
      for (let i = 0; i < inF; i++) s += A[j * inF + i]! * x[t * inF + i]!;
      return s * d[j]!;
    });
    for (let o = 0; o < out; o++) {
      let s = 0;
      for (let i = 0; i < inF; i++) s += W[o * inF + i]! * x[t * inF + i]!;
      for (let j = 0; j < r; j++) s += l.scaling * B[o * r + j]! * ax[j]!;
      y[t * out + o] = s;
    }
  }
  return y;
}

describe('KaSA', () => {
  it('truncates W by its r smallest singular components; unload gives W back', () => {
    const { l, W } = kasaLayer();
    const before = svd({ rows: 12, cols: 10, data: Float64Array.from(W) }).s;
    const after = svd(tensorToMatrix64(l.weight)).s;
    assert.ok(maxAbsDiff(after.slice(0, 7), before.slice(0, 7)) < 1e-10, 'the top components are kept');
    assert.ok(Math.max(...after.slice(7)) < 1e-10, 'the bottom r are gone');
    l.restoreBaseWeight();
    assert.ok(maxAbsDiff(l.weight.toArray(), W) < 1e-12);
  });

  it('forward is W_t x + s B diag(lambda) A x; gradients of x, A, B, lambda match finite differences', () => {
    const { l } = kasaLayer();
    assert.deepEqual(l.lora_diag!.shape, [3]);
    const x = input64([4, 10], 2);
    const got = noGrad(() => scope(() => l.forward(x).toArray()));
    assert.ok(maxAbsDiff(got, reference(l, x.toArray(), 4)) < 1e-12);
    gradCheck('kasa', (input) => l.forward(input!), [x, l.lora_A.weight, l.lora_B.weight, l.lora_diag!]);
  });

  it('merge adds s B diag(lambda) A and gives the unmerged outputs; unmerge restores W_t', () => {
    const { l } = kasaLayer();
    const x = input64([3, 10], 4);
    const Wt = l.weight.toArray();
    const before = noGrad(() => scope(() => l.forward(x).toArray()));
    const delta = l.deltaWeight();
    l.merge();
    assert.ok(
      maxAbsDiff(
        l.weight.toArray(),
        Wt.map((v, i) => v + delta[i]!),
      ) < 1e-12,
    );
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );
    l.unmerge();
    assert.ok(maxAbsDiff(l.weight.toArray(), Wt) < 1e-12);
    // delta = s B diag(lambda) A
    const A = l.lora_A.weight.toArray();
    const B = l.lora_B.weight.toArray();
    const d = l.lora_diag!.toArray();
    let s = 0;
    for (let j = 0; j < 3; j++) s += B[5 * 3 + j]! * d[j]! * A[j * 10 + 7]!;
    assert.ok(Math.abs(delta[5 * 10 + 7]! - 2 * s) < 1e-12);
  });

  it('regulariser: beta ||lambda||^2 + gamma (||B^T B - I|| + ||A A^T - I||) summed over layers, with its gradients', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const adapter = applyLora(model, { r: 2, targetModules: ['q_proj'], kasa: { beta: 0.3, gamma: 0.7 } });
    randomizeLora(model, 4, 0.3);
    let want = 0;
    for (const [, l] of adapter.layers()) {
      const A = l.lora_A.weight.toArray();
      const B = l.lora_B.weight.toArray();
      const [out, inF, r] = [l.outFeatures, l.inFeatures, 2];
      const d = l.lora_diag!.toArray();
      let gb = 0;
      let ga = 0;
      for (let i = 0; i < r; i++)
        for (let j = 0; j < r; j++) {
          let b = 0;
          for (let o = 0; o < out; o++) b += B[o * r + i]! * B[o * r + j]!;
          let a = 0;
          for (let k = 0; k < inF; k++) a += A[i * inF + k]! * A[j * inF + k]!;
          gb += (b - (i === j ? 1 : 0)) ** 2;
          ga += (a - (i === j ? 1 : 0)) ** 2;
        }
      want += 0.3 * d.reduce((s, v) => s + v * v, 0) + 0.7 * (Math.sqrt(gb) + Math.sqrt(ga));
    }
    const got = noGrad(() => scope(() => adapter.auxiliaryLoss()!.value.toArray()[0]!));
    assert.ok(Math.abs(got - want) < 1e-10, `${got} vs ${want}`);
    const [, l0] = adapter.layers()[0]!;
    gradCheck('kasa regulariser', () => adapter.auxiliaryLoss()!.value, [
      l0.lora_A.weight,
      l0.lora_B.weight,
      l0.lora_diag!,
    ]);
    assert.equal(applyLora(tinyLlama(), { r: 2 }).auxiliaryLoss(), null, 'plain LoRA has none');
  });

  it('saves lora_diag and kasa_config as PEFT does; loads onto the original base (re-truncated); refuses bad r', () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const adapter = applyLora(model, { r: 2, loraAlpha: 4, targetModules: ['q_proj', 'v_proj'], kasa: {} });
    assert.ok(maxAbsDiff(logitsOf(model, IDS), base) > 1e-6, 'the truncated base differs from the original');
    randomizeLora(model, 3, 0.2);
    const tuned = logitsOf(model, IDS);
    const dir = join(tmp, 'kasa');
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.deepEqual(json.kasa_config, { beta: 1e-4, gamma: 1e-3 });
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(reader.info('base_model.model.model.layers.0.self_attn.q_proj.lora_diag').shape, [2]);
    reader.close();
    const fresh = tinyLlama();
    loadAdapter(fresh, dir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), tuned) < 1e-5);
    adapter.merge();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), tuned) < 1e-4, 'merged = unmerged');
    adapter.unload();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), base) < 1e-4, 'unload restores the original base');
    const untouched = tinyLlama();
    const w0 = untouched.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
    assert.throws(
      () => applyLora(untouched, { r: 32, targetModules: ['q_proj', 'k_proj'], kasa: {} }),
      ConfigError,
    );
    assert.deepEqual(untouched.getParameter('model.layers.0.self_attn.q_proj.weight').toArray(), w0);
    assert.throws(() => applyLora(tinyLlama(), { r: 2, kasa: {}, useDora: true }), /DoRA/);
    assert.throws(() => savePlainLora(applyLora(tinyLlama(), { r: 2, kasa: {} }), join(tmp, 'x')), /KaSA/);
    assert.deepEqual(getTuner('lora').variants?.kasa, { kasa_config: {} });
  });
});

/**
 * PEFT's `lora_bias`: a trainable, zero-initialised bias b on lora_B, the update
 * scaling * (B A x + b), saved as `base_model.model.<module>.lora_B.bias`, merged into the base
 * bias; refused with other inits, DoRA, and (on merge) a base layer without a bias.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, FormatError } from '../../../src/errors.ts';
import { openSafetensors } from '../../../src/io/index.ts';
import { createModel, type Gpt2LMHeadModel, gpt2ConfigJson } from '../../../src/models/index.ts';
import { Linear } from '../../../src/nn/index.ts';
import {
  applyLora,
  getTuner,
  LoraLinear,
  loadAdapter,
  loraConfigFromAdapterJson,
} from '../../../src/peft/index.ts';
import { noGrad, Rng, scope } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { logitsOf, maxAbsDiff, randomizeLora, tinyLlama } from './helpers.ts';

const root = mkdtempSync(join(tmpdir(), 'attune-lorabias-'));
after(() => rmSync(root, { recursive: true, force: true }));

const gpt2Config = {
  ...gpt2ConfigJson({ vocabSize: 259, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 64 }),
  bos_token_id: 256,
  eos_token_id: 257,
  pad_token_id: 258,
  initializer_range: 0.2,
};

function tinyGpt2(seed = 3): Gpt2LMHeadModel {
  return createModel(gpt2Config, { seed }).eval() as Gpt2LMHeadModel;
}

function biasedLayer(): LoraLinear {
  const base = new Linear(6, 5, { seed: 2, dtype: 'f64' });
  const l = new LoraLinear(base, { r: 2, scaling: 1.5, rng: new Rng(1), loraBias: true });
  const rng = new Rng(9);
  l.lora_B.weight.fillWith(() => 0.4 * rng.normal());
  return l;
}

describe('lora_bias (PEFT)', () => {
  it('lora_B.bias starts at zero and the update is scaling * (B A x + b) (hand-computed)', () => {
    const base = new Linear(6, 5, { seed: 2, dtype: 'f64' });
    const fresh = new LoraLinear(base, { r: 2, scaling: 1.5, rng: new Rng(1), loraBias: true });
    assert.deepEqual(fresh.lora_B.bias!.toArray(), [0, 0, 0, 0, 0]);
    assert.equal(fresh.lora_B.bias!.requiresGrad, true);
    const l = biasedLayer();
    const rng = new Rng(4);
    l.lora_B.bias!.fillWith(() => rng.normal());
    const x = input64([3, 6], 7);
    const got = noGrad(() => scope(() => l.forward(x).toArray()));
    const [W, b0, A, B, bB, xs] = [
      l.weight.toArray(),
      l.bias!.toArray(),
      l.lora_A.weight.toArray(),
      l.lora_B.weight.toArray(),
      l.lora_B.bias!.toArray(),
      x.toArray(),
    ];
    const want: number[] = [];
    for (let t = 0; t < 3; t++) {
      const ax = [0, 1].map((j) => xs.slice(t * 6, t * 6 + 6).reduce((s, v, i) => s + v * A[j * 6 + i]!, 0));
      for (let o = 0; o < 5; o++) {
        let y = b0[o]!;
        for (let i = 0; i < 6; i++) y += xs[t * 6 + i]! * W[o * 6 + i]!;
        const bax = B[o * 2]! * ax[0]! + B[o * 2 + 1]! * ax[1]!;
        want.push(y + 1.5 * (bax + bB[o]!));
      }
    }
    assert.ok(maxAbsDiff(got, want) < 1e-12, `max diff ${maxAbsDiff(got, want)}`);
  });

  it('finite-difference gradient of lora_B.bias (and A, B, x)', () => {
    const l = biasedLayer();
    gradCheck('lora_bias', (input) => l.forward(input!), [
      input64([4, 6], 3),
      l.lora_B.bias!,
      l.lora_A.weight,
      l.lora_B.weight,
    ]);
  });

  it('merge adds scaling * b to the base bias, equals the unmerged forward; unmerge restores it', () => {
    const l = biasedLayer();
    const rng = new Rng(5);
    l.lora_B.bias!.fillWith(() => rng.normal());
    const b0 = l.bias!.toArray();
    const x = input64([3, 6], 8);
    const before = noGrad(() => scope(() => l.forward(x).toArray()));
    l.merge();
    const bB = l.lora_B.bias!.toArray();
    assert.ok(
      maxAbsDiff(
        l.bias!.toArray(),
        b0.map((v, i) => v + 1.5 * bB[i]!),
      ) < 1e-12,
    );
    assert.ok(
      maxAbsDiff(
        noGrad(() => scope(() => l.forward(x).toArray())),
        before,
      ) < 1e-12,
    );
    l.unmerge();
    assert.ok(maxAbsDiff(l.bias!.toArray(), b0) < 1e-12);
  });

  it('GPT-2 (biased Conv1D): train-shaped state under PEFT keys, save -> load round trip, merge == unmerged', () => {
    const ids = [1, 50, 120, 7, 9];
    const model = tinyGpt2();
    const adapter = applyLora(model, { r: 2, targetModules: ['c_attn', 'c_proj'], loraBias: true });
    randomizeLora(model, 11);
    const rng = new Rng(6);
    for (const [name, p] of model.namedParameters())
      if (name.endsWith('.lora_B.bias')) p.fillWith(() => 0.1 * rng.normal());
    const names = adapter.namedTrainableParameters().map(([n]) => n);
    assert.ok(names.includes('transformer.h.0.attn.c_attn.lora_B.bias'), names.join(', '));
    const dir = join(root, 'gpt2-bias');
    adapter.save(dir);
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(cfg.lora_bias, true);
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    const key = 'base_model.model.transformer.h.1.mlp.c_proj.lora_B.bias';
    assert.ok(reader.has(key), reader.names().join(', '));
    assert.deepEqual(reader.info(key).shape, [16]);
    reader.close();
    const unmerged = logitsOf(model, ids);
    assert.ok(maxAbsDiff(unmerged, logitsOf(tinyGpt2(), ids)) > 1e-4, 'the bias changes the model');

    const other = tinyGpt2();
    const loaded = loadAdapter(other, dir);
    assert.ok(maxAbsDiff(logitsOf(other, ids), unmerged) < 1e-5, 'loaded adapter gives the same logits');
    loaded.merge();
    assert.ok(maxAbsDiff(logitsOf(other, ids), unmerged) < 1e-4, 'merged == unmerged');

    // a bias-only adapter (A, B zero but b != 0) is not the base: the bias alone moves the outputs
    const plain = tinyGpt2();
    const a2 = applyLora(plain, { r: 2, targetModules: ['c_attn'], loraBias: true });
    for (const [, l] of a2.layers()) l.lora_B.bias!.fillWith(() => 0.2);
    assert.ok(maxAbsDiff(logitsOf(plain, ids), logitsOf(tinyGpt2(), ids)) > 1e-4);
  });

  it('refuses lora_bias with other inits and DoRA (PEFT), and a merge into a layer without a bias', () => {
    assert.throws(
      () => applyLora(tinyLlama(), { loraBias: true, useDora: true }),
      (e: Error) => e instanceof ConfigError && /lora_bias.*DoRA/.test(e.message),
    );
    assert.throws(
      () => applyLora(tinyLlama(), { loraBias: true, init: 'gaussian' }),
      (e: Error) => e instanceof ConfigError && /init_lora_weights true.*gaussian/.test(e.message),
    );
    assert.throws(
      () => applyLora(tinyLlama(), { loraBias: true, init: 'pissa' }),
      (e: Error) => e instanceof ConfigError && /pissa/.test(e.message),
    );
    const llama = tinyLlama();
    const adapter = applyLora(llama, { loraBias: true });
    assert.throws(
      () => adapter.merge(),
      (e: Error) =>
        e instanceof ConfigError && /'model\.layers\.0\.self_attn\.q_proj' has no bias/.test(e.message),
    );
    assert.ok(
      adapter.layers().every(([, l]) => !l.merged),
      'a refused merge leaves every layer unmerged',
    );
    const nb = new LoraLinear(new Linear(4, 3, { bias: false, seed: 1 }), {
      r: 1,
      scaling: 1,
      rng: new Rng(0),
      loraBias: true,
    });
    assert.throws(() => nb.merge(), /without a bias/);
    assert.equal(nb.merged, false);
  });

  it('adapter_config.json: lora_bias read by the tuner, refused by fold-by-name commands, type-checked', () => {
    const json = { peft_type: 'LORA', r: 2, lora_alpha: 4, target_modules: ['q_proj'], lora_bias: true };
    assert.equal(
      loraConfigFromAdapterJson(json, 'a/adapter_config.json', { allowVariants: true }).loraBias,
      true,
    );
    assert.throws(
      () => loraConfigFromAdapterJson(json, 'a/adapter_config.json'),
      (e: Error) =>
        e instanceof FormatError && /lora_bias/.test(e.message) && /a\/adapter_config.json/.test(e.message),
    );
    assert.throws(
      () => loraConfigFromAdapterJson({ ...json, lora_bias: 'yes' }, 'f.json', { allowVariants: true }),
      /'lora_bias' must be true or false/,
    );
    const o = getTuner('lora').fromOptions({ lora_bias: true }, { seed: 0 });
    assert.equal((o as { loraBias?: boolean }).loraBias, true);
  });
});

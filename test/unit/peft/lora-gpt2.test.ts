/**
 * LoRA on GPT-2's Conv1D layers, as PEFT does it: default target `c_attn`, `all-linear` = the
 * Conv1D layers (not the tied LM head), `fan_in_fan_out: true` in adapter_config.json, lora_A
 * [r, in] / lora_B [out, r] under `base_model.model.transformer.h.N.attn.c_attn.lora_A.weight`, and a
 * merge that folds scaling * (B A)^T into the [in, out] weight.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensors, readJsonObject, Tokenizer, writeByteTokenizer } from '../../../src/io/index.ts';
import {
  createModel,
  type Gpt2LMHeadModel,
  gpt2ConfigJson,
  loadModel,
  saveModel,
} from '../../../src/models/index.ts';
import { applyLora, LoraLinear, loadAdapter, loraConfigFromAdapterJson } from '../../../src/peft/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff } from './helpers.ts';

const root = tempDir('attune-lora-gpt2-');
after(() => rmSync(root, { recursive: true, force: true }));

const config = {
  ...gpt2ConfigJson({ vocabSize: 259, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 64 }),
  bos_token_id: 256,
  eos_token_id: 257,
  pad_token_id: 258,
  initializer_range: 0.2,
};

function tinyGpt2(seed = 3): Gpt2LMHeadModel {
  return createModel(config, { seed }).eval() as Gpt2LMHeadModel;
}

describe('LoRA on GPT-2 (Conv1D)', () => {
  it("targets PEFT's default for gpt2, c_attn, and keeps the model equal to the base at B = 0", () => {
    const model = tinyGpt2();
    const ids = [1, 50, 120, 7];
    const before = logitsOf(model, ids);
    const adapter = applyLora(model, { r: 4 });
    assert.deepEqual(adapter.savedTargetModules, ['c_attn']);
    assert.deepEqual(
      adapter.layers().map(([n]) => n),
      ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn'],
    );
    assert.ok(adapter.layers().every(([, l]) => l.fanInFanOut));
    assert.deepEqual(logitsOf(model, ids), before);
    const json = adapter.adapterConfigJson();
    assert.equal(json.fan_in_fan_out, true);
    assert.deepEqual(json.target_modules, ['c_attn']);
  });
  it('all-linear adapts every Conv1D (c_attn, c_proj, c_fc) and not the tied LM head', () => {
    const adapter = applyLora(tinyGpt2(), { r: 2, targetModules: 'all-linear' });
    assert.deepEqual(adapter.savedTargetModules, ['c_attn', 'c_fc', 'c_proj']);
    assert.equal(adapter.layers().length, 8);
    const untied = createModel({ ...config, tie_word_embeddings: false }, { seed: 1 });
    const u = applyLora(untied, { r: 2, targetModules: 'all-linear' });
    assert.ok(!u.layers().some(([n]) => n === 'lm_head'));
    assert.equal(u.layers().length, 8);
  });
  it('merges scaling * (B A)^T into the [in, out] weight: merged forward == unmerged forward', () => {
    const model = tinyGpt2(5);
    const adapter = applyLora(model, { r: 3, loraAlpha: 6, targetModules: ['c_attn', 'c_fc'] });
    for (const [, l] of adapter.layers()) l.lora_B.weight.fillWith((i) => 0.05 * Math.sin(i + 1));
    const ids = [4, 8, 15, 16, 23, 42];
    const unmerged = logitsOf(model, ids);
    const [, layer] = adapter.layers()[0]!;
    const w0 = Float64Array.from(layer.weight.data as Float32Array);
    adapter.merge();
    // independently: W[i, o] += scaling * sum_k B[o, k] A[k, i]
    const A = layer.lora_A.weight.data as Float32Array;
    const B = layer.lora_B.weight.data as Float32Array;
    const [inF, outF] = layer.weight.shape as [number, number];
    const merged = layer.weight.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < inF; i++) {
      for (let o = 0; o < outF; o++) {
        let s = 0;
        for (let k = 0; k < 3; k++) s += B[o * 3 + k]! * A[k * inF + i]!;
        worst = Math.max(worst, Math.abs(merged[i * outF + o]! - (w0[i * outF + o]! + 2 * s)));
      }
    }
    assert.ok(worst < 1e-6, `merged weight off by ${worst}`);
    const mergedLogits = logitsOf(model, ids);
    assert.ok(maxAbsDiff(mergedLogits, unmerged) < 1e-5);
    assert.ok(maxAbsDiff(mergedLogits, logitsOf(tinyGpt2(5), ids)) > 1e-3, 'the update changes the model');
    const plain = adapter.mergeAndUnload() as Gpt2LMHeadModel;
    assert.ok(!(plain.transformer.h.at(0).attn.c_attn instanceof LoraLinear));
    assert.ok(maxAbsDiff(logitsOf(plain, ids), unmerged) < 1e-5);
  });
  it('trains a few steps with the trainer and saves a PEFT adapter that loads and merges', () => {
    const modelDir = join(root, 'model');
    writeByteTokenizer(modelDir);
    saveModel(tinyGpt2(9), modelDir, { tokenizer: Tokenizer.fromDir(modelDir) });
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    const result = train(
      tinyConfig(root, {
        lora: { r: 4, lora_alpha: 8, target_modules: ['c_attn'] },
        train: { steps: 8, lr: 3e-2, residual_dropout: 0 },
      }),
    );
    const metrics = readFileSync(join(root, 'run', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { loss?: number })
      .filter((m) => typeof m.loss === 'number');
    assert.ok(metrics.at(-1)!.loss! < metrics[0]!.loss!, 'the loss went down');
    const dir = result.finalDir;
    const json = readJsonObject(join(dir, 'adapter_config.json'), 'adapter config');
    assert.equal(json.fan_in_fan_out, true);
    assert.deepEqual(json.target_modules, ['c_attn']);
    assert.equal(json.peft_type, 'LORA');
    assert.equal(json.r, 4);
    // the lora tuner reads it back; raw-tensor commands (merge, port) refuse it, naming the field
    assert.equal(loraConfigFromAdapterJson(json, 'adapter_config.json', { allowFanInFanOut: true }).r, 4);
    assert.throws(() => loraConfigFromAdapterJson(json, 'adapter_config.json'), /'fan_in_fan_out' is true/);
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    try {
      assert.deepEqual(reader.names(), [
        'base_model.model.transformer.h.0.attn.c_attn.lora_A.weight',
        'base_model.model.transformer.h.0.attn.c_attn.lora_B.weight',
        'base_model.model.transformer.h.1.attn.c_attn.lora_A.weight',
        'base_model.model.transformer.h.1.attn.c_attn.lora_B.weight',
      ]);
      assert.deepEqual(
        reader.info('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight').shape,
        [4, 16],
      );
      assert.deepEqual(
        reader.info('base_model.model.transformer.h.0.attn.c_attn.lora_B.weight').shape,
        [48, 4],
      );
      const b = reader.read('base_model.model.transformer.h.1.attn.c_attn.lora_B.weight')
        .data as Float32Array;
      assert.ok(
        b.some((v) => v !== 0),
        'lora_B was trained',
      );
    } finally {
      reader.close();
    }
    const base = loadModel(modelDir).model;
    const ids = [72, 105, 32, 66, 111];
    const plainLogits = logitsOf(base, ids);
    const adapter = loadAdapter(base, dir);
    const adapted = logitsOf(base, ids);
    assert.ok(maxAbsDiff(adapted, plainLogits) > 1e-4, 'the trained adapter changes the model');
    const merged = adapter.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(merged as Gpt2LMHeadModel, ids), adapted) < 1e-5);
  });
});

describe('GPT-2: LoRA on the tied wte table', () => {
  it('saves transformer.wte.lora_embedding_A [r, V] / _B [d, r]; with ensure_weight_tying it merges exactly, without it merging is refused', () => {
    const ids = [1, 50, 120, 7];
    for (const ensureWeightTying of [false, true]) {
      const model = tinyGpt2();
      const adapter = applyLora(model, { r: 2, targetModules: ['c_attn', 'wte'], ensureWeightTying });
      for (const p of adapter.trainableParameters())
        p.fillWith((i) => p.toArray()[i]! + 0.02 * ((i % 5) - 2));
      const state = adapter.state();
      assert.deepEqual(state.get('base_model.model.transformer.wte.lora_embedding_A')!.shape, [
        2,
        model.config.vocabSize,
      ]);
      assert.deepEqual(state.get('base_model.model.transformer.wte.lora_embedding_B')!.shape, [
        model.config.hiddenSize,
        2,
      ]);
      const want = logitsOf(model, ids);
      const dir = join(root, `wte-${ensureWeightTying}`);
      adapter.save(dir);
      const other = tinyGpt2();
      loadAdapter(other, dir);
      assert.deepEqual(logitsOf(other, ids), want);
      if (!ensureWeightTying)
        assert.throws(() => adapter.merge(), /'transformer\.wte' is tied to the LM head/);
      else {
        adapter.merge();
        assert.ok(maxAbsDiff(logitsOf(model, ids), want) < 1e-4);
      }
    }
  });
});

describe('GPT-2: LoRA on the wpe position table', () => {
  it('changes the logits as the merged table does (the forward reads wpe through its module)', () => {
    const ids = [1, 50, 120, 7];
    const model = tinyGpt2();
    const before = logitsOf(model, ids);
    const adapter = applyLora(model, { r: 2, targetModules: ['wpe'] });
    for (const p of adapter.trainableParameters()) p.fillWith((i) => 0.05 * ((i % 7) - 3));
    const adapted = logitsOf(model, ids);
    assert.ok(maxAbsDiff(adapted, before) > 1e-4, 'a non-zero wpe LoRA must change the output');
    const merged = adapter.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(merged as Gpt2LMHeadModel, ids), adapted) < 1e-5);
  });
});

describe('training a GPT-2 from YAML-shaped configs', () => {
  it("method: lora with no target_modules takes the model type's default (c_attn); ln_* weights get no weight decay", () => {
    const dir = join(root, 'yaml-model');
    writeByteTokenizer(dir);
    saveModel(tinyGpt2(5), dir, { tokenizer: Tokenizer.fromDir(dir) });
    writeJsonl(join(root, 'yaml-train.jsonl'), FACTS);
    const base = { model: dir, data: { train: join(root, 'yaml-train.jsonl'), max_length: 32 } };
    const lora = train(
      validateTrainConfig(
        { ...base, method: { name: 'lora', r: 2 }, train: { steps: 2 }, output_dir: join(root, 'yaml-run') },
        'test',
      ),
    );
    const saved = readJsonObject(join(lora.adapterDir, 'adapter_config.json'));
    assert.deepEqual(saved.target_modules, ['c_attn']);
    const full = train(
      validateTrainConfig(
        {
          ...base,
          method: 'full',
          optimizer: { name: 'adamw', weight_decay: 0.5 },
          train: { steps: 1, lr: 1e-3, save_every: 1 },
          output_dir: join(root, 'yaml-full'),
        },
        'test',
      ),
    );
    // the optimizer's groups, as checkpointed: layer norms (ln_1, ln_2, ln_f) and biases get no decay
    const opt = readJsonObject(join(full.outputDir, 'checkpoints', 'step-1', 'optimizer.json')) as {
      weightDecays: number[];
    };
    const names = full.adapter.namedTrainableParameters().map(([n]) => n);
    const noDecay = names.filter((n) => n.endsWith('.bias') || /\.ln_(1|2|f)\.weight$/.test(n));
    assert.ok(noDecay.includes('transformer.ln_f.weight'));
    assert.equal(opt.weightDecays.length, names.length);
    assert.equal(opt.weightDecays.filter((w) => w === 0).length, noDecay.length);
    assert.equal(opt.weightDecays.filter((w) => w === 0.5).length, names.length - noDecay.length);
  });
});

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, FormatError } from '../../../src/errors.ts';
import { writeSafetensors } from '../../../src/io/index.ts';
import {
  applyLora,
  getTuner,
  type LoraAdapter,
  type LoraLinear,
  loadAdapter,
  loraConfigFromAdapterJson,
  patternKeyFor,
  peftLayerIndex,
  selectTargetModules,
} from '../../../src/peft/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { logitsOf, maxAbsDiff, randomizeLora, tinyLlama, tokens } from './helpers.ts';

const IDS = tokens(9);
const Q0 = 'model.layers.0.self_attn.q_proj';
const Q1 = 'model.layers.1.self_attn.q_proj';
const V0 = 'model.layers.0.self_attn.v_proj';
const V1 = 'model.layers.1.self_attn.v_proj';

function ranks(adapter: LoraAdapter): Record<string, [number, number]> {
  return Object.fromEntries(adapter.layers().map(([n, l]) => [n, [l.r, l.scaling]]));
}

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'attune-loracfg-'));
}

describe('rank_pattern / alpha_pattern (PEFT get_pattern_key)', () => {
  it('a key matches a whole name or a "."-suffix, first key in order wins', () => {
    assert.equal(patternKeyFor({ q_proj: 4 }, Q0), 'q_proj');
    assert.equal(patternKeyFor({ proj: 4 }, Q0), null, 'a suffix must start at a dot');
    assert.equal(
      patternKeyFor({ 'layers\\.0\\.self_attn\\.q_proj': 4 }, Q0),
      'layers\\.0\\.self_attn\\.q_proj',
    );
    assert.equal(patternKeyFor({ '^model.layers.1.self_attn.q_proj': 4 }, Q0), null);
    assert.equal(
      patternKeyFor({ '^model.layers.0.self_attn.q_proj': 4 }, Q0),
      '^model.layers.0.self_attn.q_proj',
    );
    assert.equal(patternKeyFor({ '.*_proj': 2, q_proj: 4 }, Q0), '.*_proj', 'the first matching key wins');
    assert.equal(patternKeyFor({ 'layers.0.*': 2 }, V0), 'layers.0.*');
  });

  it('each module gets its r and scaling alpha_m / r_m; others keep r and lora_alpha', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, {
      r: 4,
      loraAlpha: 8,
      targetModules: ['q_proj', 'v_proj'],
      rankPattern: { 'layers\\.1\\.self_attn\\.q_proj': 2, v_proj: 6 },
      alphaPattern: { 'layers.0.self_attn.v_proj': 3 },
    });
    assert.deepEqual(ranks(adapter), {
      [Q0]: [4, 2],
      [V0]: [6, 0.5],
      [Q1]: [2, 4],
      [V1]: [6, 8 / 6],
    });
    const names = new Map(model.namedParameters());
    assert.deepEqual(names.get(`${Q1}.lora_A.weight`)!.shape, [2, 32]);
    assert.deepEqual(names.get(`${V0}.lora_B.weight`)!.shape, [16, 6]);
  });

  it('rsLoRA scales each module by alpha_m / sqrt(r_m)', () => {
    const adapter = applyLora(tinyLlama(), {
      r: 4,
      loraAlpha: 8,
      useRslora: true,
      targetModules: ['q_proj'],
      rankPattern: { 'layers\\.1\\.self_attn\\.q_proj': 16 },
    });
    assert.deepEqual(ranks(adapter), { [Q0]: [4, 4], [Q1]: [16, 2] });
  });

  it('the forward is the base plus scaling_m B_m A_m x per module (hand-computed on one layer)', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, {
      r: 4,
      loraAlpha: 8,
      targetModules: ['q_proj'],
      rankPattern: { 'layers\\.0\\..*': 2 },
      alphaPattern: { 'layers\\.0\\..*': 5 },
    });
    randomizeLora(model, 11, 0.2);
    const l = model.getSubmodule(Q0) as LoraLinear;
    const rng = [0.3, -0.7, 0.1, 0.9];
    const x = fromArray(
      Float32Array.from({ length: 32 }, (_, i) => rng[i % 4]! * (1 + i / 32)),
      [1, 32],
    );
    const y = l.forward(x).toArray();
    const w = l.weight.toArray();
    const a = l.lora_A.weight.toArray();
    const b = l.lora_B.weight.toArray();
    const xs = x.toArray();
    for (let o = 0; o < 32; o++) {
      let ref = 0;
      for (let i = 0; i < 32; i++) ref += w[o * 32 + i]! * xs[i]!;
      for (let k = 0; k < 2; k++) {
        let ax = 0;
        for (let i = 0; i < 32; i++) ax += a[k * 32 + i]! * xs[i]!;
        ref += 2.5 * b[o * 2 + k]! * ax;
      }
      assert.ok(Math.abs(y[o]! - ref) < 1e-4, `output ${o}: ${y[o]} vs ${ref}`);
    }
    assert.equal(adapter.layers().length, 2);
  });

  it('merge equals the unmerged forward, and save -> load restores both ranks and outputs', () => {
    const model = tinyLlama();
    const config = {
      r: 4,
      loraAlpha: 8,
      targetModules: ['q_proj', 'v_proj'],
      rankPattern: { v_proj: 2 },
      alphaPattern: { 'layers\\.1\\..*': 16 },
      layersToTransform: [1],
    };
    const adapter = applyLora(model, config);
    randomizeLora(model, 5, 0.1);
    const unmerged = logitsOf(model, IDS);
    adapter.merge();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), unmerged) < 1e-4);
    adapter.unmerge();
    const dir = tmp();
    try {
      adapter.save(dir);
      const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
      assert.deepEqual(json.rank_pattern, { v_proj: 2 });
      assert.deepEqual(json.alpha_pattern, { 'layers\\.1\\..*': 16 });
      assert.deepEqual(json.layers_to_transform, [1]);
      assert.equal(json.layers_pattern, null);
      const fresh = tinyLlama();
      const loaded = loadAdapter(fresh, dir) as LoraAdapter;
      assert.deepEqual(ranks(loaded), ranks(adapter));
      assert.deepEqual(ranks(loaded), { [Q1]: [4, 4], [V1]: [2, 8] });
      assert.ok(maxAbsDiff(logitsOf(fresh, IDS), unmerged) < 1e-5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad patterns are ConfigErrors naming the field and key', () => {
    const m = tinyLlama();
    assert.throws(
      () => applyLora(m, { targetModules: ['q_proj'], rankPattern: { q_proj: 2.5 } }),
      (e) =>
        e instanceof ConfigError &&
        /rank_pattern\['q_proj'\] must be a positive integer, found 2.5/.test(e.message),
    );
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: ['q_proj'], alphaPattern: { '(bad': 2 } }),
      (e) =>
        e instanceof ConfigError &&
        /alpha_pattern key '\(bad' is not a valid regular expression/.test(e.message),
    );
  });
});

describe('layers_to_transform / layers_pattern (PEFT check_target_module_exists)', () => {
  it('reads the layer index after the first component (or the named one)', () => {
    assert.equal(peftLayerIndex(Q1), 1);
    assert.equal(peftLayerIndex('transformer.h.3.attn.c_attn'), 3);
    assert.equal(peftLayerIndex('transformer.h.3.attn.c_attn', 'h'), 3);
    assert.equal(
      peftLayerIndex('model.layers.2.mlp.experts.5.up_proj'),
      2,
      'the first index, not the expert',
    );
    assert.equal(peftLayerIndex(Q1, 'blocks'), null);
    assert.equal(peftLayerIndex(Q1, ['blocks', 'layers']), 1);
    assert.equal(peftLayerIndex('lm_head'), null);
  });

  it('a layer outside layers_to_transform has no adapter and identical outputs', () => {
    const base = tinyLlama();
    const baseLogits = logitsOf(base, IDS);
    const model = tinyLlama();
    const adapter = applyLora(model, { r: 2, targetModules: ['q_proj', 'v_proj'], layersToTransform: 0 });
    assert.deepEqual(
      adapter.layers().map(([n]) => n),
      [Q0, V0],
    );
    assert.equal(model.getSubmodule(Q1).constructor.name, 'Linear');
    // B = 0: the same outputs as the base; after randomising B only layer 0's q/v change the model
    assert.ok(maxAbsDiff(logitsOf(model, IDS), baseLogits) === 0);
    const other = tinyLlama();
    const withLayers = applyLora(other, {
      r: 2,
      targetModules: ['q_proj', 'v_proj'],
      layersToTransform: [1],
      layersPattern: 'layers',
    });
    assert.deepEqual(
      withLayers.layers().map(([n]) => n),
      [Q1, V1],
    );
    assert.throws(
      () =>
        applyLora(tinyLlama(), {
          targetModules: ['q_proj'],
          layersToTransform: [0],
          layersPattern: 'blocks',
        }),
      (e) => e instanceof ConfigError && /in layers \[0\] matched no module/.test(e.message),
    );
  });

  it('a name equal to a list entry is kept whatever its layer (PEFT checks it first)', () => {
    const { modules } = selectTargetModules(tinyLlama(), [Q1, 'v_proj'], { layersToTransform: 0 });
    assert.deepEqual(
      modules.map(([n]) => n),
      [V0, Q1],
    );
  });

  it('composes with exclude_modules', () => {
    const adapter = applyLora(tinyLlama(), {
      targetModules: ['q_proj', 'k_proj', 'v_proj'],
      excludeModules: ['k_proj', 'layers.1.self_attn.v_proj'],
      layersToTransform: [1],
    });
    assert.deepEqual(
      adapter.layers().map(([n]) => n),
      [Q1],
    );
  });

  it("refuses PEFT's invalid combinations", () => {
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: '.*q_proj', layersToTransform: 0 }),
      (e) =>
        e instanceof ConfigError &&
        /layers_to_transform cannot be used when target_modules is a string/.test(e.message),
    );
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: 'all-linear', layersToTransform: [0] }),
      /cannot be used when target_modules is a string/,
    );
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: ['q_proj'], layersPattern: 'layers' }),
      /layers_pattern is set, so layers_to_transform must be set too/,
    );
    assert.throws(
      () => applyLora(tinyLlama(), { targetModules: ['q_proj'], layersToTransform: [-1] }),
      /layers_to_transform must be a layer index \(integer >= 0\) or a list of them, found \[-1\]/,
    );
  });
});

describe('a PEFT-written adapter with these fields', () => {
  /** adapter_config.json as PEFT 0.17 writes it (keys sorted, every field). */
  function peftConfig(): Record<string, unknown> {
    return {
      alpha_pattern: { 'model.layers.1.self_attn.v_proj': 2 },
      auto_mapping: null,
      base_model_name_or_path: 'tiny',
      bias: 'none',
      corda_config: null,
      eva_config: null,
      exclude_modules: null,
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layer_replication: null,
      layers_pattern: ['layers'],
      layers_to_transform: [1],
      loftq_config: {},
      lora_alpha: 16,
      lora_bias: false,
      lora_dropout: 0.05,
      megatron_config: null,
      megatron_core: 'megatron.core',
      modules_to_save: null,
      peft_type: 'LORA',
      qalora_group_size: 16,
      r: 8,
      rank_pattern: { v_proj: 4 },
      revision: null,
      target_modules: ['v_proj', 'q_proj'],
      target_parameters: null,
      task_type: 'CAUSAL_LM',
      trainable_token_indices: null,
      use_dora: false,
      use_qalora: false,
      use_rslora: false,
    };
  }

  it('loads with the per-module ranks and applies them', () => {
    const dir = tmp();
    try {
      writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peftConfig(), null, 2));
      const a = (shape: number[], v: number) =>
        fromArray(new Float32Array(shape[0]! * shape[1]!).fill(v), shape);
      writeSafetensors(
        join(dir, 'adapter_model.safetensors'),
        new Map([
          [`base_model.model.${Q1}.lora_A.weight`, a([8, 32], 0.01)],
          [`base_model.model.${Q1}.lora_B.weight`, a([32, 8], 0.02)],
          [`base_model.model.${V1}.lora_A.weight`, a([4, 32], 0.03)],
          [`base_model.model.${V1}.lora_B.weight`, a([16, 4], 0.04)],
        ]),
        { format: 'pt' },
      );
      const model = tinyLlama();
      const adapter = loadAdapter(model, dir) as LoraAdapter;
      assert.deepEqual(ranks(adapter), { [Q1]: [8, 2], [V1]: [4, 0.5] });
      const v1 = model.getSubmodule(V1) as LoraLinear;
      assert.ok(v1.lora_B.weight.toArray().every((x) => Math.abs(x - 0.04) < 1e-7));
      // the folding commands (one r for every module) refuse the patterns, naming them
      assert.throws(
        () => loraConfigFromAdapterJson(peftConfig() as never, 'x/adapter_config.json'),
        (e) => e instanceof FormatError && /rank_pattern' \/ 'alpha_pattern/.test(e.message),
      );
      // layer selection alone is fine for them: they pair the saved matrices by name
      const plain = { ...peftConfig(), rank_pattern: {}, alpha_pattern: {} };
      assert.deepEqual(loraConfigFromAdapterJson(plain as never, 'x').layersToTransform, [1]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('bad field values are FormatErrors naming the file', () => {
    const bad = { ...peftConfig(), rank_pattern: { v_proj: 0 } };
    assert.throws(
      () => loraConfigFromAdapterJson(bad as never, 'dir/adapter_config.json', { allowVariants: true }),
      (e) =>
        e instanceof FormatError &&
        /dir\/adapter_config\.json/.test(e.message) &&
        /rank_pattern\['v_proj'\]/.test(e.message),
    );
    const regexTargets = { ...peftConfig(), target_modules: '.*proj' };
    assert.throws(
      () => loraConfigFromAdapterJson(regexTargets as never, 'f', { allowVariants: true }),
      /layers_to_transform cannot be used when target_modules is a string/,
    );
  });
});

describe('training options', () => {
  it('rank_pattern / layers_to_transform are options of the lora tuner', () => {
    const tuner = getTuner('lora');
    const config = tuner.fromOptions(
      {
        r: 4,
        target_modules: ['q_proj'],
        rank_pattern: { q_proj: 2 },
        alpha_pattern: { q_proj: 1 },
        layers_to_transform: 1,
      },
      { seed: 0 } as never,
    );
    const adapter = tuner.apply(tinyLlama(), config) as LoraAdapter;
    assert.deepEqual(ranks(adapter), { [Q1]: [2, 0.5] });
    assert.throws(() => tuner.fromOptions({ rank_pattern: { q_proj: 0 } }, { seed: 0 } as never));
  });
});

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, FormatError, TensorMismatchError } from '../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import type { LlamaForCausalLM } from '../../../src/models/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  applyLora,
  type LoraAdapter,
  LoraLinear,
  loadAdapter,
} from '../../../src/peft/index.ts';
import { Tensor } from '../../../src/tensor/index.ts';
import { logitsOf, randomizeLora, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-peft-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = () => join(tmp, `adapter-${dirCount++}`);

const IDS = tokens(9);
const KEY_A = 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight';
const KEY_B = 'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight';

/** A trained-looking adapter saved to a fresh dir. */
function savedAdapter(config: Parameters<typeof applyLora>[1] = { r: 4, loraAlpha: 16 }): {
  dir: string;
  model: LlamaForCausalLM;
  adapter: LoraAdapter;
} {
  const model = tinyLlama();
  const adapter = applyLora(model, config);
  randomizeLora(model, 21);
  const dir = freshDir();
  adapter.save(dir, { baseModelNameOrPath: 'HuggingFaceTB/SmolLM2-135M' });
  return { dir, model, adapter };
}

/** The model is the plain base model: no LoRA layer, flags and outputs as before. */
function assertUntouched(model: LlamaForCausalLM, logits: Float64Array, flags: boolean[]): void {
  assert.ok(
    model.modules().every((m) => !(m instanceof LoraLinear)),
    'no LoRA layer left behind',
  );
  assert.deepEqual(
    model.parameters().map((p) => p.requiresGrad),
    flags,
  );
  assert.deepEqual(logitsOf(model, IDS), logits);
}

describe('PEFT adapter files', () => {
  it('saves adapter_model.safetensors with PEFT keys: lora_A [r, in], lora_B [out, r], no adapter name', () => {
    const { dir } = savedAdapter();
    const reader = openSafetensors(join(dir, ADAPTER_WEIGHTS_FILE));
    try {
      const names = reader.names();
      assert.equal(names.length, 2 * 2 * 2);
      assert.ok(names.includes(KEY_A));
      assert.ok(names.includes(KEY_B));
      assert.ok(names.includes('base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight'));
      assert.ok(
        names.every((n) =>
          /^base_model\.model\.model\.layers\.\d\.self_attn\.[qv]_proj\.lora_[AB]\.weight$/.test(n),
        ),
      );
      assert.deepEqual(reader.info(KEY_A).shape, [4, 32]);
      assert.deepEqual(reader.info(KEY_B).shape, [32, 4]);
      assert.deepEqual(
        reader.info('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight').shape,
        [16, 4],
      );
      assert.equal(reader.info(KEY_A).dtype, 'F32');
      assert.equal(reader.metadata().format, 'pt');
    } finally {
      reader.close();
    }
  });

  it('writes adapter_config.json with the fields PEFT writes (sorted keys)', () => {
    const { dir } = savedAdapter({ r: 4, loraAlpha: 16, loraDropout: 0.05, useRslora: true });
    const text = readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8');
    const json = JSON.parse(text);
    assert.deepEqual(json, {
      alpha_pattern: {},
      auto_mapping: null,
      base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
      bias: 'none',
      fan_in_fan_out: false,
      inference_mode: true,
      init_lora_weights: true,
      layer_replication: null,
      layers_pattern: null,
      layers_to_transform: null,
      loftq_config: {},
      lora_alpha: 16,
      lora_dropout: 0.05,
      megatron_config: null,
      megatron_core: 'megatron.core',
      modules_to_save: null,
      peft_type: 'LORA',
      r: 4,
      rank_pattern: {},
      revision: null,
      target_modules: ['q_proj', 'v_proj'],
      task_type: 'CAUSAL_LM',
      use_dora: false,
      use_rslora: true,
    });
    assert.deepEqual(Object.keys(json), Object.keys(json).sort());
    assert.ok(text.endsWith('}\n'));
    const gaussian = savedAdapter({
      init: 'gaussian',
      targetModules: 'all-linear',
      excludeModules: ['o_proj'],
    });
    const g = JSON.parse(readFileSync(join(gaussian.dir, ADAPTER_CONFIG_FILE), 'utf8'));
    assert.equal(g.init_lora_weights, 'gaussian');
    assert.deepEqual(g.target_modules, ['down_proj', 'gate_proj', 'k_proj', 'q_proj', 'up_proj', 'v_proj']);
    assert.deepEqual(g.exclude_modules, ['o_proj']);
    const regex = savedAdapter({ targetModules: '.*layers\\.1\\..*q_proj' });
    assert.equal(
      JSON.parse(readFileSync(join(regex.dir, ADAPTER_CONFIG_FILE), 'utf8')).target_modules,
      '.*layers\\.1\\..*q_proj',
    );
  });

  it('save -> loadAdapter onto a fresh base gives identical outputs', () => {
    for (const config of [
      { r: 4, loraAlpha: 16, useRslora: true },
      { targetModules: 'all-linear', r: 2 },
    ] as const) {
      const { dir, model, adapter } = savedAdapter(config);
      const want = logitsOf(model, IDS);
      const fresh = tinyLlama();
      const loaded = loadAdapter(fresh, dir) as LoraAdapter;
      assert.equal(loaded.method, 'lora');
      assert.equal(loaded.scaling, adapter.scaling);
      assert.equal(loaded.layers().length, adapter.layers().length);
      assert.deepEqual(logitsOf(fresh, IDS), want);
      assert.deepEqual([...loaded.state().keys()].sort(), [...adapter.state().keys()].sort());
      assert.equal(
        fresh.numParameters({ trainableOnly: true }),
        model.numParameters({ trainableOnly: true }),
      );
    }
  });

  it('reads adapters stored in bf16 (converted to f32)', () => {
    const { dir, adapter } = savedAdapter();
    const bf16 = new Map<string, Tensor>();
    for (const [key, t] of adapter.state()) {
      const bits = new Uint16Array(t.size);
      const src = t.data as Float32Array;
      const view = new Uint32Array(src.buffer, src.byteOffset, src.length);
      for (let i = 0; i < bits.length; i++) bits[i] = view[i]! >>> 16;
      bf16.set(key, Tensor.wrap(bits, t.shape, { track: false }));
    }
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), bf16);
    const fresh = tinyLlama();
    const loaded = loadAdapter(fresh, dir);
    const a = loaded.state().get(KEY_A)!;
    assert.equal(a.dtype, 'f32');
    assert.deepEqual(a.toArray(), bf16.get(KEY_A)!.toArray());
  });

  it('refuses a mis-shaped, missing or unexpected tensor, naming file and tensor; nothing is applied', () => {
    const { dir, adapter } = savedAdapter();
    const state = adapter.state();
    const cases: [string, Map<string, Tensor>, RegExp][] = [];
    const misShaped = new Map(state);
    misShaped.set(KEY_A, Tensor.wrap(new Float32Array(4 * 31), [4, 31], { track: false }));
    cases.push([
      'mis-shaped',
      misShaped,
      new RegExp(`'${KEY_A.replace(/\./g, '\\.')}' has shape \\[4,31\\], expected \\[4,32\\]`),
    ]);
    const missing = new Map(state);
    missing.delete(KEY_B);
    cases.push([
      'missing',
      missing,
      /missing tensor\(s\) base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight/,
    ]);
    const unexpected = new Map(state);
    unexpected.set(
      'base_model.model.lm_head.lora_A.weight',
      Tensor.wrap(new Float32Array(4), [1, 4], { track: false }),
    );
    cases.push([
      'unexpected',
      unexpected,
      /unexpected tensor\(s\) base_model\.model\.lm_head\.lora_A\.weight/,
    ]);
    for (const [what, tensors, pattern] of cases) {
      const bad = freshDir();
      mkdirSync(bad);
      writeFileSync(join(bad, ADAPTER_CONFIG_FILE), readFileSync(join(dir, ADAPTER_CONFIG_FILE)));
      writeSafetensors(join(bad, ADAPTER_WEIGHTS_FILE), tensors);
      const model = tinyLlama();
      const logits = logitsOf(model, IDS);
      const flags = model.parameters().map((p) => p.requiresGrad);
      assert.throws(
        () => loadAdapter(model, bad),
        (e: Error) =>
          e instanceof TensorMismatchError &&
          e.message.includes(join(bad, ADAPTER_WEIGHTS_FILE)) &&
          pattern.test(e.message) &&
          /nothing was loaded/.test(e.message),
        what,
      );
      assertUntouched(model, logits, flags);
    }
  });

  it('refuses configs it cannot honour, naming the file and field; nothing is applied', () => {
    const { dir } = savedAdapter();
    const config = JSON.parse(readFileSync(join(dir, ADAPTER_CONFIG_FILE), 'utf8'));
    const cases: [Record<string, unknown>, RegExp, new (...a: never[]) => Error][] = [
      [{ use_dora: 'yes' }, /'use_dora' must be true or false/, FormatError],
      [{ bias: 'all' }, /'bias' is "all"/, FormatError],
      // lora_bias is honoured: the saved adapter then lacks the lora_B.bias vectors
      [{ lora_bias: true }, /missing tensor\(s\) base_model\.model\..*lora_B\.bias/, TensorMismatchError],
      // rank_pattern is honoured: the saved q_proj matrices then have the wrong rank
      [
        { rank_pattern: { q_proj: 2 } },
        /q_proj\.lora_A\.weight' has shape .* expected \[2,32\]/,
        TensorMismatchError,
      ],
      [{ init_lora_weights: 'loftq' }, /'init_lora_weights' is "loftq": supported are/, FormatError],
      [
        { peft_type: 'IA3' },
        /peft_type 'IA3' is not supported \(supported: [A-Z0-9_, ]*\bFULL\b[A-Z0-9_, ]*\bLORA\b[A-Z0-9_, ]*\)/,
        FormatError,
      ],
      [{ peft_type: 7 }, /'peft_type' must be a string/, FormatError],
      [{ r: 0 }, /'r' must be a positive integer/, FormatError],
      [{ target_modules: ['query'] }, /matched no module/, ConfigError],
    ];
    for (const [change, pattern, type] of cases) {
      const bad = freshDir();
      mkdirSync(bad);
      writeFileSync(join(bad, ADAPTER_CONFIG_FILE), JSON.stringify({ ...config, ...change }));
      writeFileSync(join(bad, ADAPTER_WEIGHTS_FILE), readFileSync(join(dir, ADAPTER_WEIGHTS_FILE)));
      const model = tinyLlama();
      const logits = logitsOf(model, IDS);
      const flags = model.parameters().map((p) => p.requiresGrad);
      assert.throws(
        () => loadAdapter(model, bad),
        (e: Error) => e instanceof type && pattern.test(e.message),
        JSON.stringify(change),
      );
      assertUntouched(model, logits, flags);
    }
    const modelDir = freshDir();
    mkdirSync(modelDir);
    writeFileSync(join(modelDir, 'config.json'), '{}');
    assert.throws(() => loadAdapter(tinyLlama(), modelDir), /model directory/);
    const binDir = freshDir();
    mkdirSync(binDir);
    writeFileSync(join(binDir, ADAPTER_CONFIG_FILE), JSON.stringify(config));
    writeFileSync(join(binDir, 'adapter_model.bin'), '');
    assert.throws(
      () => loadAdapter(tinyLlama(), binDir),
      /adapter_model\.bin \(PyTorch pickle\) is not read/,
    );
  });
});

import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, TensorMismatchError } from '../../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../../src/io/index.ts';
import { PORT_RECORD_FILE, planPort, portAdapter } from '../../../../src/merge/port.ts';
import { type LlamaForCausalLM, loadModel } from '../../../../src/models/index.ts';
import { loadAdapter } from '../../../../src/peft/index.ts';
import { fromArray } from '../../../../src/tensor/index.ts';
import { cleanup, loraAdapter, nothingIn, tempDir, tensorsOf, tinyModel, tunedVariant } from './helpers.ts';

after(cleanup);

describe('PortLLM: port a LoRA adapter to an evolved base', () => {
  const root = tempDir();
  const oldBase = tinyModel(join(root, 'old'));
  const newBase = tunedVariant(oldBase, join(root, 'new'), 4, 0.05);
  const adapter = loraAdapter(oldBase, join(root, 'adapter'), 6);

  it('writes W_new + (alpha / r) B A for every target and leaves the rest untouched', () => {
    const out = join(root, 'ported');
    const record = portAdapter({ adapter, toBase: newBase, out });
    assert.equal(record.scaling, 2);
    assert.equal(record.from_base, oldBase, "the adapter's base_model_name_or_path was used for the check");
    assert.deepEqual(record.targets, [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    const before = tensorsOf(newBase);
    const after = tensorsOf(out);
    const lora = tensorsOf(join(adapter, 'adapter_model.safetensors'), true);
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    for (const [name, w] of before) {
      const got = after.get(name)!;
      const module = name.replace(/\.weight$/, '');
      if (!record.targets.includes(module)) {
        assert.deepEqual(got, w, `${name} untouched`);
        continue;
      }
      const a = lora.get(`base_model.model.${module}.lora_A.weight`)!;
      const b = lora.get(`base_model.model.${module}.lora_B.weight`)!;
      const [out, inF, r] = [b.length / 4, a.length / 4, 4];
      for (let i = 0; i < out; i++) {
        for (let j = 0; j < inF; j++) {
          let ba = 0;
          for (let k = 0; k < r; k++) ba += b[i * r + k]! * a[k * inF + j]!;
          assert.ok(Math.abs(got[i * inF + j]! - (w[i * inF + j]! + 2 * ba)) < 1e-6, `${name}[${i}, ${j}]`);
        }
      }
    }
    const saved = JSON.parse(readFileSync(join(out, PORT_RECORD_FILE), 'utf8'));
    assert.deepEqual(saved, record);
    assert.ok(existsSync(join(out, 'tokenizer.json')));
  });

  it('matches loading the new base, applying the adapter and merging it', () => {
    const out = join(root, 'ported2');
    portAdapter({ adapter, toBase: newBase, out });
    const loaded = loadModel(newBase);
    const merged = loadAdapter(loaded.model, adapter).mergeAndUnload() as LlamaForCausalLM;
    const ported = loadModel(out).model;
    const expected = new Map(merged.namedParameters());
    for (const [name, p] of ported.namedParameters()) {
      const x = p.data as Float32Array;
      const y = expected.get(name)!.data as Float32Array;
      for (let i = 0; i < x.length; i++) assert.ok(Math.abs(x[i]! - y[i]!) < 1e-6, name);
    }
  });

  it('uses alpha / sqrt(r) for rsLoRA', () => {
    const rs = loraAdapter(oldBase, join(root, 'rs'), 7, {
      r: 4,
      loraAlpha: 8,
      useRslora: true,
      targetModules: ['o_proj'],
    });
    const plan = planPort({ adapter: rs, toBase: newBase });
    assert.equal(plan.scaling, 4);
    assert.equal(plan.targets.length, 2);
  });

  it('a different architecture or mis-shaped targets fail before writing, listing every offending tensor', () => {
    const wide = tinyModel(join(root, 'wide'), { hidden: 48 });
    const out = join(root, 'bad');
    assert.throws(() => portAdapter({ adapter, toBase: wide, out }), ConfigError);
    assert.ok(nothingIn(out));
    // without an old base to compare, the shapes still catch it: all four targets are listed
    const anonymous = join(root, 'anonymous');
    cpSync(adapter, anonymous, { recursive: true });
    const configPath = join(anonymous, 'adapter_config.json');
    writeFileSync(
      configPath,
      JSON.stringify({ ...JSON.parse(readFileSync(configPath, 'utf8')), base_model_name_or_path: null }),
    );
    assert.throws(
      () => portAdapter({ adapter: anonymous, toBase: wide, out: join(root, 'bad2') }),
      (e: unknown) =>
        e instanceof TensorMismatchError && /4 problems/.test(e.message) && /\[48,48\]/.test(e.message),
    );
    assert.ok(nothingIn(join(root, 'bad2')));
    const orphan = loraAdapter(oldBase, join(root, 'orphan'), 8);
    const reader = openSafetensors(join(orphan, 'adapter_model.safetensors'));
    const tensors = new Map(reader.names().map((n) => [n, reader.read(n)]));
    reader.close();
    tensors.set(
      'base_model.model.model.layers.7.self_attn.q_proj.lora_A.weight',
      fromArray(new Float32Array(4 * 32), [4, 32]),
    );
    tensors.set(
      'base_model.model.model.layers.7.self_attn.q_proj.lora_B.weight',
      fromArray(new Float32Array(32 * 4), [32, 4]),
    );
    tensors.set(
      'base_model.model.model.layers.0.mlp.up_proj.lora_A.weight',
      fromArray(new Float32Array(4 * 32), [4, 32]),
    );
    tensors.set(
      'base_model.model.model.layers.0.mlp.up_proj.lora_B.weight',
      fromArray(new Float32Array(32 * 4), [32, 4]),
    );
    writeSafetensors(join(orphan, 'adapter_model.safetensors'), tensors);
    assert.throws(
      () => portAdapter({ adapter: orphan, toBase: newBase, out: join(root, 'bad3') }),
      (e: unknown) =>
        e instanceof TensorMismatchError &&
        /2 problems/.test(e.message) &&
        /'model\.layers\.7\.self_attn\.q_proj\.weight' (\(adapted by the adapter\) )?is missing/.test(
          e.message,
        ) &&
        /'model\.layers\.0\.mlp\.up_proj\.weight' is \[64,32\]/.test(e.message),
    );
    assert.ok(nothingIn(join(root, 'bad3')));
  });
});

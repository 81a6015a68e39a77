/**
 * GGUF LoRA adapter export (io/gguf/lora.ts) read back with @huggingface/gguf: llama.cpp's adapter
 * metadata and `<base>.lora_a` / `.lora_b` tensors; and llama.cpp's adapter math on the files
 * themselves — base GGUF + (adapter.lora.alpha / r) * lora_b @ lora_a equals the GGUF of the merged
 * model, q/k included (only B permuted), for LoRA and rsLoRA, on Llama and on GPT-2's Conv1D.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { exportLoraGguf, exportModelGguf, ggufLoraAlpha } from '../../../src/io/index.ts';
import { type CausalLM, createModel, gpt2ConfigJson, llamaConfigJson } from '../../../src/models/index.ts';
import { applyLora } from '../../../src/peft/index.ts';
import type { Tensor } from '../../../src/tensor/index.ts';
import { randomizeLora } from '../peft/helpers.ts';
import { asF32, byteLevelTokenizer, modelDir, readGguf } from './gguf-helpers.ts';
import { cleanup, tempDir } from './helpers.ts';

after(cleanup);

/** A 2-layer tied llama (hidden 32, 4 heads, 2 kv heads) whose vocabulary holds a byte-level tokenizer. */
function tinyLlama(): CausalLM {
  const config = llamaConfigJson({
    vocabSize: 262,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    tieWordEmbeddings: true,
  });
  return createModel(config, { seed: 7 });
}

function hubConfig(model: CausalLM) {
  return { ...model.config.raw, tie_word_embeddings: model.config.tieWordEmbeddings };
}

function modelGguf(model: CausalLM, dir: string): string {
  const path = join(tempDir(), 'model.gguf');
  exportModelGguf(path, new Map<string, Tensor>(model.namedParameters()), hubConfig(model), {
    tokenizerDir: dir,
  });
  return path;
}

/** Export base, adapter and merged GGUFs of `model` with a random LoRA on `targets`. */
async function roundTrip(model: CausalLM, targets: string[], useRslora: boolean, r = 4, loraAlpha = 8) {
  const dir = modelDir(model, byteLevelTokenizer(model.config.vocabSize));
  const base = await readGguf(modelGguf(model, dir));
  const adapter = applyLora(model, { r, loraAlpha, targetModules: targets, useRslora });
  randomizeLora(model, 5, 0.2);
  const baseShapes = new Map<string, readonly number[]>(
    model.namedParameters().map(([n, p]) => [n, p.shape]),
  );
  const adapterPath = join(tempDir(), 'adapter.gguf');
  const summary = exportLoraGguf(adapterPath, {
    state: adapter.state(),
    r,
    loraAlpha,
    useRslora,
    config: hubConfig(model),
    baseShapes,
    name: 'tiny-lora',
  });
  const lora = await readGguf(adapterPath);
  const merged = await readGguf(modelGguf(adapter.mergeAndUnload() as CausalLM, dir));
  return { base, lora, merged, summary, scaling: adapter.scaling };
}

/** Check merged = base + alpha / r * b @ a for the GGUF tensor `name` (ne [in, out]). */
function assertLlamaCppMath(files: Awaited<ReturnType<typeof roundTrip>>, name: string, r: number) {
  const { base, lora, merged } = files;
  const [inDim, outDim] = base.tensors.get(name)!.shape as [number, number];
  const a = lora.tensors.get(`${name}.lora_a`)!;
  const b = lora.tensors.get(`${name}.lora_b`)!;
  assert.deepEqual(a.shape, [inDim, r], `${name}.lora_a ne`);
  assert.deepEqual(b.shape, [r, outDim], `${name}.lora_b ne`);
  const A = asF32(a.bytes(r * inDim * 4)); // row-major [r, in]
  const B = asF32(b.bytes(outDim * r * 4)); // row-major [out, r]
  const W = asF32(base.tensors.get(name)!.bytes(inDim * outDim * 4));
  const M = asF32(merged.tensors.get(name)!.bytes(inDim * outDim * 4));
  const scale = (lora.metadata['adapter.lora.alpha'] as number) / r; // llama-adapter.cpp: alpha / rank
  let changed = 0;
  for (let o = 0; o < outDim; o++)
    for (let i = 0; i < inDim; i++) {
      let delta = 0;
      for (let k = 0; k < r; k++) delta += B[o * r + k]! * A[k * inDim + i]!;
      const want = W[o * inDim + i]! + scale * delta;
      assert.ok(
        Math.abs(M[o * inDim + i]! - want) <= 1e-5,
        `${name}[${o}, ${i}]: ${M[o * inDim + i]} vs ${want}`,
      );
      if (Math.abs(delta) > 1e-4) changed++;
    }
  assert.ok(changed > 0, `${name}: the update is not zero`);
}

describe('GGUF LoRA adapter export', () => {
  test('llama: adapter metadata, names, and llama.cpp math against the merged model (q/k: B permuted)', async () => {
    const files = await roundTrip(tinyLlama(), ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'down_proj'], false);
    const m = files.lora.metadata;
    assert.equal(m['general.architecture'], 'llama');
    assert.equal(m['general.type'], 'adapter');
    assert.equal(m['adapter.type'], 'lora');
    assert.equal(m['adapter.lora.alpha'], 8);
    assert.equal(m['tokenizer.ggml.tokens'], undefined);
    const names = [...files.lora.tensors.keys()].sort();
    assert.equal(names.length, 2 * 5 * 2);
    assert.ok(names.includes('blk.0.attn_q.weight.lora_a'));
    assert.ok(names.includes('blk.1.ffn_down.weight.lora_b'));
    for (const [, info] of files.lora.tensors) assert.equal(info.dtype, 0);
    for (const name of ['attn_q', 'attn_k', 'attn_v', 'attn_output', 'ffn_down'])
      assertLlamaCppMath(files, `blk.1.${name}.weight`, 4);
  });

  test('rsLoRA is expressed through alpha: alpha * sqrt(r), so that alpha / r is the rsLoRA scaling', async () => {
    assert.equal(ggufLoraAlpha(8, 16, true), 32);
    assert.equal(ggufLoraAlpha(8, 16, false), 8);
    const files = await roundTrip(tinyLlama(), ['q_proj', 'v_proj'], true, 4, 8);
    assert.equal(files.lora.metadata['adapter.lora.alpha'], 16);
    assert.ok(Math.abs(16 / 4 - files.scaling) < 1e-12);
    assertLlamaCppMath(files, 'blk.0.attn_q.weight', 4);
  });

  test('gpt2: the Conv1D c_attn adapter keeps PEFT orientation, matching the transposed attn_qkv', async () => {
    const model = createModel(gpt2ConfigJson({ vocabSize: 262, hiddenSize: 32, numLayers: 2, numHeads: 4 }), {
      seed: 3,
    });
    const files = await roundTrip(model, ['c_attn', 'c_fc'], false);
    assert.equal(files.lora.metadata['general.architecture'], 'gpt2');
    assertLlamaCppMath(files, 'blk.0.attn_qkv.weight', 4);
    assertLlamaCppMath(files, 'blk.1.ffn_up.weight', 4);
  });

  test('refuses a non-LoRA tensor, a lone matrix, a shape mismatch and a target with no GGUF tensor', () => {
    const model = tinyLlama();
    const adapter = applyLora(model, { r: 4, targetModules: ['q_proj'] });
    const shapes = new Map<string, readonly number[]>(model.namedParameters().map(([n, p]) => [n, p.shape]));
    const base = {
      r: 4,
      loraAlpha: 8,
      useRslora: false,
      config: hubConfig(model),
      baseShapes: shapes,
      name: 'x',
    };
    const path = join(tempDir(), 'a.gguf');
    const state = adapter.state();
    const [aKey, a] = [...state].find(([k]) => k.endsWith('lora_A.weight'))!;
    assert.throws(
      () => exportLoraGguf(path, { ...base, state: new Map([['base_model.model.x.weight', a]]) }),
      /not a LoRA matrix/,
    );
    assert.throws(() => exportLoraGguf(path, { ...base, state: new Map([[aKey, a]]) }), /has lora_A only/);
    assert.throws(
      () => exportLoraGguf(path, { ...base, state, r: 2 }),
      /lora_A is \[4,32\], expected \[2,32\]/,
    );
    const lm = new Map(state);
    lm.set('base_model.model.lm_head.lora_A.weight', a);
    lm.set('base_model.model.lm_head.lora_B.weight', a);
    assert.throws(
      () => exportLoraGguf(path, { ...base, state: lm }),
      /targets 'lm_head', which has no tensor in the base GGUF/,
    );
  });
});

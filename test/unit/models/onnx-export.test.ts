/**
 * ONNX export: onnxruntime-node runs the exported decoder and gives Attune's logits (within 1e-4)
 * without and with the KV cache, on left-padded batches, for llama (tied, llama3 rope scaling) and
 * qwen2 (q/k/v bias, untied head) shapes and the real TinyStories checkpoint.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { ConfigError } from '../../../src/errors.ts';
import { decodeOnnxModel } from '../../../src/io/index.ts';
import {
  type CausalLM,
  createModel,
  exportOnnx,
  gpt2ConfigJson,
  llamaConfigJson,
  loadModel,
  ONNX_MODEL_FILE,
} from '../../../src/models/index.ts';
import { fromArray, noGrad, Rng } from '../../../src/tensor/index.ts';
import { testModelDir } from '../../helpers/models-env.ts';
import { tempDir } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-onnx-');
after(() => rmSync(root, { recursive: true, force: true }));

/** Attune's logits [T, V] of one unpadded sequence. */
function attuneLogits(model: CausalLM, ids: number[]): Float32Array {
  model.eval(); // no dropout (GPT-2's pdrop)
  return noGrad(() => {
    const logits = model.logits(model.forwardHidden(fromArray(ids, [1, ids.length], { dtype: 'i32' })));
    return Float32Array.from(logits.data as Float32Array);
  });
}

const i64 = (values: number[], dims: number[]) =>
  new ort.Tensor('int64', BigInt64Array.from(values.map((v) => BigInt(v))), dims);

/** Feeds for a left-padded batch (position ids as transformers.js makes them: cumsum(mask) - 1). */
function feeds(
  model: CausalLM,
  rows: number[][],
  past: Record<string, ort.Tensor> | null,
  pastLength: number,
  pastMask: number[][] | null,
) {
  const { numLayers, numKvHeads, headDim } = model.config;
  const T = Math.max(...rows.map((r) => r.length));
  const ids: number[] = [];
  const mask: number[] = [];
  const positions: number[] = [];
  rows.forEach((r, b) => {
    const pad = T - r.length;
    const m = [...(pastMask?.[b] ?? []), ...Array(pad).fill(0), ...r.map(() => 1)];
    mask.push(...m);
    ids.push(...Array(pad).fill(0), ...r);
    let seen = (pastMask?.[b] ?? []).reduce((s, v) => s + v, 0);
    for (let t = 0; t < T; t++) positions.push(t < pad ? 1 : seen++);
  });
  const f: Record<string, ort.Tensor> = {
    input_ids: i64(ids, [rows.length, T]),
    attention_mask: i64(mask, [rows.length, pastLength + T]),
    position_ids: i64(positions, [rows.length, T]),
  };
  for (let i = 0; i < numLayers; i++)
    for (const kind of ['key', 'value']) {
      f[`past_key_values.${i}.${kind}`] =
        past?.[`present.${i}.${kind}`] ??
        new ort.Tensor('float32', new Float32Array(0), [rows.length, numKvHeads, 0, headDim]);
    }
  return f;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

async function checkModel(
  model: CausalLM,
  name: string,
  options: { externalData?: boolean } = {},
): Promise<void> {
  const out = join(root, name);
  const summary = exportOnnx(model, out, options);
  if (options.externalData) {
    assert.deepEqual(summary.externalData, [join(out, 'onnx', 'model.onnx_data')]);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(config['transformers.js_config'].use_external_data_format, 1);
    assert.ok(statSync(summary.modelFile).size < 100_000, 'the weights are outside model.onnx');
  } else assert.deepEqual(summary.externalData, []);
  assert.equal(summary.modelFile, join(out, ONNX_MODEL_FILE));
  const session = await ort.InferenceSession.create(summary.modelFile);
  const L = model.config.numLayers;
  assert.deepEqual(session.inputNames, [
    'input_ids',
    'attention_mask',
    'position_ids',
    ...Array.from({ length: L }, (_, i) => [`past_key_values.${i}.key`, `past_key_values.${i}.value`]).flat(),
  ]);
  assert.deepEqual(session.outputNames, [
    ...Array.from({ length: L }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat(),
    'logits',
  ]);
  const V = model.config.vocabSize;
  const rng = new Rng(7);
  const a = Array.from({ length: 7 }, () => Math.floor(rng.uniform() * V));
  const b = Array.from({ length: 4 }, () => Math.floor(rng.uniform() * V));
  const refA = attuneLogits(model, a);
  const refB = attuneLogits(model, b);
  // no cache, batch of two with left padding: the real positions give each sequence's logits
  const full = await session.run(feeds(model, [a, b], null, 0, null));
  const logits = full.logits!.data as Float32Array;
  assert.deepEqual(full.logits!.dims, [2, 7, V]);
  assert.ok(maxDiff(logits.subarray(0, 7 * V), refA) < 1e-4, `${name}: row a`);
  assert.ok(maxDiff(logits.subarray((7 + 3) * V, 14 * V), refB) < 1e-4, `${name}: row b (left-padded)`);
  // with the cache: a[0..5) then a[5..7) fed with the presents of the first call
  const first = await session.run(feeds(model, [a.slice(0, 5)], null, 0, null));
  assert.deepEqual(first[`present.0.key`]!.dims, [1, model.config.numKvHeads, 5, model.config.headDim]);
  const second = await session.run(feeds(model, [a.slice(5)], first, 5, [[1, 1, 1, 1, 1]]));
  assert.deepEqual(second[`present.${L - 1}.value`]!.dims.slice(2), [7, model.config.headDim]);
  assert.ok(maxDiff(second.logits!.data as Float32Array, refA.subarray(5 * V)) < 1e-4, `${name}: cached`);
}

describe('export --format onnx', () => {
  it("llama (tied embeddings, GQA, llama3 rope scaling): onnxruntime gives Attune's logits", async () => {
    const config = {
      ...llamaConfigJson({
        vocabSize: 97,
        hiddenSize: 32,
        intermediateSize: 48,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
      }),
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 4,
      },
      initializer_range: 0.3,
    };
    await checkModel(createModel(config, { seed: 3 }), 'llama');
  });

  it('with the weights in ONNX external data (model.onnx_data), as for models over 1.5 GiB', async () => {
    const config = {
      ...llamaConfigJson({
        vocabSize: 97,
        hiddenSize: 32,
        intermediateSize: 48,
        numLayers: 2,
        numHeads: 4,
        numKvHeads: 2,
      }),
      initializer_range: 0.3,
    };
    await checkModel(createModel(config, { seed: 8 }), 'llama-external', { externalData: true });
  });

  it("qwen2 (q/k/v bias, untied LM head): onnxruntime gives Attune's logits", async () => {
    const config = {
      ...llamaConfigJson({
        vocabSize: 61,
        hiddenSize: 32,
        intermediateSize: 40,
        numLayers: 1,
        numHeads: 2,
        numKvHeads: 1,
        modelType: 'qwen2',
        tieWordEmbeddings: false,
      }),
      initializer_range: 0.3,
    };
    const model = createModel(config, { seed: 4 });
    const rng = new Rng(9);
    const biases = model.namedParameters().filter(([n]) => n.endsWith('.bias'));
    assert.equal(biases.length, 3, 'q, k and v carry a bias');
    for (const [, p] of biases) {
      const d = p.data as Float32Array;
      for (let i = 0; i < d.length; i++) d[i] = rng.uniform() - 0.5;
    }
    await checkModel(model, 'qwen2');
  });

  it('the real TinyStories checkpoint, with config and tokenizer beside onnx/model.onnx', async (t) => {
    const m = testModelDir('tinystories-656k');
    if (m.dir === null) return t.skip(m.skip);
    const loaded = loadModel(m.dir);
    await checkModel(loaded.model, 'tinystories');
    const out = join(root, 'tinystories-folder');
    exportOnnx(loaded.model, out, { tokenizerFrom: m.dir });
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', ONNX_MODEL_FILE])
      assert.ok(existsSync(join(out, f)), f);
    const decoded = decodeOnnxModel(readFileSync(join(out, ONNX_MODEL_FILE)));
    const opsets = decoded.opsetImport as { domain?: string; version: number }[];
    assert.deepEqual(
      opsets.map((o) => [o.domain ?? '', o.version]),
      [['', 17]],
    );
    assert.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).model_type, 'llama');
  });

  it("gpt2 (learned positions, LayerNorm, fused c_attn, gelu_new): onnxruntime gives Attune's logits", async () => {
    const config = {
      ...gpt2ConfigJson({ vocabSize: 50, hiddenSize: 16, numLayers: 2, numHeads: 2, maxPositions: 32 }),
      initializer_range: 0.3,
    };
    const model = createModel(config, { seed: 5 });
    const rng = new Rng(11);
    for (const [n, p] of model.namedParameters())
      if (n.endsWith('.bias')) {
        const d = p.data as Float32Array;
        for (let i = 0; i < d.length; i++) d[i] = rng.uniform() - 0.5;
      }
    await checkModel(model, 'gpt2');
  });

  it('the real GPT-2 checkpoint (tiny-gpt2-random)', async (t) => {
    const m = testModelDir('tiny-gpt2-random');
    if (m.dir === null) return t.skip(m.skip);
    await checkModel(loadModel(m.dir).model, 'tiny-gpt2');
  });

  it('refuses bf16 weights before writing anything, and keeps what was there', () => {
    const out = join(root, 'kept');
    mkdirSync(out);
    writeFileSync(join(out, 'marker'), 'old');
    const bf16 = createModel(
      llamaConfigJson({ vocabSize: 50, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2 }),
      { seed: 1, dtype: 'bf16' },
    );
    assert.throws(
      () => exportOnnx(bf16, out),
      (e: unknown) => e instanceof ConfigError && /is bf16; load the model in f32/.test(String(e)),
    );
    assert.equal(readFileSync(join(out, 'marker'), 'utf8'), 'old');
  });
});

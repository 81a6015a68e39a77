/**
 * `attune export`: one scheme over formats — safetensors (the adapter merged; `--merge` is its
 * alias), peft (the adapter alone), gguf (model, merged model or LoRA adapter; --out is a file) —
 * onnx (a transformers.js folder) — and the refusals (bad combinations, an existing --out) before
 * anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { gguf } from '@huggingface/gguf';
import { Tokenizer } from '../../../../src/io/index.ts';
import { createModel, llamaConfigJson, loadModel, saveModel } from '../../../../src/models/index.ts';
import { applyLora, applyTuner } from '../../../../src/peft/index.ts';
import { byteLevelTokenizer } from '../../io/gguf-helpers.ts';
import { cleanup, tempDir } from '../../io/helpers.ts';
import { logitsOf, maxAbsDiff, randomizeLora } from '../../peft/helpers.ts';
import { attune } from './helpers.ts';

after(cleanup);

const root = tempDir();
const modelPath = join(root, 'model');
const adapterPath = join(root, 'adapter');
{
  const model = createModel(
    llamaConfigJson({
      vocabSize: 262,
      hiddenSize: 32,
      intermediateSize: 64,
      numLayers: 2,
      numHeads: 4,
      numKvHeads: 2,
    }),
    { seed: 1 },
  );
  const tok = byteLevelTokenizer(262);
  saveModel(model, modelPath, { tokenizer: Tokenizer.fromObjects(tok.json, tok.config) });
  const adapter = applyLora(model, { r: 4, loraAlpha: 8, targetModules: ['q_proj', 'v_proj'] });
  randomizeLora(model, 2, 0.1);
  adapter.save(adapterPath);
}

async function readBack(path: string) {
  const parsed = await gguf(path, { allowLocalFile: true });
  return { metadata: parsed.metadata as unknown as Record<string, unknown>, tensorInfos: parsed.tensorInfos };
}

describe('attune export', () => {
  it('--format onnx writes the transformers.js folder, the adapter merged; an existing --out is kept', async () => {
    const out = join(tempDir(), 'web');
    const r = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--format',
      'onnx',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.format, 'onnx');
    assert.equal(r.json!.merged, true);
    assert.equal(r.json!.opset, 17);
    for (const f of ['config.json', 'tokenizer.json', join('onnx', 'model.onnx')])
      assert.ok(existsSync(join(out, f)), f);
    const again = await attune(['export', '--model', modelPath, '--format', 'onnx', '--out', out]);
    assert.equal(again.status, 2);
    assert.ok(again.stderr.includes('exists (pass --overwrite'), again.stderr);
  });

  it('refuses bad combinations before loading anything', async () => {
    const absent = join(root, 'absent');
    const cases: [string[], string][] = [
      [[], 'pass --format (safetensors, peft, gguf, onnx) or --merge'],
      [['--format', 'onnx', '--dtype', 'f16'], '--dtype applies to --format gguf only'],
      [['--merge'], '--merge needs --adapter'],
      [['--format', 'peft'], '--format peft writes an adapter'],
      [['--format', 'safetensors', '--dtype', 'q8_0'], '--dtype applies to --format gguf only'],
    ];
    for (const [flags, message] of cases) {
      const r = await attune(['export', '--model', absent, '--out', join(root, 'never'), ...flags]);
      assert.equal(r.status, 2, flags.join(' '));
      assert.ok(r.stderr.includes(message), r.stderr);
    }
    assert.ok(!existsSync(join(root, 'never')));
  });

  it('--format gguf writes one llama.cpp file; an existing --out is kept unless --overwrite', async () => {
    const out = join(tempDir(), 'model.gguf');
    writeFileSync(out, 'keep');
    const refused = await attune(['export', '--model', modelPath, '--format', 'gguf', '--out', out]);
    assert.equal(refused.status, 2);
    assert.equal(readFileSync(out, 'utf8'), 'keep');
    const r = await attune([
      'export',
      '--model',
      modelPath,
      '--format',
      'gguf',
      '--dtype',
      'q8_0',
      '--out',
      out,
      '--overwrite',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.arch, 'llama');
    assert.equal(r.json!.dtype, 'q8_0');
    const file = await readBack(out);
    assert.equal(file.metadata['general.architecture'], 'llama');
    assert.equal(file.metadata['general.file_type'], 7);
    assert.equal(file.tensorInfos.find((t) => t.name === 'blk.0.attn_q.weight')!.dtype, 8);
    const dirOut = await attune([
      'export',
      '--model',
      modelPath,
      '--format',
      'gguf',
      '--out',
      root,
      '--overwrite',
    ]);
    assert.equal(dirOut.status, 2);
    assert.ok(dirOut.stderr.includes('is a directory; --format gguf writes one file'));
  });

  it('--format gguf --adapter without --merge writes the LoRA adapter GGUF; with --merge the merged model', async () => {
    const adapterOut = join(tempDir(), 'adapter.gguf');
    const r = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--format',
      'gguf',
      '--out',
      adapterOut,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const lora = await readBack(adapterOut);
    assert.equal(lora.metadata['general.type'], 'adapter');
    assert.equal(lora.metadata['adapter.type'], 'lora');
    assert.equal(lora.metadata['adapter.lora.alpha'], 8);
    assert.deepEqual(lora.tensorInfos.map((t) => t.name).sort(), [
      'blk.0.attn_q.weight.lora_a',
      'blk.0.attn_q.weight.lora_b',
      'blk.0.attn_v.weight.lora_a',
      'blk.0.attn_v.weight.lora_b',
      'blk.1.attn_q.weight.lora_a',
      'blk.1.attn_q.weight.lora_b',
      'blk.1.attn_v.weight.lora_a',
      'blk.1.attn_v.weight.lora_b',
    ]);
    const mergedOut = join(tempDir(), 'merged.gguf');
    const m = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--merge',
      '--format',
      'gguf',
      '--out',
      mergedOut,
      '--json',
    ]);
    assert.equal(m.status, 0, m.stderr);
    assert.equal(m.json!.merged, true);
    assert.equal((await readBack(mergedOut)).metadata['general.type'], 'model');
  });

  it('an embedding LoRA (tied table, ensure_weight_tying) merges to a plain model; as a GGUF LoRA file it is refused', async () => {
    const model = loadModel(modelPath).model;
    const embDir = join(tempDir(), 'emb');
    const adapter = applyLora(model, {
      r: 2,
      targetModules: ['q_proj', 'embed_tokens'],
      ensureWeightTying: true,
    });
    for (const p of adapter.trainableParameters()) p.fillWith((i) => 0.01 * ((i % 7) - 3));
    adapter.save(embDir);
    const refused = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      embDir,
      '--format',
      'gguf',
      '--out',
      join(tempDir(), 'e.gguf'),
    ]);
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /adapts an embedding table \(pass --merge/);
    const out = join(tempDir(), 'merged-emb');
    const r = await attune(['export', '--model', modelPath, '--adapter', embDir, '--merge', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    const merged = loadModel(out).model;
    const want = adapter.model as typeof merged;
    const ids = [1, 5, 9, 77, 3];
    assert.ok(maxAbsDiff(logitsOf(merged, ids), logitsOf(want, ids)) < 1e-4);
  });

  it('a non-LoRA adapter cannot be a GGUF adapter file: the error says to --merge it', async () => {
    const model = loadModel(modelPath).model;
    const fullDir = join(tempDir(), 'full');
    applyTuner(model, 'full').save(fullDir);
    const out = join(tempDir(), 'full.gguf');
    const r = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      fullDir,
      '--format',
      'gguf',
      '--out',
      out,
    ]);
    assert.equal(r.status, 2);
    assert.ok(r.stderr.includes("is a 'full' adapter (pass --merge to fold it into a GGUF model)"), r.stderr);
    assert.ok(!existsSync(out));
  });

  it('--merge alone is --format safetensors with the adapter folded in; --format peft copies the adapter', async () => {
    const merged = join(tempDir(), 'merged');
    const viaAlias = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--merge',
      '--out',
      merged,
    ]);
    assert.equal(viaAlias.status, 0, viaAlias.stderr);
    const explicit = join(tempDir(), 'merged2');
    const viaFormat = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--format',
      'safetensors',
      '--out',
      explicit,
    ]);
    assert.equal(viaFormat.status, 0, viaFormat.stderr);
    const a = loadModel(merged).model.namedParameters();
    const b = new Map(loadModel(explicit).model.namedParameters());
    const base = new Map(loadModel(modelPath).model.namedParameters());
    const q = 'model.layers.0.self_attn.q_proj.weight';
    for (const [name, p] of a) assert.deepEqual(p.data, b.get(name)!.data, name);
    assert.notDeepEqual(new Map(a).get(q)!.data, base.get(q)!.data);
    const peft = join(tempDir(), 'peft');
    const copied = await attune([
      'export',
      '--model',
      modelPath,
      '--adapter',
      adapterPath,
      '--format',
      'peft',
      '--out',
      peft,
    ]);
    assert.equal(copied.status, 0, copied.stderr);
    assert.ok(existsSync(join(peft, 'adapter_config.json')));
    assert.ok(existsSync(join(peft, 'adapter_model.safetensors')));
  });
});

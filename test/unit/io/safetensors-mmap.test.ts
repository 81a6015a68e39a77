import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { mapFileForReading } from '../../../src/backend/index.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/safetensors.ts';
import {
  type CausalLM,
  createModel,
  llamaConfigJson,
  loadModel,
  saveModel,
} from '../../../src/models/index.ts';
import { applyLora } from '../../../src/peft/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { cleanup, rawSafetensors, tempDir, writeRaw } from './helpers.ts';

after(cleanup);

const TINY = {
  vocabSize: 64,
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
};

/** A tiny random llama saved in a fresh folder; returns the folder and its safetensors file. */
function savedTinyModel(): { dir: string; file: string } {
  const dir = tempDir();
  saveModel(createModel(llamaConfigJson(TINY), { seed: 3 }), dir);
  return { dir, file: join(dir, 'model.safetensors') };
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** The model's parameters loaded through the plain read path (ATTUNE_MMAP=0). */
function loadWithoutMapping(dir: string): CausalLM {
  const before = process.env.ATTUNE_MMAP;
  process.env.ATTUNE_MMAP = '0';
  try {
    return loadModel(dir).model;
  } finally {
    if (before === undefined) delete process.env.ATTUNE_MMAP;
    else process.env.ATTUNE_MMAP = before;
  }
}

/**
 * Whether this process maps files (native backend, addon loaded). Without a mapping the tests check
 * the fallback instead: every weight is read into its own buffer, with the same values.
 */
function mappingAvailable(file: string): boolean {
  return mapFileForReading(file) !== null;
}

describe('zero-copy safetensors loading (mmap)', () => {
  it('loads weights equal bit for bit to the read path, as views into one mapping of the file', () => {
    const { dir, file } = savedTinyModel();
    const mapping = mappingAvailable(file);
    const mapped = loadModel(dir).model;
    const read = loadWithoutMapping(dir);
    const readParams = new Map(read.namedParameters());
    const fileBytes = statSync(file).size;
    let views = 0;
    for (const [name, p] of mapped.namedParameters()) {
      const q = readParams.get(name);
      assert.ok(q, `read path lacks '${name}'`);
      assert.deepEqual(bytesOf(p.data), bytesOf(q.data), `'${name}' differs from the read path`);
      if (p.data.buffer.byteLength === fileBytes) views++;
      assert.notEqual(q.data.buffer.byteLength, fileBytes, `'${name}' of the read path is a view`);
    }
    assert.equal(
      views,
      mapping ? mapped.namedParameters().length : 0,
      mapping ? 'every f32 tensor should be a view (no copy)' : 'without a mapping nothing is a view',
    );
    // and the same logits
    const ids = fromArray([1, 5, 9, 2], [1, 4], { dtype: 'i32' });
    const a = mapped.logits(mapped.forwardHidden(ids, {})).floatData();
    const b = read.logits(read.forwardHidden(ids, {})).floatData();
    assert.deepEqual(bytesOf(a), bytesOf(b));
  });

  it('an in-place LoRA merge on a mapped model changes its weights but never the file', () => {
    const { dir, file } = savedTinyModel();
    const mapping = mappingAvailable(file);
    const hashBefore = sha256(file);
    const model = loadModel(dir).model;
    const reference = loadWithoutMapping(dir);
    const q = 'model.layers.0.self_attn.q_proj.weight';
    const weight = new Map(model.namedParameters()).get(q)!;
    const original = new Map(reference.namedParameters()).get(q)!;
    const adapter = applyLora(model, { r: 2, targetModules: ['q_proj', 'v_proj'] });
    for (const [name, p] of model.namedParameters()) if (name.includes('lora_B')) p.fillWith(() => 0.25);
    adapter.merge();
    assert.equal(
      weight.data.buffer.byteLength === statSync(file).size,
      mapping,
      'the weight is a view of the mapping exactly when the backend maps files',
    );
    assert.notDeepEqual(bytesOf(weight.data), bytesOf(original.data), 'the merge changed nothing');
    assert.equal(sha256(file), hashBefore, 'the merge wrote into the checkpoint file');
    // a model loaded afterwards maps the file again and sees the original weights
    const again = new Map(loadModel(dir).model.namedParameters()).get(q)!;
    assert.deepEqual(bytesOf(again.data), bytesOf(original.data));
  });

  it('readMapped falls back (null) for a dtype conversion, a misaligned tensor, or an integer tensor', () => {
    const dir = tempDir();
    const aligned = join(dir, 'aligned.safetensors');
    writeSafetensors(aligned, {
      w: fromArray([1, 2, 3, 4], [2, 2]),
      i: fromArray([7], [1], { dtype: 'i32' }),
    });
    const reader = openSafetensors(aligned);
    if (!mappingAvailable(aligned)) {
      // no mapping on this backend: readMapped always falls back
      assert.equal(reader.readMapped('w'), null);
      reader.close();
      return;
    }
    try {
      const view = reader.readMapped('w');
      assert.ok(view);
      assert.deepEqual([...(view.data as Float32Array)], [1, 2, 3, 4]);
      assert.equal(reader.readMapped('w', { dtype: 'bf16' }), null, 'F32 read as bf16 needs a conversion');
      assert.equal(reader.readMapped('i'), null);
    } finally {
      reader.close();
    }
    // a header padded so that the data starts 2 bytes past a multiple of 4
    const data = new Uint8Array(new Float32Array([1.5]).buffer);
    const header = '{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const padded = header + ' '.repeat((((2 - 8 - header.length) % 4) + 4) % 4);
    const misaligned = writeRaw(dir, 'misaligned.safetensors', rawSafetensors(padded, data));
    assert.notEqual((8 + padded.length) % 4, 0);
    const r2 = openSafetensors(misaligned);
    try {
      assert.equal(r2.readMapped('x'), null);
      assert.deepEqual([...(r2.read('x').data as Float32Array)], [1.5]);
    } finally {
      r2.close();
    }
  });
});

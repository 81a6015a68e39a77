import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TensorMismatchError } from '../../../src/errors.ts';
import {
  openCheckpoint,
  SAFETENSORS_FILE,
  SAFETENSORS_INDEX_FILE,
  shardFileName,
  writeCheckpoint,
} from '../../../src/io/checkpoint.ts';
import { writeJsonAtomic } from '../../../src/io/json.ts';
import { writeSafetensors } from '../../../src/io/safetensors.ts';
import { fromArray, randn, type Tensor } from '../../../src/tensor/index.ts';
import { assertFormatError, cleanup, tempDir } from './helpers.ts';

after(cleanup);

/** Six f32 tensors of 64, 64, 128, 32, 400 and 16 bytes. */
function sampleTensors(): Map<string, Tensor> {
  const sizes: [string, number[]][] = [
    ['model.a.weight', [4, 4]],
    ['model.b.weight', [16]],
    ['model.c.weight', [8, 4]],
    ['model.d.bias', [8]],
    ['model.e.weight', [10, 10]],
    ['model.f.bias', [4]],
  ];
  return new Map(sizes.map(([name, shape], i) => [name, randn(shape, { seed: i + 1 })]));
}

function assertSameTensors(reader: ReturnType<typeof openCheckpoint>, tensors: Map<string, Tensor>): void {
  assert.deepEqual(reader.names(), [...tensors.keys()].sort());
  for (const [name, tensor] of tensors) {
    const back = reader.read(name);
    assert.deepEqual(back.shape, tensor.shape, name);
    assert.deepEqual(back.toArray(), tensor.toArray(), name);
  }
}

describe('checkpoints', () => {
  it('writes one model.safetensors when the data fits', () => {
    const dir = join(tempDir(), 'ckpt');
    const tensors = sampleTensors();
    const written = writeCheckpoint(dir, tensors, { metadata: { format: 'pt', origin: 'test' } });
    assert.deepEqual(written, { files: [SAFETENSORS_FILE], totalSize: 704 });
    assert.deepEqual(readdirSync(dir), [SAFETENSORS_FILE]);
    const reader = openCheckpoint(dir);
    assertSameTensors(reader, tensors);
    assert.deepEqual(reader.metadata(), { format: 'pt', origin: 'test' });
    reader.close();
  });

  it('shards above maxShardBytes, with an index that maps every tensor and gives total_size', () => {
    const dir = tempDir();
    const tensors = sampleTensors();
    const written = writeCheckpoint(dir, tensors, { maxShardBytes: 200 });
    // Sorted order a(64) b(64) | c(128) d(32) | e(400, larger than the limit: alone) | f(16).
    const names = [1, 2, 3, 4].map((i) => shardFileName(i, 4));
    assert.deepEqual(names[0], 'model-00001-of-00004.safetensors');
    assert.deepEqual(written.files, [...names, SAFETENSORS_INDEX_FILE]);
    assert.equal(written.totalSize, 704);
    assert.deepEqual(readdirSync(dir).sort(), [...names, SAFETENSORS_INDEX_FILE].sort());
    const index = JSON.parse(readFileSync(join(dir, SAFETENSORS_INDEX_FILE), 'utf8'));
    assert.deepEqual(index.metadata, { total_size: 704 });
    assert.deepEqual(index.weight_map, {
      'model.a.weight': names[0],
      'model.b.weight': names[0],
      'model.c.weight': names[1],
      'model.d.bias': names[1],
      'model.e.weight': names[2],
      'model.f.bias': names[3],
    });
    const reader = openCheckpoint(dir);
    assertSameTensors(reader, tensors);
    assert.equal(reader.info('model.e.weight').file, join(dir, names[2]!));
    assert.deepEqual(reader.metadata(), { format: 'pt' });
    assert.equal(reader.has('model.f.bias'), true);
    assert.throws(() => reader.read('model.zzz'), TensorMismatchError);
    reader.close();
  });

  it('replaces a checkpoint of the other layout without leaving stale files', () => {
    const dir = tempDir();
    writeCheckpoint(dir, sampleTensors(), { maxShardBytes: 200 });
    writeCheckpoint(dir, { only: fromArray([1, 2]) });
    assert.deepEqual(readdirSync(dir), [SAFETENSORS_FILE]);
    writeCheckpoint(dir, sampleTensors(), { maxShardBytes: 300 });
    assert.ok(!readdirSync(dir).includes(SAFETENSORS_FILE));
    assert.deepEqual(openCheckpoint(dir).names().length, 6);
    writeCheckpoint(dir, sampleTensors(), { maxShardBytes: 200 });
    assert.equal(readdirSync(dir).length, 5, 'stale 3-shard files were removed');
  });

  it('names the index and the missing shard', () => {
    const dir = tempDir();
    writeCheckpoint(dir, sampleTensors(), { maxShardBytes: 200 });
    rmSync(join(dir, shardFileName(2, 4)));
    assertFormatError(
      () => openCheckpoint(dir),
      [SAFETENSORS_INDEX_FILE, shardFileName(2, 4), 'missing', 'model.c.weight'],
    );
  });

  it('rejects an index whose shard lacks a mapped tensor, or a malformed weight_map', () => {
    const dir = tempDir();
    writeSafetensors(join(dir, 'part.safetensors'), { a: fromArray([1]) });
    writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), {
      weight_map: { a: 'part.safetensors', b: 'part.safetensors' },
    });
    assertFormatError(() => openCheckpoint(dir), [SAFETENSORS_INDEX_FILE, "'b'", 'part.safetensors']);
    writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), { weight_map: { a: '../elsewhere.safetensors' } });
    assertFormatError(() => openCheckpoint(dir), [SAFETENSORS_INDEX_FILE, 'weight_map']);
    writeJsonAtomic(join(dir, SAFETENSORS_INDEX_FILE), { metadata: {} });
    assertFormatError(() => openCheckpoint(dir), [SAFETENSORS_INDEX_FILE, 'weight_map']);
  });

  it('says what is missing in a folder with no checkpoint', () => {
    const dir = tempDir();
    assertFormatError(() => openCheckpoint(dir), [dir, SAFETENSORS_FILE, SAFETENSORS_INDEX_FILE]);
  });
});

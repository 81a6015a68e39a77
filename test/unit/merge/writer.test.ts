import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import { StreamingSafetensorsWriter, toF16Bits } from '../../../src/merge/index.ts';
import { fromArray } from '../../../src/tensor/index.ts';
import { cleanup, tempDir } from './helpers.ts';

after(cleanup);

describe('streaming safetensors writer', () => {
  it('writes the same file as io/ writeSafetensors, tensor by tensor in sorted order', () => {
    const dir = tempDir();
    const a = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const b = Float32Array.from([0.5, -0.25]);
    writeSafetensors(join(dir, 'ref.safetensors'), {
      'z.weight': fromArray(a, [2, 3]),
      'a.bias': fromArray(b, [2]),
    });
    const writer = new StreamingSafetensorsWriter(join(dir, 'out.safetensors'), [
      { name: 'z.weight', dtype: 'F32', shape: [2, 3] },
      { name: 'a.bias', dtype: 'F32', shape: [2] },
    ]);
    assert.deepEqual(writer.order, ['a.bias', 'z.weight']);
    assert.throws(() => writer.write('z.weight', a), /expected tensor 'a.bias' next/);
    writer.write('a.bias', b);
    writer.write('z.weight', a);
    writer.finish();
    assert.deepEqual(readFileSync(join(dir, 'out.safetensors')), readFileSync(join(dir, 'ref.safetensors')));
  });

  it('converts to BF16 and F16 (round to nearest even)', () => {
    const dir = tempDir();
    const values = Float32Array.from([1, -2, 0.1, 65504, 1e6, 2 ** -24, 1 + 2 ** -11, 1 + 3 * 2 ** -11]);
    const writer = new StreamingSafetensorsWriter(join(dir, 'x.safetensors'), [
      { name: 'bf', dtype: 'BF16', shape: [8] },
      { name: 'h', dtype: 'F16', shape: [8] },
    ]);
    writer.write('bf', values);
    writer.write('h', values);
    writer.finish();
    const reader = openSafetensors(join(dir, 'x.safetensors'));
    assert.equal(reader.info('h').dtype, 'F16');
    const half = reader.read('h').data as Float32Array;
    assert.deepEqual(
      [...half],
      [1, -2, Math.fround(0.0999755859375), 65504, Infinity, 2 ** -24, 1, 1 + 2 ** -9],
    );
    const bf = reader.read('bf', { dtype: 'f32' }).data as Float32Array;
    assert.equal(bf[2], Math.fround(0.10009765625));
    reader.close();
    assert.equal(toF16Bits(1), 0x3c00);
    assert.equal(toF16Bits(-0), 0x8000);
    assert.equal(toF16Bits(Number.NaN) & 0x7c00, 0x7c00);
  });

  it('abort() and an incomplete finish() leave no file behind', () => {
    const dir = tempDir();
    const w1 = new StreamingSafetensorsWriter(join(dir, 'a.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [1] },
    ]);
    w1.abort();
    const w2 = new StreamingSafetensorsWriter(join(dir, 'b.safetensors'), [
      { name: 'x', dtype: 'F32', shape: [1] },
    ]);
    assert.throws(() => w2.finish(), /after 0 of 1 tensors/);
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(existsSync(join(dir, 'b.safetensors')), false);
  });
});

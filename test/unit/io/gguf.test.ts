/**
 * io/gguf writer and element encodings: a file written here parses with the independent
 * @huggingface/gguf reader (header v3, every metadata type, dims reversed, 32-byte aligned offsets,
 * exact data bytes); f16 rounding to nearest even; q8_0 as ggml's reference quantizer; atomicity.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { f16ToF32 } from '../../../src/io/convert.ts';
import {
  dequantizeQ8_0,
  encodeTensor,
  f32ToF16Bits,
  GgmlType,
  ggufKv,
  quantizeQ8_0,
  writeGguf,
} from '../../../src/io/index.ts';
import { Rng } from '../../../src/tensor/index.ts';
import { asF32, asU16, readGguf } from './gguf-helpers.ts';
import { cleanup, tempDir } from './helpers.ts';

after(cleanup);

function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => scale * rng.normal());
}

describe('GGUF writer', () => {
  test('metadata of every written type and tensors of every dtype read back with @huggingface/gguf', async () => {
    const path = join(tempDir(), 'x.gguf');
    const a = randomValues(6 * 5, 1); // f32 [6, 5]
    const b = randomValues(3 * 64, 2); // q8_0 [3, 64]
    const c = randomValues(7, 3); // f16 [7]
    const d = randomValues(2 * 3 * 4, 4); // bf16 [2, 3, 4]
    writeGguf(
      path,
      [
        ggufKv.string('general.architecture', 'llama'),
        ggufKv.u32('general.alignment', 32),
        ggufKv.f32('x.float', 0.5),
        ggufKv.bool('x.flag', true),
        ggufKv.strings('x.strings', ['a', 'é ▁', '']),
        ggufKv.i32s('x.ints', [-1, 0, 7]),
        ggufKv.f32s('x.floats', [-1000, 0.25]),
      ],
      [
        { name: 'a', shape: [6, 5], type: GgmlType.F32, data: () => encodeTensor(a, GgmlType.F32, 'a') },
        { name: 'b', shape: [3, 64], type: GgmlType.Q8_0, data: () => encodeTensor(b, GgmlType.Q8_0, 'b') },
        { name: 'c', shape: [7], type: GgmlType.F16, data: () => encodeTensor(c, GgmlType.F16, 'c') },
        { name: 'd', shape: [2, 3, 4], type: GgmlType.BF16, data: () => encodeTensor(d, GgmlType.BF16, 'd') },
      ],
    );
    const file = await readGguf(path);
    const m = file.metadata;
    assert.equal(m.version, 3);
    assert.equal(m.tensor_count, 4n);
    assert.equal(m.kv_count, 7n);
    assert.equal(m['general.architecture'], 'llama');
    assert.equal(m['x.float'], 0.5);
    assert.equal(m['x.flag'], true);
    assert.deepEqual(m['x.strings'], ['a', 'é ▁', '']);
    assert.deepEqual(m['x.ints'], [-1, 0, 7]);
    assert.deepEqual(m['x.floats'], [-1000, 0.25]);
    assert.equal(file.dataOffset % 32, 0);
    const t = (name: string) => file.tensors.get(name)!;
    assert.deepEqual(t('a').shape, [5, 6]);
    assert.deepEqual(t('b').shape, [64, 3]);
    assert.deepEqual(t('c').shape, [7]);
    assert.deepEqual(t('d').shape, [4, 3, 2]);
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].map((n) => t(n).dtype),
      [0, 8, 1, 30],
    );
    for (const name of ['a', 'b', 'c', 'd']) assert.equal(t(name).offset % 32, 0, name);
    assert.deepEqual(asF32(t('a').bytes(a.length * 4)), a);
    assert.deepEqual(dequantizeQ8_0(t('b').bytes(6 * 34)), dequantizeQ8_0(quantizeQ8_0(b)));
    const c16 = f16ToF32(asU16(t('c').bytes(14)));
    for (let i = 0; i < c.length; i++) assert.ok(Math.abs(c16[i]! - c[i]!) <= Math.abs(c[i]!) * 2 ** -11);
    const dBits = asU16(t('d').bytes(48));
    for (let i = 0; i < d.length; i++)
      assert.ok(
        Math.abs(new Float32Array(new Uint32Array([dBits[i]! << 16]).buffer)[0]! - d[i]!) <=
          Math.abs(d[i]!) * 2 ** -8,
      );
  });

  test('a failing tensor leaves the existing file untouched and no temporary behind', () => {
    const dir = tempDir();
    const path = join(dir, 'm.gguf');
    writeFileSync(path, 'old');
    assert.throws(
      () =>
        writeGguf(
          path,
          [ggufKv.u32('general.alignment', 32)],
          [
            {
              name: 'bad',
              shape: [2],
              type: GgmlType.F32,
              data: () => {
                throw new Error('boom');
              },
            },
          ],
        ),
      /boom/,
    );
    assert.equal(readFileSync(path, 'utf8'), 'old');
    assert.deepEqual(readdirSync(dir), ['m.gguf']);
  });

  test('wrong data length and duplicate names are refused, leaving no file', () => {
    const path = join(tempDir(), 'm.gguf');
    assert.throws(
      () =>
        writeGguf(path, [], [{ name: 't', shape: [4], type: GgmlType.F32, data: () => new Uint8Array(8) }]),
      /'t': 8 bytes of data, expected 16/,
    );
    assert.ok(!existsSync(path));
    const spec = { name: 't', shape: [1], type: GgmlType.F32, data: () => new Uint8Array(4) } as const;
    assert.throws(() => writeGguf(path, [], [spec, spec]), /'t' written twice/);
    assert.throws(() => writeGguf(path, [ggufKv.u32('k', 1), ggufKv.u32('k', 2)], []), /'k' written twice/);
    assert.ok(!existsSync(path));
  });
});

describe('element encodings', () => {
  test('f16: known values, round to nearest even, overflow, subnormals, NaN', () => {
    assert.equal(f32ToF16Bits(1), 0x3c00);
    assert.equal(f32ToF16Bits(-2), 0xc000);
    assert.equal(f32ToF16Bits(65504), 0x7bff);
    assert.equal(f32ToF16Bits(65520), 0x7c00); // halfway to the next (inf): rounds to even = inf
    assert.equal(f32ToF16Bits(65519), 0x7bff);
    assert.equal(f32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie -> even
    assert.equal(f32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie -> even (up)
    assert.equal(f32ToF16Bits(2 ** -24), 0x0001); // smallest subnormal
    assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie between 0 and 2^-24 -> even (0)
    assert.equal(f32ToF16Bits(1.5 * 2 ** -24), 0x0002); // tie between 1 and 2 ulps -> even (2)
    assert.equal(f32ToF16Bits(2 ** -14), 0x0400); // smallest normal
    assert.equal(f32ToF16Bits(Number.NEGATIVE_INFINITY), 0xfc00);
    assert.equal(f32ToF16Bits(Number.NaN) & 0x7c00, 0x7c00);
    assert.notEqual(f32ToF16Bits(Number.NaN) & 0x3ff, 0);
  });

  test('f16: every finite half value round-trips exactly', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const values = f16ToF32(all);
    for (let h = 0; h < 65536; h++) {
      if ((h & 0x7c00) === 0x7c00) continue; // inf / NaN
      assert.equal(f32ToF16Bits(values[h]!), h, `half 0x${h.toString(16)}`);
    }
  });

  test('q8_0: blocks of an f16 scale max|x|/127 and int8 round(x/d), within d/2 of the input', () => {
    const values = randomValues(32 * 8, 9, 3);
    values.fill(0, 64, 96); // an all-zero block: d = 0, q = 0
    values[100] = -7; // the block's max |x| is negative
    const bytes = quantizeQ8_0(values);
    assert.equal(bytes.length, 8 * 34);
    const view = new DataView(bytes.buffer);
    const back = dequantizeQ8_0(bytes);
    for (let blk = 0; blk < 8; blk++) {
      const block = values.subarray(blk * 32, blk * 32 + 32);
      const amax = Math.max(...Array.from(block, Math.abs));
      const d = f16ToF32(new Uint16Array([view.getUint16(blk * 34, true)]))[0]!;
      assert.ok(Math.abs(d - amax / 127) <= (amax / 127) * 2 ** -11, `block ${blk} scale`);
      for (let j = 0; j < 32; j++) {
        const q = view.getInt8(blk * 34 + 2 + j);
        assert.ok(Math.abs(q) <= 127);
        assert.ok(Math.abs(back[blk * 32 + j]! - block[j]!) <= d / 2 + amax * 2 ** -10, `block ${blk}[${j}]`);
      }
    }
    assert.equal(view.getInt8(3 * 34 + 2 + 4), -127); // values[100]: the max magnitude maps to -127
    assert.deepEqual(Array.from(back.subarray(64, 96)), new Array(32).fill(0));
    assert.throws(
      () => encodeTensor(new Float32Array(33), GgmlType.Q8_0, 'w'),
      /w: q8_0 needs rows of a multiple of 32/,
    );
  });
});

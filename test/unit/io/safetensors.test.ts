import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { AttuneError, TensorMismatchError } from '../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/safetensors.ts';
import { fromArray, scope, Tensor, toBf16Bits } from '../../../src/tensor/index.ts';
import { assertFormatError, cleanup, rawSafetensors, tempDir, writeRaw } from './helpers.ts';

after(cleanup);

function bytesOf(t: Tensor): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Raw little-endian bytes of typed arrays, concatenated. */
function concat(...arrays: ArrayBufferView[]): Uint8Array {
  const parts = arrays.map((a) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function headerOf(path: string): { length: number; json: string } {
  const bytes = readFileSync(path);
  const length = Number(bytes.readBigUInt64LE(0));
  return { length, json: bytes.subarray(8, 8 + length).toString('utf8') };
}

describe('safetensors write + read', () => {
  it('round-trips every dtype bit-exactly', () => {
    const dir = tempDir();
    const f32 = new Float32Array([
      0,
      -0,
      1.5,
      -3.25e-39,
      3.4028234663852886e38,
      Number.POSITIVE_INFINITY,
      Number.NaN,
      1e-45,
    ]);
    const bf16 = new Uint16Array([0x0000, 0x8000, 0x3f80, 0x7f80, 0xff80, 0x7fc1, 0x0001, 0x4049, 0xc2f7]);
    const i32 = new Int32Array([0, -1, 2147483647, -2147483648, 42, 7]);
    const f64 = new Float64Array([Math.PI, -0, 5e-324, Number.NEGATIVE_INFINITY, 1e308, Number.NaN]);
    const tensors = {
      'a.f32': Tensor.wrap(f32, [2, 4]),
      'b.bf16': Tensor.wrap(bf16, [3, 3]),
      'c.i32': Tensor.wrap(i32, [6]),
      'd.f64': Tensor.wrap(f64, [2, 1, 3]),
      'e.scalar': Tensor.wrap(new Float32Array([2.5]), []),
      'f.empty': Tensor.wrap(new Float32Array(0), [0, 3]),
    };
    const path = join(dir, 'x.safetensors');
    writeSafetensors(path, tensors);
    const reader = openSafetensors(path);
    assert.deepEqual(reader.names(), Object.keys(tensors).sort());
    assert.deepEqual(reader.metadata(), { format: 'pt' });
    const expectDtype = {
      'a.f32': 'F32',
      'b.bf16': 'BF16',
      'c.i32': 'I32',
      'd.f64': 'F64',
      'e.scalar': 'F32',
      'f.empty': 'F32',
    };
    for (const [name, original] of Object.entries(tensors)) {
      const info = reader.info(name);
      assert.equal(info.dtype, expectDtype[name as keyof typeof expectDtype]);
      assert.deepEqual(info.shape, original.shape);
      assert.equal(info.byteLength, original.data.byteLength);
      assert.equal(info.file, path);
      const back = reader.read(name);
      assert.equal(back.dtype, original.dtype, name);
      assert.deepEqual(back.shape, original.shape, name);
      assert.deepEqual(bytesOf(back), bytesOf(original), `${name} bytes differ`);
    }
    reader.close();
  });

  it('lays tensors out in sorted name order with a space-padded header', () => {
    const dir = tempDir();
    const path = join(dir, 'order.safetensors');
    const map = new Map([
      ['zeta', fromArray([1, 2, 3])],
      ['alpha', fromArray([4])],
      ['mid', fromArray([5, 6], [2], { dtype: 'bf16' })],
    ]);
    writeSafetensors(path, map, { format: 'pt', note: 'hi' });
    const { length, json } = headerOf(path);
    assert.equal(length % 8, 0);
    assert.match(json, /^\{.*\} *$/);
    const header = JSON.parse(json);
    assert.deepEqual(header.__metadata__, { format: 'pt', note: 'hi' });
    assert.deepEqual(header.alpha, { dtype: 'F32', shape: [1], data_offsets: [0, 4] });
    assert.deepEqual(header.mid, { dtype: 'BF16', shape: [2], data_offsets: [4, 8] });
    assert.deepEqual(header.zeta, { dtype: 'F32', shape: [3], data_offsets: [8, 20] });
    assert.equal(readFileSync(path).length, 8 + length + 20);
    assert.deepEqual(openSafetensors(path).read('zeta').toArray(), [1, 2, 3]);
  });

  it('omits __metadata__ when the metadata is empty and rejects non-string values', () => {
    const dir = tempDir();
    const path = join(dir, 'nometa.safetensors');
    writeSafetensors(path, { w: fromArray([1]) }, {});
    assert.equal(JSON.parse(headerOf(path).json).__metadata__, undefined);
    assert.deepEqual(openSafetensors(path).metadata(), {});
    assert.throws(
      () => writeSafetensors(path, { w: fromArray([1]) }, { n: 3 as unknown as string }),
      TypeError,
    );
  });

  it('reads one tensor lazily from the file at read time, into a fresh untracked buffer', () => {
    const dir = tempDir();
    const path = join(dir, 'lazy.safetensors');
    writeSafetensors(path, { a: fromArray([1, 2, 3, 4]), b: fromArray([10, 20]) });
    const reader = openSafetensors(path);
    // Change tensor a's bytes on disk after opening: the read sees the new data.
    const offset = 8 + headerOf(path).length;
    const fd = openSync(path, 'r+');
    writeSync(fd, new Uint8Array(new Float32Array([9, 8, 7, 6]).buffer), 0, 16, offset);
    closeSync(fd);
    const outside = scope(() => reader.read('a'));
    assert.equal(outside.isReleased, false, 'read() tensors are untracked: no scope frees them');
    assert.deepEqual(outside.toArray(), [9, 8, 7, 6]);
    const again = reader.read('a');
    (again.data as Float32Array)[0] = 100;
    assert.equal(outside.toArray()[0], 9, 'each read gets its own buffer');
    assert.deepEqual(reader.read('b').toArray(), [10, 20]);
    reader.close();
    assert.throws(() => reader.read('b'), AttuneError);
  });

  it('names the file and tensor for an unknown name', () => {
    const dir = tempDir();
    const path = join(dir, 'names.safetensors');
    writeSafetensors(path, { a: fromArray([1]) });
    const reader = openSafetensors(path);
    assert.equal(reader.has('a'), true);
    assert.equal(reader.has('nope'), false);
    assert.throws(
      () => reader.read('nope'),
      (e: Error) => e instanceof TensorMismatchError && /names\.safetensors.*'nope'/.test(e.message),
    );
    assert.throws(() => reader.info('nope'), TensorMismatchError);
  });
});

describe('safetensors dtype conversions on read', () => {
  const dir = tempDir();
  const f16Bits = new Uint16Array([
    0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x7c00, 0xfc00, 0x8000, 0x3555, 0x7e00,
  ]);
  const f16Values = [
    1,
    -2,
    65504,
    2 ** -24,
    1023 * 2 ** -24,
    Infinity,
    -Infinity,
    -0,
    0.333251953125,
    Number.NaN,
  ];
  const bf16Bits = new Uint16Array([0x3f80, 0xc040, 0x0001, 0x7f80]);
  const f32 = new Float32Array([1, 1.00390625, -2.7182817, 3.4e38]);
  const f64 = new Float64Array([0.1, -1e-300, 2 ** 40 + 0.5]);
  const i64 = new BigInt64Array([0n, -1n, 2147483647n, -2147483648n]);
  const path = writeRaw(
    dir,
    'conv.safetensors',
    rawSafetensors(
      {
        half: { dtype: 'F16', shape: [10], data_offsets: [0, 20] },
        brain: { dtype: 'BF16', shape: [4], data_offsets: [20, 28] },
        single: { dtype: 'F32', shape: [4], data_offsets: [28, 44] },
        double: { dtype: 'F64', shape: [3], data_offsets: [44, 68] },
        long: { dtype: 'I64', shape: [2, 2], data_offsets: [68, 100] },
        bytes: { dtype: 'U8', shape: [4], data_offsets: [100, 104] },
      },
      concat(f16Bits, bf16Bits, f32, f64, i64, new Uint8Array([1, 2, 3, 4])),
    ),
  );
  const reader = openSafetensors(path);

  it('widens F16 to f32 exactly (subnormals, infinities, NaN)', () => {
    const t = reader.read('half');
    assert.equal(t.dtype, 'f32');
    const got = t.toArray();
    for (let i = 0; i < f16Values.length; i++)
      assert.ok(Object.is(got[i], f16Values[i]), `${i}: ${got[i]} vs ${f16Values[i]}`);
    const asBf16 = reader.read('half', { dtype: 'bf16' });
    assert.equal(asBf16.dtype, 'bf16');
    assert.deepEqual([...(asBf16.data as Uint16Array)], f16Values.map(toBf16Bits));
  });

  it('keeps BF16 as bf16 bits, or widens it to f32 on request', () => {
    const t = reader.read('brain');
    assert.equal(t.dtype, 'bf16');
    assert.deepEqual([...(t.data as Uint16Array)], [...bf16Bits]);
    const wide = reader.read('brain', { dtype: 'f32' });
    assert.equal(wide.dtype, 'f32');
    assert.deepEqual(wide.toArray(), [1, -3, 2 ** -133, Infinity]);
  });

  it('rounds F32 to bf16 (nearest even) only on request', () => {
    assert.equal(reader.read('single').dtype, 'f32');
    const t = reader.read('single', { dtype: 'bf16' });
    assert.deepEqual([...(t.data as Uint16Array)], [...f32].map(toBf16Bits));
  });

  it('reads F64 as f64, narrowing to f32 only when asked', () => {
    const t = reader.read('double');
    assert.equal(t.dtype, 'f64');
    assert.deepEqual(t.toArray(), [...f64]);
    const narrow = reader.read('double', { dtype: 'f32' });
    assert.equal(narrow.dtype, 'f32');
    assert.deepEqual(narrow.toArray(), [...Float32Array.from(f64)]);
  });

  it('reads I64 as i32 and refuses a float dtype for integer tensors', () => {
    const t = reader.read('long');
    assert.equal(t.dtype, 'i32');
    assert.deepEqual(t.shape, [2, 2]);
    assert.deepEqual(t.toArray(), [0, -1, 2147483647, -2147483648]);
    assert.throws(() => reader.read('long', { dtype: 'f32' }), TensorMismatchError);
  });

  it('lists but refuses to read a dtype Attune has no tensor for', () => {
    assert.equal(reader.info('bytes').dtype, 'U8');
    assert.throws(
      () => reader.read('bytes'),
      (e: Error) => e instanceof TensorMismatchError && e.message.includes("'bytes'"),
    );
  });

  it('rejects an I64 value outside the i32 range, naming the tensor and the value', () => {
    const p = writeRaw(
      dir,
      'big.safetensors',
      rawSafetensors(
        { ids: { dtype: 'I64', shape: [3], data_offsets: [0, 24] } },
        concat(new BigInt64Array([5n, 2147483648n, 1n])),
      ),
    );
    const r = openSafetensors(p);
    assertFormatError(() => r.read('ids'), ['big.safetensors', "'ids'", '2147483648', 'index 1']);
    r.close();
  });
});

describe('safetensors validation', () => {
  const dir = tempDir();
  const eight = new Uint8Array(8);
  const open = (name: string, bytes: Uint8Array) => () => openSafetensors(writeRaw(dir, name, bytes));

  it('rejects a file shorter than 8 bytes', () => {
    assertFormatError(open('short.safetensors', new Uint8Array(5)), [
      'short.safetensors',
      '5 bytes',
      '8-byte',
    ]);
  });

  it('rejects a header length beyond the end of the file', () => {
    assertFormatError(open('len.safetensors', rawSafetensors('{}', eight, 1000)), [
      'len.safetensors',
      'header length 1000',
    ]);
  });

  it('rejects a header that is not JSON or not an object', () => {
    assertFormatError(open('json.safetensors', rawSafetensors('{"a": nope}')), [
      'json.safetensors',
      'not valid',
    ]);
    assertFormatError(open('array.safetensors', rawSafetensors('[1, 2]')), ['array.safetensors', 'an array']);
  });

  it('rejects a missing file', () => {
    assertFormatError(
      () => openSafetensors(join(dir, 'absent.safetensors')),
      ['absent.safetensors', 'not found'],
    );
  });

  it('rejects an unknown dtype', () => {
    const header = { w: { dtype: 'F17', shape: [2], data_offsets: [0, 8] } };
    assertFormatError(open('dtype.safetensors', rawSafetensors(header, eight)), [
      'dtype.safetensors',
      "'w'",
      'F17',
    ]);
  });

  it('rejects data_offsets that are not [begin, end] integers', () => {
    const cases: unknown[] = [[0, 1.5], ['0', 8], [0], [8, 0], null, [-4, 4]];
    cases.forEach((offsets, i) => {
      const header = { w: { dtype: 'U8', shape: [8], data_offsets: offsets } };
      assertFormatError(open(`offsets${i}.safetensors`, rawSafetensors(header, eight)), [
        `offsets${i}.safetensors`,
        "'w'",
        'data_offsets',
      ]);
    });
  });

  it('rejects offsets out of range of the data section', () => {
    const header = { w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } };
    assertFormatError(open('range.safetensors', rawSafetensors(header, eight)), [
      'range.safetensors',
      "'w'",
      'out of range',
    ]);
  });

  it('rejects overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
      e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
    };
    assertFormatError(open('overlap.safetensors', rawSafetensors(header, new Uint8Array(12))), [
      'overlap.safetensors',
      "'a'",
      "'b'",
      'overlap',
    ]);
  });

  it('rejects a byte count that does not match dtype size x shape', () => {
    const header = { w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } };
    assertFormatError(open('count.safetensors', rawSafetensors(header, eight)), [
      'count.safetensors',
      "'w'",
      '8 bytes',
      'needs 12',
    ]);
  });

  it('rejects a shape with non-integers', () => {
    for (const [i, shape] of [[2.5], [-1], ['2'], 4].entries()) {
      const header = { w: { dtype: 'U8', shape, data_offsets: [0, 8] } };
      assertFormatError(open(`shape${i}.safetensors`, rawSafetensors(header, eight)), [
        `shape${i}.safetensors`,
        "'w'",
        'shape',
      ]);
    }
  });

  it('rejects non-string __metadata__ values', () => {
    const header = { __metadata__: { format: 1 } };
    assertFormatError(open('meta.safetensors', rawSafetensors(header)), [
      'meta.safetensors',
      '__metadata__',
      'format',
    ]);
  });

  it('accepts tensors with gaps between them and a space-padded header', () => {
    const header = `${JSON.stringify({ w: { dtype: 'U8', shape: [2], data_offsets: [4, 6] } })}      `;
    const reader = openSafetensors(writeRaw(dir, 'gap.safetensors', rawSafetensors(header, eight)));
    assert.deepEqual(reader.info('w').shape, [2]);
  });
});

describe('safetensors atomic write', () => {
  it('leaves the old file intact and no temp file when writing fails mid-way', () => {
    const dir = tempDir();
    const path = join(dir, 'model.safetensors');
    writeSafetensors(path, { a: fromArray([1, 2]) });
    const before = readFileSync(path);
    const released = fromArray([3, 4, 5]);
    released.release();
    // Sorted order writes 'a' first, then fails reading the data of released 'b'.
    assert.throws(() => writeSafetensors(path, { a: fromArray([7, 8]), b: released }), /released/);
    assert.deepEqual(readFileSync(path), before);
    assert.deepEqual(readdirSync(dir), ['model.safetensors']);
    assert.deepEqual(openSafetensors(path).read('a').toArray(), [1, 2]);
  });

  it('fails cleanly when the folder does not exist', () => {
    const dir = tempDir();
    assert.throws(
      () => writeSafetensors(join(dir, 'missing', 'x.safetensors'), { a: fromArray([1]) }),
      /ENOENT/,
    );
    assert.deepEqual(readdirSync(dir), []);
  });

  it('replaces an existing file atomically', () => {
    const dir = tempDir();
    const path = join(dir, 'w.safetensors');
    writeSafetensors(path, { a: fromArray([1]) });
    writeSafetensors(path, { b: fromArray([2, 3]) });
    assert.deepEqual(openSafetensors(path).names(), ['b']);
    assert.deepEqual(readdirSync(dir), ['w.safetensors']);
  });
});

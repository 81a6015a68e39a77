/**
 * Fuzzed safetensors files (single files and sharded checkpoints): mutated headers (wrong dtypes,
 * shapes, offsets, huge and negative sizes, NaN/Infinity literals, duplicate names, deep nesting,
 * invalid UTF-8), wrong header lengths (2^40, beyond the file) and mutated bodies. Opening and
 * reading every tensor either works or throws a one-line AttuneError naming the file (and the
 * tensor when the mutation was in its entry).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { openCheckpoint } from '../../../src/io/checkpoint.ts';
import { openSafetensors } from '../../../src/io/safetensors.ts';
import {
  FuzzReport,
  fuzzDir,
  hostileLiteral,
  hostileValue,
  jsonPaths,
  mutateBytes,
  Rng,
  withValueAt,
} from './harness.ts';

const { dir, remove } = fuzzDir();
after(remove);

const DTYPES = [
  'F32',
  'BF16',
  'F16',
  'F64',
  'I32',
  'I64',
  'U8',
  'BOOL',
  'F4',
  'F6_E2M3',
  'C64',
  'f32',
  'Q4_K',
  '',
];

/** A valid header and data section: tensors of several dtypes, an empty one, metadata. */
function baseFile(): { header: Record<string, unknown>; data: Uint8Array } {
  const parts: [string, string, number[], Uint8Array][] = [
    [
      'a',
      'F32',
      [2, 3],
      new Uint8Array(new Float32Array([1, 2, 3, Number.NaN, Number.POSITIVE_INFINITY, -0]).buffer),
    ],
    ['b', 'BF16', [4], new Uint8Array([0, 0x3f, 0x80, 0x7f, 0xc0, 0x7f, 0, 0x80])],
    ['c', 'I64', [2], new Uint8Array(new BigInt64Array([5n, -7n]).buffer)],
    ['d', 'F16', [3], new Uint8Array([0, 0x3c, 0, 0x7c, 0, 0x7e])],
    ['e', 'F32', [0, 4], new Uint8Array(0)],
    [
      'model.layers.0.self_attn.q_proj.weight',
      'F64',
      [1, 2],
      new Uint8Array(new Float64Array([0.5, -1e300]).buffer),
    ],
  ];
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const [name, dtype, shape, bytes] of parts) {
    header[name] = { dtype, shape, data_offsets: [offset, offset + bytes.length] };
    offset += bytes.length;
    chunks.push(bytes);
  }
  return { header, data: Buffer.concat(chunks) };
}

function fileBytes(headerText: string, data: Uint8Array, headerLength?: bigint): Uint8Array {
  const json = Buffer.from(headerText, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

/** Open `path` and read every tensor (the property under test). */
function readAll(path: string): void {
  const reader = openSafetensors(path);
  try {
    for (const name of reader.names()) {
      reader.info(name);
      reader.read(name);
      if (reader.info(name).dtype !== 'I64' && reader.info(name).dtype !== 'I32')
        reader.read(name, { dtype: 'bf16' });
    }
    reader.metadata();
  } finally {
    reader.close();
  }
}

describe('fuzzed safetensors', () => {
  it('300 mutated files: every one reads or fails with a typed one-line error naming file and tensor', () => {
    const rng = new Rng(20261201);
    const report = new FuzzReport();
    const { header, data } = baseFile();
    const names = Object.keys(header).filter((n) => n !== '__metadata__');
    for (let i = 0; i < 300; i++) {
      const path = join(dir, `case-${i}.safetensors`);
      const kind = i % 8;
      let bytes: Uint8Array;
      let what: string;
      const mustName = [path];
      if (kind === 0 || kind === 1) {
        // A field of an entry (or the entry itself, or the metadata) replaced or removed.
        const paths = jsonPaths(header);
        const target = rng.pick(paths);
        const replacement =
          rng.int(6) === 0
            ? undefined
            : kind === 1 && target.at(-1) === 'dtype'
              ? rng.pick(DTYPES)
              : hostileValue(rng);
        what = `${JSON.stringify(target)} := ${JSON.stringify(replacement)?.slice(0, 40)}`;
        bytes = fileBytes(JSON.stringify(withValueAt(header, target, replacement)), data);
        // Nesting beyond MAX_JSON_DEPTH fails as a header error, before any tensor is looked at.
        const tooDeep =
          /^[[{]/.test(JSON.stringify(replacement) ?? '') && JSON.stringify(replacement)!.length > 200;
        if (!tooDeep) mustName.push(target[0] === '__metadata__' ? '__metadata__' : `'${target[0]}'`);
      } else if (kind === 2) {
        // A number of the header text replaced by a literal JSON cannot hold (NaN, 1e999, ...).
        const text = JSON.stringify(header);
        const numbers = [...text.matchAll(/\d+/g)];
        const m = rng.pick(numbers);
        const literal = hostileLiteral(rng);
        what = `number at ${m.index} := ${literal}`;
        bytes = fileBytes(text.slice(0, m.index) + literal + text.slice(m.index! + m[0].length), data);
      } else if (kind === 3) {
        // A tensor listed twice, the second time with other offsets or dtype.
        const name = rng.pick(names);
        const entry = header[name] as { data_offsets: number[] };
        const twin = JSON.stringify({
          ...entry,
          data_offsets: [0, entry.data_offsets[1]! - entry.data_offsets[0]!],
          dtype: rng.pick(DTYPES),
        });
        const text = JSON.stringify(header).replace(/}$/, `,${JSON.stringify(name)}:${twin}}`);
        what = `duplicate '${name}'`;
        bytes = fileBytes(text, data);
        mustName.push(`'${name}'`);
      } else if (kind === 4) {
        const text = JSON.stringify(header);
        const length = BigInt(Buffer.byteLength(text));
        const claimed = rng.pick([
          2n ** 40n,
          2n ** 63n,
          2n ** 64n - 1n,
          length + BigInt(data.length) + 1n,
          0n,
          1n,
          length - 1n,
          length + 3n,
          7n,
        ]);
        what = `header length ${claimed}`;
        bytes = fileBytes(text, data, claimed);
      } else if (kind === 5) {
        // The whole header replaced: deep nesting, a non-object, huge sizes, empty.
        const depth = 1000 + rng.int(20000);
        const text = rng.pick([
          `{"a":${'['.repeat(depth)}${']'.repeat(depth)}}`,
          `${'{"x":'.repeat(depth)}1${'}'.repeat(depth)}`,
          '[]',
          '"x"',
          '',
          '{}',
          `{"a":{"dtype":"F32","shape":[1099511627776],"data_offsets":[0,4398046511104]}}`,
          `{"a":{"dtype":"F32","shape":[1073741824,1073741824,1073741824],"data_offsets":[0,24]}}`,
          `{"a":{"dtype":"F32","shape":[-6],"data_offsets":[0,24]}}`,
          `{"a":{"dtype":"F32","shape":[6],"data_offsets":[-24,0]}}`,
          `{"a":{"dtype":"F32","shape":[6],"data_offsets":[24,0]}}`,
          `{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]},"b":{"dtype":"F32","shape":[6],"data_offsets":[8,32]}}`,
          `{"__metadata__":{"format":1},"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}`,
          `{"a":{"dtype":"F32","shape":[6],"data_offsets":[0,24]}}    `,
        ]);
        what = `header ${text.slice(0, 60)}`;
        bytes = fileBytes(text, data);
      } else if (kind === 6) {
        const base = fileBytes(JSON.stringify(header), data);
        ({ bytes, what } = mutateBytes(base, rng));
      } else {
        // Body: random bytes in the data section (NaN/Inf patterns, I64 out of the i32 range).
        const headerText = JSON.stringify(header);
        const body = Uint8Array.from(data);
        const n = 1 + rng.int(12);
        for (let k = 0; k < n; k++)
          body[rng.int(body.length)] = rng.pick([0xff, 0x7f, 0x80, 0xc0, 0x7c, rng.int(256)]);
        what = `body ${n} bytes`;
        bytes = fileBytes(headerText, body);
      }
      writeFileSync(path, bytes);
      report.run(`case ${i} (${what})`, mustName, () => readAll(path));
    }
    report.check(150);
    assert.ok(report.ok >= 20, `only ${report.ok} cases read fine`);
  });

  it('sharded checkpoints with a mutated index: typed errors naming the index', () => {
    const rng = new Rng(7);
    const report = new FuzzReport();
    const { header, data } = baseFile();
    const index = {
      metadata: { total_size: data.length },
      weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' },
    };
    for (let i = 0; i < 60; i++) {
      const folder = join(dir, `sharded-${i}`);
      const shard = fileBytes(JSON.stringify(header), data);
      const indexPath = join(folder, 'model.safetensors.index.json');
      const target = rng.pick(jsonPaths(index));
      const mutated =
        i % 3 === 0
          ? withValueAt(index, target, hostileValue(rng))
          : withValueAt(
              index,
              target,
              rng.pick([
                '../x.safetensors',
                '/etc/passwd',
                'missing.safetensors',
                '',
                'model-00001-of-00002.safetensors',
              ]),
            );
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, 'model-00001-of-00002.safetensors'), shard);
      writeFileSync(
        join(folder, 'model-00002-of-00002.safetensors'),
        i % 4 === 0 ? shard.slice(0, rng.int(shard.length)) : shard,
      );
      writeFileSync(
        indexPath,
        i % 5 === 0 ? mutateBytes(Buffer.from(JSON.stringify(index)), rng).bytes : JSON.stringify(mutated),
      );
      report.run(`shard case ${i} (${JSON.stringify(target)})`, [folder], () => {
        const reader = openCheckpoint(folder);
        try {
          for (const name of reader.names()) reader.read(name);
        } finally {
          reader.close();
        }
      });
    }
    report.check(20);
  });
});

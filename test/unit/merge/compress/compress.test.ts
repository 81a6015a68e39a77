import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError, FormatError, TensorMismatchError } from '../../../../src/errors.ts';
import { openCheckpoint, writeCheckpoint } from '../../../../src/io/index.ts';
import { compressAdapter, compressModelDelta } from '../../../../src/merge/compress.ts';
import { decompress } from '../../../../src/merge/compress-decode.ts';
import { COMPEFT_FILE, readCompeftFile } from '../../../../src/merge/compress-format.ts';
import { loadModel } from '../../../../src/models/index.ts';
import { loadAdapter } from '../../../../src/peft/index.ts';
import { cleanup, loraAdapter, nothingIn, tempDir, tensorsOf, tinyModel, tunedVariant } from './helpers.ts';

after(cleanup);

/** tau in sorted-name order, as one f64 vector, with the tensor sizes. */
function concat(tensors: Map<string, Float32Array>): Float64Array {
  const names = [...tensors.keys()].sort();
  const out: number[] = [];
  for (const n of names) out.push(...tensors.get(n)!);
  return Float64Array.from(out);
}

/** The reference selection: population std, top-k by f32 |tau| (ties: lower position first), no zeros. */
function reference(tau: Float64Array, density: number, alpha: number) {
  const n = tau.length;
  const mean = tau.reduce((s, x) => s + x, 0) / n;
  const sigma = Math.sqrt(tau.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
  const nonZero = tau.filter((x) => x !== 0).length;
  const k = Math.min(nonZero, Math.max(1, Math.round(density * n)));
  const order = Array.from({ length: n }, (_, i) => i).sort(
    (i, j) => Math.fround(Math.abs(tau[j]!)) - Math.fround(Math.abs(tau[i]!)) || i - j,
  );
  const kept = new Set(order.slice(0, k));
  const scale = alpha * sigma;
  const approx = Float64Array.from(tau, (x, i) => (kept.has(i) ? Math.sign(x) * scale : 0));
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (tau[i]! - approx[i]!) ** 2;
    den += tau[i]! ** 2;
  }
  return { sigma, k, kept, scale, error: Math.sqrt(num / den) };
}

describe('ComPEFT: compress and decompress a LoRA adapter', () => {
  const root = tempDir();
  const base = tinyModel(join(root, 'base'));
  const adapter = loraAdapter(base, join(root, 'adapter'), 5);
  const tau = concat(tensorsOf(join(adapter, 'adapter_model.safetensors'), true));

  it('round trip: decompressed values are exactly alpha * sigma * sign(tau) on the global top-k, 0 elsewhere', () => {
    const out = join(root, 'c1');
    const result = compressAdapter(adapter, out, { density: 0.2, alpha: 1 });
    const ref = reference(tau, 0.2, 1);
    assert.equal(result.total, tau.length);
    assert.equal(result.kept, ref.k);
    assert.ok(Math.abs(result.sigma - ref.sigma) <= 1e-12 * ref.sigma);
    assert.ok(Math.abs(result.reconstruction_error - ref.error) < 1e-9);
    const restored = join(root, 'r1');
    decompress(out, restored);
    const values = concat(tensorsOf(join(restored, 'adapter_model.safetensors'), true));
    const scale32 = Math.fround(result.scale);
    assert.equal(result.scale, result.alpha * result.sigma);
    let nonZero = 0;
    for (let i = 0; i < tau.length; i++) {
      const expected = ref.kept.has(i) ? Math.sign(tau[i]!) * scale32 : 0;
      assert.equal(values[i], expected, `entry ${i}`);
      if (values[i] !== 0) nonZero++;
    }
    assert.equal(nonZero, ref.k);
    assert.deepEqual(
      JSON.parse(readFileSync(join(restored, 'adapter_config.json'), 'utf8')),
      JSON.parse(readFileSync(join(adapter, 'adapter_config.json'), 'utf8')),
    );
    // it is a loadable PEFT adapter
    const loaded = loadModel(base);
    assert.equal(loadAdapter(loaded.model, restored).method, 'lora');
  });

  it('reports the ratio measured from the bytes on disk', () => {
    const out = join(root, 'c2');
    const result = compressAdapter(adapter, out);
    const written = statSync(join(out, COMPEFT_FILE)).size;
    assert.equal(result.bytes_written, written);
    assert.equal(result.bytes_in, statSync(join(adapter, 'adapter_model.safetensors')).size);
    assert.equal(result.ratio, result.bytes_in / written);
    assert.ok(result.ratio > 1, `ratio ${result.ratio}`);
    const file = readCompeftFile(join(out, COMPEFT_FILE));
    assert.equal(file.bytes, written);
    assert.equal(file.header.rice_parameter, 2);
    assert.equal(file.header.kind, 'lora-adapter');
  });

  it('density 1 keeps every non-zero entry; a tiny density keeps one; alpha scales', () => {
    const all = compressAdapter(adapter, join(root, 'c3'), { density: 1 });
    assert.equal(all.kept, tau.filter((x) => x !== 0).length);
    const one = compressAdapter(adapter, join(root, 'c4'), { density: 1e-9 });
    assert.equal(one.kept, 1);
    const twice = compressAdapter(adapter, join(root, 'c5'), { density: 0.2, alpha: 2 });
    assert.equal(twice.scale, 2 * twice.sigma);
    decompress(join(root, 'c4', COMPEFT_FILE), join(root, 'r4'));
    const values = concat(tensorsOf(join(root, 'r4', 'adapter_model.safetensors'), true));
    const biggest = tau.reduce((b, x, i) => (Math.abs(x) > Math.abs(tau[b]!) ? i : b), 0);
    assert.equal(values[biggest], Math.sign(tau[biggest]!) * Math.fround(one.scale));
  });

  it('rejects a density outside (0, 1] or a bad alpha before writing anything', () => {
    for (const density of [0, -0.1, 1.5, Number.NaN]) {
      const out = join(root, `bad-${density}`);
      assert.throws(() => compressAdapter(adapter, out, { density }), ConfigError);
      assert.ok(nothingIn(out));
    }
    assert.throws(() => compressAdapter(adapter, join(root, 'bad-alpha'), { alpha: 0 }), /alpha/);
    assert.ok(nothingIn(join(root, 'bad-alpha')));
  });

  it('refuses corrupt files: truncated, wrong magic', () => {
    const out = join(root, 'c6');
    compressAdapter(adapter, out);
    const path = join(out, COMPEFT_FILE);
    const bytes = readFileSync(path);
    writeFileSync(join(root, 'trunc.bin'), bytes.subarray(0, bytes.length - 3));
    assert.throws(() => decompress(join(root, 'trunc.bin'), join(root, 'r6')), FormatError);
    const wrong = Buffer.from(bytes);
    wrong[0] = 0x58;
    writeFileSync(join(root, 'magic.bin'), wrong);
    assert.throws(() => decompress(join(root, 'magic.bin'), join(root, 'r6')), /not a ComPEFT file/);
    assert.ok(nothingIn(join(root, 'r6')));
  });
});

describe('ComPEFT: compress and decompress a full fine-tuning delta', () => {
  const root = tempDir();
  const base = tinyModel(join(root, 'base'));
  const tuned = tunedVariant(base, join(root, 'tuned'), 9);

  it('round trip: decompressed weights are base + alpha * sigma * sign(delta) on the kept entries', () => {
    const baseT = tensorsOf(base);
    const tunedT = tensorsOf(tuned);
    const names = [...baseT.keys()].sort();
    // tau = tuned - base in f64 from the f32 weights, in sorted-name order
    const tau = Float64Array.from(
      names.flatMap((n) => [...tunedT.get(n)!].map((x, i) => x - baseT.get(n)![i]!)),
    );
    const out = join(root, 'c');
    const result = compressModelDelta(tuned, base, out, { density: 0.1 });
    const ref = reference(tau, 0.1, 1);
    assert.equal(result.kept, ref.k);
    assert.equal(result.kind, 'model-delta');
    assert.ok(result.ratio > 1);
    const restored = join(root, 'r');
    const info = decompress(out, restored, { base });
    assert.ok(info.files.includes('tokenizer.json'));
    const got = tensorsOf(restored);
    let offset = 0;
    for (const n of names) {
      const w = baseT.get(n)!;
      const r = got.get(n)!;
      for (let i = 0; i < w.length; i++) {
        const step = ref.kept.has(offset + i) ? Math.sign(tau[offset + i]!) * result.scale : 0;
        assert.equal(r[i], Math.fround(w[i]! + step), `${n}[${i}]`);
      }
      offset += w.length;
    }
    const config = JSON.parse(readFileSync(join(restored, 'config.json'), 'utf8'));
    assert.equal(config.hidden_size, 32);
    assert.equal(loadModel(restored).config.numLayers, 2);
  });

  it('needs the same base at decompression time', () => {
    const out = join(root, 'c2');
    compressModelDelta(tuned, base, out);
    assert.throws(() => decompress(out, join(root, 'r2')), /--base/);
    const other = tinyModel(join(root, 'other'), { seed: 2 });
    assert.throws(() => decompress(out, join(root, 'r2'), { base: other }), /fingerprint/);
    assert.ok(nothingIn(join(root, 'r2')));
  });

  it('different architectures and missing or mis-shaped tensors fail before writing, listing the tensors', () => {
    const wide = tinyModel(join(root, 'wide'), { hidden: 48 });
    assert.throws(() => compressModelDelta(wide, base, join(root, 'x1')), ConfigError);
    assert.ok(nothingIn(join(root, 'x1')));
    // a checkpoint with one tensor dropped and one reshaped
    const broken = join(root, 'broken');
    tunedVariant(base, broken, 3);
    const reader = openCheckpoint(broken);
    const tensors = new Map(reader.names().map((n) => [n, reader.read(n)]));
    reader.close();
    tensors.delete('model.layers.0.mlp.up_proj.weight');
    const norm = tensors.get('model.norm.weight')!;
    tensors.set('model.norm.weight', norm.view([2, 16], { track: false }));
    writeCheckpoint(broken, tensors);
    assert.throws(
      () => compressModelDelta(broken, base, join(root, 'x2')),
      (e: unknown) =>
        e instanceof TensorMismatchError &&
        /model\.layers\.0\.mlp\.up_proj\.weight' is missing/.test(e.message) &&
        /'model\.norm\.weight' is \[2,16\]/.test(e.message),
    );
    assert.ok(nothingIn(join(root, 'x2')));
  });
});

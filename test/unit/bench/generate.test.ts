/** attune bench generate: the row's bookkeeping (bytes, limit, ratio) on a tiny model. */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { runGenerateBench } from '../../../src/bench/generate.ts';
import { loadModel } from '../../../src/models/index.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-generate-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('bench generate', () => {
  it('reports prefill / decode tokens/s and the bandwidth limit of the weights it reads', () => {
    const dir = writeTinyModel(join(root, 'm'), { hidden: 16, layers: 1 });
    const params = loadModel(dir)
      .model.namedParameters()
      .reduce((s, [, p]) => s + p.size, 0);
    for (const batch of [1, 3]) {
      const env = runGenerateBench({ model: dir, batch, prompt: 5, new: 4 });
      assert.equal(env.bench, 'generate');
      const row = env.results[0]!;
      assert.equal(row.weight_bytes, params * 4, 'f32 weights, 4 bytes each');
      assert.equal(row.batch, batch);
      for (const k of ['prefill_tokens_per_s', 'decode_tokens_per_s', 'read_gb_per_s', 'limit_tokens_per_s'])
        assert.ok((row[k] as number) > 0, k);
      const limit = ((row.read_gb_per_s as number) * 1e9 * batch) / (row.weight_bytes as number);
      assert.ok(Math.abs((row.limit_tokens_per_s as number) - limit) < 1e-6 * limit);
      assert.ok(
        Math.abs((row.ratio_to_limit as number) - (row.decode_tokens_per_s as number) / limit) < 1e-9,
      );
    }
  });

  it('--precision bf16-mixed stores the matrices in bf16 and names the bf16 GEMM path', () => {
    const dir = writeTinyModel(join(root, 'p'), { hidden: 16, layers: 1 });
    const f32 = runGenerateBench({ model: dir, prompt: 3, new: 2 }).results[0]!;
    const mixed = runGenerateBench({ model: dir, precision: 'bf16-mixed', prompt: 3, new: 2 }).results[0]!;
    assert.equal(f32.precision, 'f32');
    assert.equal(f32.gemm_path, 'sgemm');
    assert.equal(mixed.precision, 'bf16-mixed');
    assert.equal(mixed.dtype, 'bf16');
    assert.match(String(mixed.gemm_path), /^gemmBf16:(amx|avx512bf16|fallback|js)$/);
    // the matrices halve, the f32 norm vectors stay
    assert.ok((mixed.weight_bytes as number) < (f32.weight_bytes as number));
    assert.ok((mixed.weight_bytes as number) > (f32.weight_bytes as number) / 2);
  });
});

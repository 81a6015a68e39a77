/** `attune bench train --precision`: the row says its precision and which GEMM path ran. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { backendInfo, nativeBf16Paths } from '../../../src/backend/index.ts';
import { gemmPathOf, runTrainBench } from '../../../src/bench/train.ts';

it('bench train rows name the precision and the GEMM path (sgemm, gemmBf16:<path>)', async () => {
  const small = { preset: 'tiny', batch: 1, seq: 16, steps: 1, layers: 1 } as const;
  const f32 = await runTrainBench({ ...small, precision: 'f32' });
  const bf16 = await runTrainBench({ ...small, precision: 'bf16-mixed' });
  const [a, b] = [f32.results[0]!, bf16.results[0]!];
  assert.equal(a.precision, 'f32');
  assert.equal(a.gemm_path, 'sgemm');
  assert.equal(b.precision, 'bf16-mixed');
  // LoRA freezes the base: bf16-mixed builds it in bf16 directly
  assert.equal(a.dtype, 'f32');
  assert.equal(b.dtype, 'bf16');
  const expected =
    backendInfo().active === 'native' ? nativeBf16Paths().map((p) => `gemmBf16:${p}`) : ['gemmBf16:js'];
  assert.ok(expected.includes(String(b.gemm_path)), `gemm_path ${b.gemm_path} not in ${expected.join(', ')}`);
  assert.equal(b.gemm_path, gemmPathOf('bf16-mixed'));
  assert.equal(b.trainable_params, a.trainable_params);
  assert.ok(Number(b.tokens_per_s) > 0 && Number(a.tokens_per_s) > 0);
});

/** `attune bench gemm --precision`: bf16 rows time gemmBf16 and name the path that ran. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { nativeBf16Paths, nativeKernels } from '../../../src/backend/index.ts';
import { runGemmBench } from '../../../src/bench/gemm.ts';

it('bench gemm rows say their precision and, for bf16, the path', async () => {
  const backends: ('js' | 'native')[] = nativeKernels() ? ['js', 'native'] : ['js'];
  const bf16 = await runGemmBench({ sizes: [33], backends, seconds: 0.01, precision: 'bf16' });
  assert.equal(bf16.results.length, backends.length);
  for (const row of bf16.results) {
    assert.equal(row.kernel, 'gemmBf16');
    assert.equal(row.precision, 'bf16');
    if (row.backend === 'js') assert.equal(row.bf16Path, 'js');
    else
      assert.ok(
        nativeBf16Paths().includes(String(row.bf16Path)),
        `path ${row.bf16Path} not in ${nativeBf16Paths().join(', ')}`,
      );
    assert.ok(Number(row.ms) >= 0 && !Number.isNaN(Number(row.gflops)), `timing of ${JSON.stringify(row)}`);
  }
  const f32 = await runGemmBench({ sizes: [33], backends: ['js'], seconds: 0.01 });
  assert.equal(f32.results[0]!.kernel, 'sgemm');
  assert.equal(f32.results[0]!.precision, 'f32');
  assert.equal(f32.results[0]!.bf16Path, null);
});

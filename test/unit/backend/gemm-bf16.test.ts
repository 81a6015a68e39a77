/**
 * The js reference of bf16-compute GEMM (and whichever backend is active): round to nearest even
 * to bf16, and its results against f32 sgemm, bounded by the bf16 rounding of the inputs.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernels } from '../../../src/backend/index.ts';
import { roundToBf16 } from '../../../src/backend/js/gemm-bf16.ts';
import { jsKernels } from '../../../src/backend/js/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { rand } from './native-helpers.ts';

describe('roundToBf16', () => {
  it('rounds to nearest, ties to even, keeps NaN, infinities and signed zero', () => {
    assert.equal(roundToBf16(1 + 2 ** -8), 1); // tie, 1 is even
    assert.equal(roundToBf16(1 + 3 * 2 ** -8), 1 + 2 ** -6); // tie, rounds up to the even neighbour
    assert.equal(roundToBf16(1 + 2 ** -8 + 2 ** -20), 1 + 2 ** -7); // above the tie
    assert.equal(roundToBf16(-(1 + 2 ** -9)), -1);
    assert.equal(roundToBf16(3.140625), 3.140625); // exact in bf16
    assert.ok(Number.isNaN(roundToBf16(Number.NaN)));
    assert.equal(roundToBf16(Number.POSITIVE_INFINITY), Number.POSITIVE_INFINITY);
    assert.ok(Object.is(roundToBf16(-0), -0));
    assert.equal(roundToBf16(3.4028234663852886e38), Number.POSITIVE_INFINITY); // f32 max rounds up
  });
});

function product(
  k: Kernels,
  bf16: boolean,
  M: number,
  N: number,
  K: number,
  A: Float32Array,
  B: Float32Array,
) {
  const C = new Float32Array(M * N);
  const f = bf16 ? k.gemmBf16 : k.sgemm;
  f(false, true, M, N, K, 1, A, 0, K, B, 0, K, false, 0, C, 0, N, 1, 0, 0, 0);
  return C;
}

for (const [label, k] of [
  ['js', jsKernels],
  ['active backend', kernels()],
] as const) {
  describe(`gemmBf16 against f32 sgemm (${label})`, () => {
    it('equals sgemm of bf16-rounded inputs and stays within the bf16 rounding bound of f32', () => {
      const M = 9;
      const N = 21;
      const K = 77;
      const A = rand(M * K, 5);
      const B = rand(N * K, 6);
      const got = product(k, true, M, N, K, A, B);
      const exact = product(jsKernels, false, M, N, K, A, B);
      const rounded = product(jsKernels, false, M, N, K, A.map(roundToBf16), B.map(roundToBf16));
      let maxDiff = 0;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          // |a'b' - ab| <= (2 u + u^2) |a||b| with u = 2^-9 per rounded input; plus f32 accumulation.
          let bound = 0;
          for (let p = 0; p < K; p++) bound += Math.abs(A[i * K + p]! * B[j * K + p]!);
          bound = bound * (2 * 2 ** -9 + 2 ** -18) + 1e-5;
          const c = got[i * N + j]!;
          assert.ok(Math.abs(c - exact[i * N + j]!) <= bound, `C[${i},${j}] ${c} vs f32 ${exact[i * N + j]}`);
          assert.ok(
            Math.abs(c - rounded[i * N + j]!) <= 1e-5 * (1 + Math.abs(c)),
            `C[${i},${j}] vs rounded inputs`,
          );
          maxDiff = Math.max(maxDiff, Math.abs(c - exact[i * N + j]!));
        }
      }
      // The inputs really were rounded: bf16 products differ from f32 ones by far more than f32 noise.
      assert.ok(maxDiff > 1e-4, `gemmBf16 matches f32 sgemm to ${maxDiff}: inputs not rounded?`);
    });
  });
}

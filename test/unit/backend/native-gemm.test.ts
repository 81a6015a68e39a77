/**
 * Native SGEMM against the js oracle: awkward sizes, every transpose combination, leading
 * dimensions and offsets, alpha / beta (beta 0 never reads C), batches with strides (0 broadcasts),
 * bf16 B, sizes that cross the cache blocks and the thread split, and thread-count independence.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsKernels } from '../../../src/backend/js/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { assertBitwise, assertClose, describeNative, rand, randBf16, withThreads } from './native-helpers.ts';

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  alpha?: number;
  beta?: number;
  batch?: number;
  /** 'full' strides, or 0 (broadcast) for A or B */
  broadcast?: 'A' | 'B' | null;
  bf16?: boolean;
  pad?: number;
}

function run(k: Kernels, c: Case, seed: number, cInit?: Float32Array): Float32Array {
  const pad = c.pad ?? 0;
  const batch = c.batch ?? 1;
  const alpha = c.alpha ?? 1;
  const beta = c.beta ?? 0;
  const lda = (c.transA ? c.M : c.K) + pad;
  const ldb = (c.transB ? c.K : c.N) + pad;
  const ldc = c.N + pad;
  const aRows = c.transA ? c.K : c.M;
  const bRows = c.transB ? c.N : c.K;
  const aSize = aRows * lda;
  const bSize = bRows * ldb;
  const cSize = c.M * ldc;
  const strideA = c.broadcast === 'A' ? 0 : aSize;
  const strideB = c.broadcast === 'B' ? 0 : bSize;
  const aOffset = 3;
  const bOffset = 5;
  const cOffset = 2;
  const A = rand(aOffset + batch * aSize, seed);
  const B = c.bf16 ? randBf16(bOffset + batch * bSize, seed + 1) : rand(bOffset + batch * bSize, seed + 1);
  const C = cInit ? cInit.slice() : rand(cOffset + batch * cSize, seed + 2);
  k.sgemm(
    c.transA,
    c.transB,
    c.M,
    c.N,
    c.K,
    alpha,
    A,
    aOffset,
    lda,
    B,
    bOffset,
    ldb,
    !!c.bf16,
    beta,
    C,
    cOffset,
    ldc,
    batch,
    strideA,
    strideB,
    cSize,
  );
  return C;
}

function check(k: Kernels, c: Case, seed: number): void {
  const got = run(k, c, seed);
  const want = run(jsKernels, c, seed);
  // products of K terms in [-1, 1]: absolute error grows like sqrt(K) f32 ulps
  assertClose(`sgemm ${JSON.stringify(c)}`, got, want, { rtol: 1e-4, atol: 2e-6 * Math.max(1, c.K) });
}

describeNative('native sgemm', (k) => {
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [1, 7, 3],
    [3, 1, 17],
    [7, 33, 17],
    [17, 3, 33],
    [33, 17, 1],
    [6, 16, 64],
    [14, 32, 9],
    [65, 49, 300],
  ];
  for (const [M, N, K] of sizes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`${M}x${N}x${K} transA=${transA} transB=${transB}`, () => {
          check(k, { M, N, K, transA, transB }, M * 131 + N * 7 + K);
          check(k, { M, N, K, transA, transB, alpha: 0.7, beta: 1.3, pad: 3 }, M + N + K);
        });
      }
    }
  }

  it('beta 0 does not read C (NaN stays out)', () => {
    const c: Case = { M: 9, N: 21, K: 5, transA: false, transB: true };
    const cInit = new Float32Array(2 + 9 * 21).fill(Number.NaN);
    const got = run(k, c, 11, cInit);
    for (let i = 2; i < got.length; i++) assert.ok(Number.isFinite(got[i]!), `C[${i}] = ${got[i]}`);
  });

  it('K = 0 gives beta * C', () => {
    const c: Case = { M: 4, N: 5, K: 0, transA: false, transB: false, beta: 0.5 };
    assertClose('K=0', run(k, c, 3), run(jsKernels, c, 3));
  });

  it('batched, with strides and stride-0 broadcast of A or B', () => {
    for (const broadcast of [null, 'A', 'B'] as const) {
      for (const [transA, transB] of [
        [false, false],
        [true, true],
      ] as const) {
        check(k, { M: 13, N: 18, K: 11, transA, transB, batch: 3, broadcast, beta: 0.25 }, 17);
        check(k, { M: 70, N: 40, K: 50, transA, transB, batch: 5, broadcast }, 19);
      }
    }
  });

  it('bf16 B, both layouts', () => {
    for (const transB of [false, true]) {
      check(k, { M: 19, N: 37, K: 29, transA: false, transB, bf16: true }, 23);
      check(k, { M: 64, N: 130, K: 300, transA: true, transB, bf16: true, beta: 1 }, 29);
    }
  });

  it('sizes across cache blocks and the thread split (K > KC, M > MC)', () => {
    check(k, { M: 301, N: 263, K: 517, transA: false, transB: false }, 31);
    check(k, { M: 150, N: 97, K: 600, transA: true, transB: true, beta: 0.5 }, 37);
  });

  it('bitwise identical for 1, 2 and 3 threads', () => {
    const c: Case = { M: 203, N: 150, K: 333, transA: false, transB: true, beta: 0.5 };
    const one = withThreads(k, 1, () => run(k, c, 41));
    const two = withThreads(k, 2, () => run(k, c, 41));
    const three = withThreads(k, 3, () => run(k, c, 41));
    assertBitwise('1 vs 2 threads', one, two);
    assertBitwise('1 vs 3 threads', one, three);
  });

  it('a row of A gives bit-identical results alone or in a batch (decode = batched decode = prefill)', () => {
    // x W^T with W [N, K] (a Linear): rows 1..4 take the panel-streaming path, more rows the tiled one
    for (const bf16 of [false, true]) {
      for (const [N, K, beta] of [
        [600, 576, 0],
        [97, 1100, 1],
        [33, 7, 0.5],
      ] as const) {
        const rows = 20;
        const A = rand(rows * K, N + K);
        const B = bf16 ? randBf16(N * K, 5) : rand(N * K, 5);
        const C0 = rand(rows * N, 9);
        const product = (m: number, threads: number) =>
          withThreads(k, threads, () => {
            const C = C0.slice(0, m * N);
            k.sgemm(false, true, m, N, K, 1, A, 0, K, B, 0, K, bf16, beta, C, 0, N, 1, 0, 0, 0);
            return C;
          });
        const all = product(rows, 2);
        for (const m of [1, 2, 3, 4, 5]) {
          for (const threads of [1, 2]) {
            const few = product(m, threads);
            assertBitwise(
              `bf16=${bf16} N=${N} K=${K} beta=${beta}: ${m} rows vs ${rows} (${threads} threads)`,
              few,
              all.subarray(0, m * N),
            );
          }
        }
      }
    }
  });

  it('1-4 rows (vector panel pack, transposed in registers) against the js oracle: odd K and N tails, padding', () => {
    // K off the transpose block (16 / 8 / 4 lanes) and across KC; N off the panel width (32 / 16 / 8)
    for (const M of [1, 2, 3, 4]) {
      for (const [N, K] of [
        [1, 1],
        [15, 17],
        [31, 16],
        [33, 255],
        [47, 300],
        [70, 513],
      ] as const) {
        for (const transB of [true, false]) {
          for (const bf16 of [false, true]) {
            check(k, { M, N, K, transA: false, transB, bf16 }, M * 7 + N * 3 + K);
            check(k, { M, N, K, transA: false, transB, bf16, beta: 1, pad: 5 }, M + N + K);
          }
        }
      }
    }
  });

  it('rejects Float64Array and out-of-range views', () => {
    const a = new Float64Array(4);
    const f = new Float32Array(4);
    assert.throws(
      () => k.sgemm(false, false, 2, 2, 2, 1, a, 0, 2, f, 0, 2, false, 0, f, 0, 2, 1, 0, 0, 0),
      TypeError,
    );
    assert.throws(
      () => k.sgemm(false, false, 2, 2, 3, 1, f, 0, 3, f, 0, 2, false, 0, f, 0, 2, 1, 0, 0, 0),
      RangeError,
    );
  });
});

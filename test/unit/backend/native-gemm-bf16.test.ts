/**
 * Native gemmBf16 on each of its paths (AMX tiles, AVX512-BF16, the portable fallback), forced in
 * turn through nativeBf16Path, against the js reference: edge sizes (1, 17, 33, 65, not multiples
 * of the 16 / 32 tiles), every transpose, alpha / beta, offsets and padded leading dimensions,
 * batches with strides and broadcast, bf16 B, sizes across the cache blocks, thread-count
 * independence. A path this CPU lacks is skipped with a printed reason (the only hardware skips).
 *
 * Tolerance: both sides round the inputs to bf16 identically, so they differ only by accumulation
 * order (f32 on native, f64 on js): rtol 1e-4, atol 2e-6 * K, as for sgemm. A rounding mistake
 * (truncation, an input not rounded) is off by ~2^-9 relative and fails.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsKernels } from '../../../src/backend/js/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { type Bf16PathName, nativeBf16Path, nativeBf16Paths } from '../../../src/backend/native/load.ts';
import {
  assertBitwise,
  assertClose,
  BF16_HARDWARE,
  BF16_PATHS,
  describeNative,
  rand,
  randBf16,
  withThreads,
} from './native-helpers.ts';

interface Case {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  alpha?: number;
  beta?: number;
  batch?: number;
  broadcast?: 'A' | 'B' | null;
  bf16?: boolean;
  pad?: number;
}

function run(k: Kernels, c: Case, seed: number): Float32Array {
  const pad = c.pad ?? 0;
  const batch = c.batch ?? 1;
  const lda = (c.transA ? c.M : c.K) + pad;
  const ldb = (c.transB ? c.K : c.N) + pad;
  const ldc = c.N + pad;
  const aSize = (c.transA ? c.K : c.M) * lda;
  const bSize = (c.transB ? c.N : c.K) * ldb;
  const cSize = c.M * ldc;
  const [aOffset, bOffset, cOffset] = [3, 5, 2];
  const A = rand(aOffset + batch * aSize, seed);
  const B = c.bf16 ? randBf16(bOffset + batch * bSize, seed + 1) : rand(bOffset + batch * bSize, seed + 1);
  const C = rand(cOffset + batch * cSize, seed + 2);
  k.gemmBf16(
    c.transA,
    c.transB,
    c.M,
    c.N,
    c.K,
    c.alpha ?? 1,
    A,
    aOffset,
    lda,
    B,
    bOffset,
    ldb,
    !!c.bf16,
    c.beta ?? 0,
    C,
    cOffset,
    ldc,
    batch,
    c.broadcast === 'A' ? 0 : aSize,
    c.broadcast === 'B' ? 0 : bSize,
    cSize,
  );
  return C;
}

function check(k: Kernels, path: string, c: Case, seed: number): void {
  const got = run(k, c, seed);
  const want = run(jsKernels, c, seed);
  assertClose(`gemmBf16[${path}] ${JSON.stringify(c)}`, got, want, {
    rtol: 1e-4,
    atol: 2e-6 * Math.max(1, c.K),
  });
}

const SIZES: [number, number, number][] = [
  [1, 1, 1],
  [1, 17, 33],
  [17, 33, 65],
  [33, 17, 31],
  [65, 65, 65],
  [16, 32, 32],
  [31, 15, 64],
  [14, 32, 9],
  [3, 70, 2],
];

describeNative('native gemmBf16 paths', (k) => {
  it('reports an active path that is one of the available ones; the fallback is always there', () => {
    const paths = nativeBf16Paths();
    assert.ok(paths.includes('fallback'), `paths ${paths.join(', ')}`);
    assert.ok(paths.includes(nativeBf16Path()), `active ${nativeBf16Path()} not in ${paths.join(', ')}`);
    assert.throws(() => nativeBf16Path('tpu' as Bf16PathName), /'tpu' is not available on this CPU/);
  });

  for (const path of BF16_PATHS) {
    it(`${path}: edge sizes, transposes, alpha / beta, padding, batches, bf16 B, blocks, threads`, (t) => {
      if (!nativeBf16Paths().includes(path)) {
        t.skip(`${BF16_HARDWARE[path]} not available on this CPU`);
        return;
      }
      assert.equal(nativeBf16Path(path), path);
      try {
        for (const [M, N, K] of SIZES) {
          for (const transA of [false, true]) {
            for (const transB of [false, true]) {
              check(k, path, { M, N, K, transA, transB }, M * 131 + N * 7 + K);
              check(k, path, { M, N, K, transA, transB, alpha: 0.7, beta: 1.3, pad: 3 }, M + N + K);
            }
          }
        }
        check(k, path, { M: 4, N: 5, K: 0, transA: false, transB: false, beta: 0.5 }, 3);
        for (const broadcast of [null, 'A', 'B'] as const) {
          check(
            k,
            path,
            { M: 13, N: 18, K: 11, transA: false, transB: false, batch: 3, broadcast, beta: 0.25 },
            17,
          );
          check(k, path, { M: 70, N: 40, K: 50, transA: true, transB: true, batch: 5, broadcast }, 19);
        }
        for (const transB of [false, true]) {
          check(k, path, { M: 19, N: 37, K: 29, transA: false, transB, bf16: true }, 23);
          check(k, path, { M: 64, N: 130, K: 300, transA: true, transB, bf16: true, beta: 1 }, 29);
        }
        // K > KC (512 AMX, 256 AVX512-BF16), M > MC (256, 112), N > NC (1024, 2048 with 40 x 40).
        check(k, path, { M: 301, N: 263, K: 517, transA: false, transB: false }, 31);
        check(k, path, { M: 40, N: 2100, K: 40, transA: false, transB: true, beta: 0.5 }, 33);
        const c: Case = { M: 203, N: 150, K: 333, transA: false, transB: true, beta: 0.5 };
        const one = withThreads(k, 1, () => run(k, c, 41));
        const two = withThreads(k, 2, () => run(k, c, 41));
        const three = withThreads(k, 3, () => run(k, c, 41));
        assertBitwise(`${path}: 1 vs 2 threads`, one, two);
        assertBitwise(`${path}: 1 vs 3 threads`, one, three);
      } finally {
        nativeBf16Path('auto');
      }
    });

    it(`${path}: 1-4 rows (the few-rows path) give the bits of the same rows in a 20-row product`, (t) => {
      if (!nativeBf16Paths().includes(path)) {
        t.skip(`${BF16_HARDWARE[path]} not available on this CPU`);
        return;
      }
      assert.equal(nativeBf16Path(path), path);
      try {
        // K and N off the 32-multiples (k pairs, panels), K across a K block (512 AMX, 256 AVX512-BF16)
        for (const bf16 of [false, true]) {
          for (const transB of [true, false]) {
            for (const [N, K, beta] of [
              [600, 576, 0],
              [97, 1100, 1],
              [33, 7, 0.5],
              [1, 1, 0],
            ] as const) {
              const rows = 20;
              const A = rand(rows * K, N + K);
              const B = bf16 ? randBf16(N * K, 5) : rand(N * K, 5);
              const C0 = rand(rows * N, 9);
              const product = (m: number, threads: number) =>
                withThreads(k, threads, () => {
                  const C = C0.slice(0, m * N);
                  k.gemmBf16(
                    false,
                    transB,
                    m,
                    N,
                    K,
                    1,
                    A,
                    0,
                    K,
                    B,
                    0,
                    transB ? K : N,
                    bf16,
                    beta,
                    C,
                    0,
                    N,
                    1,
                    0,
                    0,
                    0,
                  );
                  return C;
                });
              const all = product(rows, 2);
              for (const m of [1, 2, 3, 4]) {
                for (const threads of [1, 2]) {
                  assertBitwise(
                    `${path} bf16=${bf16} transB=${transB} N=${N} K=${K}: ${m} rows vs ${rows} (${threads} threads)`,
                    product(m, threads),
                    all.subarray(0, m * N),
                  );
                }
              }
              check(k, path, { M: 3, N, K, transA: false, transB, bf16, beta, pad: 5 }, N * 3 + K);
            }
          }
        }
      } finally {
        nativeBf16Path('auto');
      }
    });
  }
});

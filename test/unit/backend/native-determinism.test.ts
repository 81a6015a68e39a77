/**
 * Determinism and memory of the native backend: dropout masks equal to the js backend's (Philox,
 * bitwise) and independent of the thread count; fused kernels bitwise reproducible across thread
 * counts (gh of the fused LM head: across repeated runs at one thread count); no memory growth over
 * 1000 repeated calls.
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsKernels as js } from '../../../src/backend/js/index.ts';
import type { Kernels, LinearCrossEntropyOutputs } from '../../../src/backend/kernels.ts';
import { assertBitwise, describeNative, rand, randInt, withThreads } from './native-helpers.ts';

function lceOuts(N: number): LinearCrossEntropyOutputs {
  return {
    lse: new Float32Array(N),
    logp: new Float32Array(N),
    entropy: new Float32Array(N),
    argmax: new Int32Array(N),
    top1: new Float32Array(N),
    top2: new Float32Array(N),
  };
}

/** Runs fn at 1, 2 and 3 threads and asserts every returned array is bitwise equal. */
function sameAcrossThreads(k: Kernels, what: string, fn: () => Float32Array[]): void {
  const ref = withThreads(k, 1, fn);
  for (const t of [2, 3]) {
    const got = withThreads(k, t, fn);
    got.forEach((a, i) => {
      assertBitwise(`${what} [${i}] at ${t} threads`, a, ref[i]!);
    });
  }
}

describeNative('native determinism', (nk) => {
  it('dropout and its backward equal the js backend bitwise (offsets past 2^32 too)', () => {
    for (const [n, p, offset] of [
      [1, 0.5, 0],
      [7, 0.1, 3],
      [1000, 0.3, 5],
      [70_001, 0.25, 2 ** 32 + 3],
      [33, 0.9, 2 ** 40 + 1],
      [100, 0, 0],
      [100, 1, 0],
    ] as const) {
      const x = rand(n, n);
      for (const seed of [0, 42, 0xdeadbeef]) {
        const [a, b] = [new Float32Array(n), new Float32Array(n)];
        nk.dropout(x, a, n, p, seed, offset);
        js.dropout(x, b, n, p, seed, offset);
        assertBitwise(`dropout n=${n} p=${p} offset=${offset} seed=${seed}`, a, b);
        const [ga, gb] = [new Float32Array(n), new Float32Array(n)];
        nk.dropoutBackward(x, ga, n, p, seed, offset);
        js.dropoutBackward(x, gb, n, p, seed, offset);
        assertBitwise('dropoutBackward', ga, gb);
      }
    }
  });

  it('dropout masks do not depend on the thread count', () => {
    const n = 300_001;
    const x = rand(n, 1);
    sameAcrossThreads(nk, 'dropout', () => {
      const out = new Float32Array(n);
      nk.dropout(x, out, n, 0.37, 99, 12_345);
      return [out];
    });
  });

  it('attention with dropout: forward and backward identical at 1, 2 and 3 threads', () => {
    const [B, Tq, Tk, Hq, Hkv, D] = [2, 150, 150, 6, 2, 32];
    const nq = B * Tq * Hq * D;
    const nkv = B * Tk * Hkv * D;
    const q = rand(nq, 1);
    const k = rand(nkv, 2);
    const v = rand(nkv, 3);
    const gOut = rand(nq, 4);
    sameAcrossThreads(nk, 'attention', () => {
      const out = new Float32Array(nq);
      const lse = new Float32Array(B * Hq * Tq);
      nk.attention(q, k, v, out, lse, B, Tq, Tk, Hq, Hkv, D, 0.17, true, 0.1, 7);
      const [gq, gk, gv] = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)];
      nk.attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, B, Tq, Tk, Hq, Hkv, D, 0.17, true, 0.1, 7);
      return [out, lse, gq, gk, gv];
    });
  });

  it('fused LM head: forward and gw identical across thread counts, gh reproducible', () => {
    const [N, d, V] = [97, 48, 3001];
    const h = rand(N * d, 1);
    const w = rand(V * d, 2, -0.3, 0.3);
    const labels = randInt(N, 3, 0, V);
    const cLogp = rand(N, 4);
    const cEnt = rand(N, 5);
    const run = (): Float32Array[] => {
      const o = lceOuts(N);
      nk.linearCrossEntropy(h, w, false, labels, N, d, V, o);
      const gw = new Float32Array(V * d);
      nk.linearCrossEntropyBackward(
        h,
        w,
        false,
        labels,
        o.lse,
        o.entropy,
        o.argmax,
        cLogp,
        cEnt,
        null,
        null,
        gw,
        N,
        d,
        V,
      );
      const f = (a: unknown) => a as Float32Array;
      return [f(o.lse), f(o.logp), f(o.entropy), f(o.top1), f(o.top2), new Float32Array(o.argmax.buffer), gw];
    };
    sameAcrossThreads(nk, 'lce', run);
    const ghRun = () => {
      const o = lceOuts(N);
      nk.linearCrossEntropy(h, w, false, labels, N, d, V, o);
      const gh = new Float32Array(N * d);
      nk.linearCrossEntropyBackward(
        h,
        w,
        false,
        labels,
        o.lse,
        o.entropy,
        o.argmax,
        cLogp,
        cEnt,
        null,
        gh,
        null,
        N,
        d,
        V,
      );
      return gh;
    };
    assertBitwise('lce gh repeated', ghRun(), ghRun());
  });

  it('row reductions (norm weight grads, scatterAdd, sumSquares) identical across thread counts', () => {
    const [rows, cols] = [1000, 576];
    const x = rand(rows * cols, 1);
    const gy = rand(rows * cols, 2);
    const wt = rand(cols, 3, 0.5, 1.5);
    const ids = randInt(rows, 4, 0, 17);
    sameAcrossThreads(nk, 'reductions', () => {
      const out = new Float32Array(rows * cols);
      const rstd = new Float32Array(rows);
      nk.rmsNorm(x, wt, out, rstd, rows, cols, 1e-5);
      const gx = new Float32Array(rows * cols);
      const gw = new Float32Array(cols);
      nk.rmsNormBackward(x, wt, rstd, gy, gx, gw, rows, cols);
      const mean = new Float32Array(rows);
      nk.layerNorm(x, wt, wt, out, mean, rstd, rows, cols, 1e-5);
      const lgx = new Float32Array(rows * cols);
      const lgw = new Float32Array(cols);
      const lgb = new Float32Array(cols);
      nk.layerNormBackward(x, wt, mean, rstd, gy, lgx, lgw, lgb, rows, cols);
      const table = new Float32Array(17 * cols);
      nk.scatterAddRows(gy, ids, table, rows, cols);
      const ss = Float32Array.of(nk.sumSquares(x, rows * cols));
      const red = new Float32Array(cols);
      nk.reduce('sum', x, red, 1, rows, cols);
      return [gx, gw, lgx, lgw, lgb, table, ss, red];
    });
  });

  it('1000 repeated kernel calls do not grow RSS by more than 5%', () => {
    const n = 256;
    const A = rand(n * n, 1);
    const B = rand(n * n, 2);
    const C = new Float32Array(n * n);
    const [T, H, D] = [64, 3, 32];
    const q = rand(T * H * D, 3);
    const out = new Float32Array(T * H * D);
    const lse = new Float32Array(H * T);
    const gq = new Float32Array(T * H * D);
    const gk = new Float32Array(T * H * D);
    const gv = new Float32Array(T * H * D);
    const [N, d, V] = [32, 32, 500];
    const h = rand(N * d, 4);
    const w = rand(V * d, 5);
    const labels = randInt(N, 6, 0, V);
    const o = lceOuts(N);
    const gw = new Float32Array(V * d);
    const gh = new Float32Array(N * d);
    const x = rand(10_000, 7);
    const y = new Float32Array(10_000);
    const step = () => {
      nk.sgemm(false, true, n, n, n, 1, A, 0, n, B, 0, n, false, 0, C, 0, n, 1, 0, 0, 0);
      nk.attention(q, q, q, out, lse, 1, T, T, H, H, D, 0.2, true, 0.1, 1);
      nk.attentionBackward(q, q, q, out, lse, q, gq, gk, gv, 1, T, T, H, H, D, 0.2, true, 0.1, 1);
      nk.linearCrossEntropy(h, w, false, labels, N, d, V, o);
      nk.linearCrossEntropyBackward(
        h,
        w,
        false,
        labels,
        o.lse,
        o.entropy,
        o.argmax,
        o.lse,
        o.lse,
        null,
        gh,
        gw,
        N,
        d,
        V,
      );
      nk.softmax(x, y, 10, 1000);
      nk.binary('add', x, [1], y, [1], y, [10_000]);
      nk.dropout(x, y, 10_000, 0.1, 3, 0);
    };
    for (let i = 0; i < 50; i++) step();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < 1000; i++) step();
    const after = process.memoryUsage().rss;
    assert.ok(after <= before * 1.05, `RSS grew from ${before} to ${after} bytes over 1000 calls`);
  });
});

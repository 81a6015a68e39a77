/**
 * Native attentionBf16 / attentionBf16Backward on each bf16 GEMM path (AMX, AVX512-BF16, the
 * rounding fallback), forced in turn, against the js reference (src/backend/js/attention.ts): GQA,
 * causal and full, a KV-cache shape (Tq < Tk), dropout, head sizes off the 32-multiples, and rows
 * longer than one key tile. A path this CPU lacks is skipped with a printed reason.
 *
 * Tolerance (of the largest magnitude): inside one key tile (Tk <= 128) the forward rounds the same
 * values on both sides and differs only by accumulation order (1e-5); across key tiles native
 * rounds exp(s - running max), js exp(s - row max) (1.5e-3). In the backward dS = P (dP - delta)
 * comes from f32 (native) or f64 (js) values and cancels, so an element near a bf16 rounding tie
 * may round the other way: 1e-3. Products whose inputs were not rounded differ from the reference
 * by ~3e-3 (checked: native bf16 stays more than 5e-4 away from f32).
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { jsKernels } from '../../../src/backend/js/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { nativeBf16Path, nativeBf16Paths } from '../../../src/backend/native/load.ts';
import {
  assertBitwise,
  BF16_HARDWARE,
  BF16_PATHS,
  describeNative,
  rand,
  withThreads,
} from './native-helpers.ts';

interface Shape {
  B: number;
  Tq: number;
  Tk: number;
  Hq: number;
  Hkv: number;
  D: number;
  causal: boolean;
  dropP: number;
}

const SHAPES: Shape[] = [
  { B: 1, Tq: 1, Tk: 1, Hq: 1, Hkv: 1, D: 1, causal: false, dropP: 0 },
  { B: 2, Tq: 5, Tk: 5, Hq: 4, Hkv: 2, D: 17, causal: true, dropP: 0 },
  { B: 1, Tq: 17, Tk: 33, Hq: 2, Hkv: 1, D: 65, causal: true, dropP: 0 },
  { B: 2, Tq: 1, Tk: 40, Hq: 6, Hkv: 2, D: 64, causal: true, dropP: 0 },
  { B: 1, Tq: 16, Tk: 16, Hq: 2, Hkv: 2, D: 33, causal: true, dropP: 0.1 },
  { B: 1, Tq: 90, Tk: 90, Hq: 3, Hkv: 1, D: 64, causal: false, dropP: 0 },
  { B: 1, Tq: 300, Tk: 300, Hq: 2, Hkv: 1, D: 64, causal: true, dropP: 0 },
];

interface Result {
  out: Float32Array;
  lse: Float32Array;
  grads: Float32Array[];
}

/** Forward and backward of one shape on kernels k (bf16 or f32 compute), seeded inputs. */
function run(k: Kernels, s: Shape, bf16: boolean, seed: number): Result {
  const nq = s.B * s.Tq * s.Hq * s.D;
  const nk = s.B * s.Tk * s.Hkv * s.D;
  const [q, kk, v, g] = [
    rand(nq, seed, -2, 2),
    rand(nk, seed + 1, -2, 2),
    rand(nk, seed + 2),
    rand(nq, seed + 3),
  ];
  const dims = [s.B, s.Tq, s.Tk, s.Hq, s.Hkv, s.D, 1 / Math.sqrt(s.D), s.causal, s.dropP, 5] as const;
  const out = new Float32Array(nq);
  const lse = new Float32Array(s.B * s.Hq * s.Tq);
  (bf16 ? k.attentionBf16 : k.attention).call(k, q, kk, v, out, lse, ...dims);
  const grads = [new Float32Array(nq), new Float32Array(nk), new Float32Array(nk)] as const;
  (bf16 ? k.attentionBf16Backward : k.attentionBackward).call(k, q, kk, v, out, lse, g, ...grads, ...dims);
  return { out, lse, grads: [...grads] };
}

/** max |a - b| / max |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return scale > 0 ? d / scale : d;
}

const NAMES = ['gq', 'gk', 'gv'];

describeNative('native attentionBf16 paths', (k) => {
  for (const path of BF16_PATHS) {
    it(`${path}: forward and backward match the js bf16 reference, differ from f32, and do not depend on threads`, (t) => {
      if (!nativeBf16Paths().includes(path)) {
        t.skip(`${BF16_HARDWARE[path]} not available on this CPU`);
        return;
      }
      assert.equal(nativeBf16Path(path), path);
      try {
        SHAPES.forEach((s, i) => {
          const what = `${path} ${JSON.stringify(s)}`;
          const got = run(k, s, true, 10 * i + 1);
          const want = run(jsKernels, s, true, 10 * i + 1);
          const f32 = run(jsKernels, s, false, 10 * i + 1);
          const oneTile = s.Tk <= 128;
          const outTol = oneTile ? 1e-5 : 1.5e-3;
          assert.ok(
            relDiff(got.out, want.out) <= outTol,
            `${what}: out off by ${relDiff(got.out, want.out)}`,
          );
          assert.ok(relDiff(got.lse, want.lse) <= 1e-6, `${what}: lse off by ${relDiff(got.lse, want.lse)}`);
          got.grads.forEach((x, j) => {
            const d = relDiff(x, want.grads[j]!);
            assert.ok(d <= 1e-3, `${what}: ${NAMES[j]} off by ${d}`);
          });
          if (s.D > 1 && s.Tk > 1) {
            // the rounding took place: the f32 result is farther from native bf16 than js bf16 is
            const fromF32 = relDiff(got.out, f32.out);
            assert.ok(fromF32 > 5e-4, `${what}: bf16 out equals f32 out to ${fromF32}`);
            assert.ok(relDiff(got.grads[0]!, f32.grads[0]!) > 5e-4, `${what}: gq equals f32's`);
          }
        });
        const s = SHAPES[6]!;
        const one = withThreads(k, 1, () => run(k, s, true, 3));
        const three = withThreads(k, 3, () => run(k, s, true, 3));
        assertBitwise(`${path}: out, 1 vs 3 threads`, one.out, three.out);
        one.grads.forEach((x, j) => {
          assertBitwise(`${path}: ${NAMES[j]}, 1 vs 3 threads`, x, three.grads[j]!);
        });
      } finally {
        nativeBf16Path('auto');
      }
    });
  }
});

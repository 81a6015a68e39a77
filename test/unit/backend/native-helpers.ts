/**
 * Shared helpers of the native-backend tests: the addon (or why it is missing), seeded inputs,
 * tolerance checks against the js oracle, and running a function at a given pool size.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nativeKernels } from '../../../src/backend/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { type Bf16PathName, loadNative } from '../../../src/backend/native/load.ts';
import { Rng } from '../../../src/tensor/rng.ts';

export const native: Kernels | null = nativeKernels();
export const nativeRequired = process.env.CI === 'true' || process.env.ATTUNE_REQUIRE_NATIVE === '1';

interface NativeAddonExtras {
  init(threads: number): void;
  cpuInfo(): { simd: string; features: string[] };
}

/** The addon's init / cpuInfo (not part of Kernels). */
export function addon(): NativeAddonExtras {
  return native as unknown as NativeAddonExtras;
}

/**
 * describe() that runs when the addon loaded, is skipped with the reason otherwise, and fails
 * when the native backend is required (CI=true or ATTUNE_REQUIRE_NATIVE=1).
 */
export function describeNative(name: string, body: (k: Kernels) => void): void {
  if (native) {
    describe(name, () => body(native));
    return;
  }
  const reason = `native addon not built: ${loadNative().error}`;
  if (nativeRequired) {
    describe(name, () => {
      it('the native addon loads', () =>
        assert.fail(`${reason} (required: CI=true or ATTUNE_REQUIRE_NATIVE=1)`));
    });
    return;
  }
  console.log(`# skipping ${name}: ${reason}`);
  describe(name, { skip: reason }, () => {});
}

/** Uniform values in [lo, hi) from a seeded generator. */
export function rand(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng.uniform();
  return out;
}

/** Random bf16 bit patterns of values in [lo, hi). */
export function randBf16(n: number, seed: number, lo = -1, hi = 1): Uint16Array {
  const f = rand(n, seed, lo, hi);
  const bits = new Uint32Array(f.buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = bits[i]! >>> 16;
  return out;
}

export function randInt(n: number, seed: number, lo: number, hi: number): Int32Array {
  const rng = new Rng(seed);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + rng.int(hi - lo);
  return out;
}

export interface CloseOptions {
  /** Relative tolerance (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
}

/** |got - want| <= atol + rtol |want| elementwise (NaN matches NaN, infinities must match). */
export function assertClose(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  opts: CloseOptions = {},
): void {
  const rtol = opts.rtol ?? 1e-4;
  const atol = opts.atol ?? 1e-5;
  assert.equal(got.length, want.length, `${what}: length ${got.length} != ${want.length}`);
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (g === w) continue;
      assert.fail(`${what}: element ${i}: native ${g}, js ${w}`);
    }
    if (Math.abs(g - w) > atol + rtol * Math.abs(w)) {
      assert.fail(`${what}: element ${i}: native ${g}, js ${w} (|diff| ${Math.abs(g - w)})`);
    }
  }
}

/** Bitwise equality of two float arrays (NaN payloads included). */
export function assertBitwise(what: string, a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length, `${what}: lengths`);
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) {
    if (ua[i] !== ub[i]) assert.fail(`${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
  }
}

/** Runs fn with the native pool resized to `threads`, then restores the previous size. */
export function withThreads<T>(k: Kernels, threads: number, fn: () => T): T {
  const before = k.threads();
  addon().init(threads);
  try {
    return fn();
  } finally {
    addon().init(before);
  }
}

/** The native gemmBf16 paths the per-path tests force in turn, and what each needs from the CPU. */
export const BF16_PATHS: Exclude<Bf16PathName, 'auto'>[] = ['amx', 'avx512bf16', 'fallback'];
export const BF16_HARDWARE: Record<string, string> = {
  amx: 'AMX',
  avx512bf16: 'AVX512-BF16',
  fallback: 'the fallback',
};

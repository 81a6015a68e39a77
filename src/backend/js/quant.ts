/**
 * The js reference of block-quantised frozen weights (QLoRA-style storage) and of the GEMM that
 * dequantises them a tile at a time (native: native/src/qgemm.cpp; docs/kernels.md, "Quantised
 * frozen weights").
 *
 * Layout (both formats): the array's elements in row-major order are cut into blocks of
 * `QUANT_BLOCK` (64) consecutive elements (the last one may be short); each block has one f32
 * absmax, `scales[b] = max |x|` over block b. Codes are bytes, carried in a Uint16Array (the
 * manifest's u16 kind) in little-endian order: byte j is the low byte of word j >> 1 for even j.
 * - int8: symmetric, one signed byte per element, q = round(x / step) with step = f32(absmax / 127),
 *   x' = f32(q * step): every element within step / 2 = absmax / 254 of the input.
 * - nf4: QLoRA's 16 NormalFloat levels (bitsandbytes' `dDequantizeNF4`, csrc/cpu_ops.h), the index
 *   of the level nearest x / absmax (ties to the upper level), two per byte with the first element
 *   of a pair in the high nibble (as bitsandbytes packs); x' = f32(level * absmax).
 * A block of zeros has absmax 0 and dequantises to zeros. Quantisation divides in f64 and rounds
 * half up (floor(v + 0.5)) so that the native kernel, which does the same, writes identical codes.
 */
import type { Bf16Array, FloatArray, QuantFormat } from '../kernels.ts';
import { bf16, sgemm } from './basic.ts';

/** Elements per quantisation block (one f32 absmax each). */
export const QUANT_BLOCK = 64;

/** QLoRA's NF4 levels, index 0..15 (bitsandbytes' table; 7 is exactly 0, 15 is 1). */
export const NF4_LEVELS: Float32Array = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** Midpoints between consecutive NF4 levels (f64 of the f32 levels): index i is nearest below mids[i]. */
const NF4_MIDS: Float64Array = Float64Array.from(
  { length: 15 },
  (_, i) => (NF4_LEVELS[i]! + NF4_LEVELS[i + 1]!) / 2,
);

/** Uint16 words that hold the codes of n elements. */
export function quantCodeWords(format: QuantFormat, n: number): number {
  return format === 'int8' ? Math.ceil(n / 2) : Math.ceil(n / 4);
}

/** Number of blocks (scales) of n elements. */
export function quantBlocks(n: number): number {
  return Math.ceil(n / QUANT_BLOCK);
}

/** The NF4 index of the level nearest v (v in [-1, 1]; ties go up). */
function nf4Index(v: number): number {
  let lo = 0;
  let hi = 15;
  // binary search over the 15 midpoints: the first index whose upper midpoint exceeds v
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (v >= NF4_MIDS[mid]!) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function bytesOf(codes: Uint16Array): Uint8Array {
  return new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength);
}

/** Kernels.quantize: see kernels.ts and the file comment. */
export function quantize(
  format: QuantFormat,
  src: FloatArray | Bf16Array,
  srcBf16: boolean,
  n: number,
  codes: Uint16Array,
  scales: Float32Array,
): number {
  const bytes = bytesOf(codes);
  const read = srcBf16 ? (i: number) => bf16(src[i]!) : (i: number) => src[i]!;
  let nonFinite = 0;
  const x = new Float32Array(QUANT_BLOCK);
  for (let b = 0, start = 0; start < n; b++, start += QUANT_BLOCK) {
    const len = Math.min(QUANT_BLOCK, n - start);
    let absmax = 0;
    for (let i = 0; i < len; i++) {
      let v = read(start + i);
      if (!Number.isFinite(v)) {
        nonFinite++;
        v = 0;
      }
      x[i] = v;
      const a = Math.abs(x[i]!);
      if (a > absmax) absmax = a;
    }
    scales[b] = absmax;
    if (format === 'int8') {
      const step = Math.fround(absmax / 127);
      for (let i = 0; i < len; i++) {
        const q = step > 0 ? Math.min(127, Math.max(-127, Math.floor(x[i]! / step + 0.5))) : 0;
        bytes[start + i] = q & 0xff;
      }
    } else {
      for (let i = 0; i < len; i++) {
        const idx = absmax > 0 ? nf4Index(x[i]! / absmax) : 7;
        const j = start + i;
        const byte = j >> 1;
        bytes[byte] = j & 1 ? (bytes[byte]! & 0xf0) | idx : (idx << 4) | (bytes[byte]! & 0x0f);
      }
    }
  }
  return nonFinite;
}

/** Element j of a quantised array (f32). */
function elementAt(format: QuantFormat, bytes: Uint8Array, scales: Float32Array, j: number): number {
  const absmax = scales[j >> 6]!;
  if (format === 'int8') {
    const q = (bytes[j]! << 24) >> 24;
    return Math.fround(q * Math.fround(absmax / 127));
  }
  const byte = bytes[j >> 1]!;
  return Math.fround(NF4_LEVELS[j & 1 ? byte & 0x0f : byte >> 4]! * absmax);
}

/** Kernels.dequantize: out[i] = element offset + i. */
export function dequantize(
  format: QuantFormat,
  codes: Uint16Array,
  scales: Float32Array,
  offset: number,
  n: number,
  out: Float32Array,
): void {
  const bytes = bytesOf(codes);
  for (let i = 0; i < n; i++) out[i] = elementAt(format, bytes, scales, offset + i);
}

/** Rows of W dequantised at once by the js qgemm (a panel: never the whole matrix). */
const PANEL_ROWS = 64;

/**
 * Kernels.qgemm: W (row-major [rows, cols], rows = N when transW, else K) is dequantised a panel of
 * PANEL_ROWS rows at a time into an f32 buffer, which sgemm (f64 accumulation) multiplies into C.
 */
export function qgemm(
  transW: boolean,
  M: number,
  N: number,
  K: number,
  A: FloatArray,
  lda: number,
  format: QuantFormat,
  codes: Uint16Array,
  scales: Float32Array,
  beta: number,
  C: FloatArray,
  ldc: number,
): void {
  const rows = transW ? N : K;
  const cols = transW ? K : N;
  if (M === 0 || N === 0) return;
  if (rows === 0 || cols === 0 || K === 0) {
    // an empty product: C = beta C
    sgemm(
      false,
      false,
      M,
      N,
      0,
      1,
      A,
      0,
      lda,
      new Float32Array(0),
      0,
      Math.max(1, N),
      false,
      beta,
      C,
      0,
      ldc,
      1,
      0,
      0,
      0,
    );
    return;
  }
  const panel = new Float32Array(Math.min(PANEL_ROWS, rows) * cols);
  for (let r0 = 0; r0 < rows; r0 += PANEL_ROWS) {
    const nr = Math.min(PANEL_ROWS, rows - r0);
    dequantize(format, codes, scales, r0 * cols, nr * cols, panel);
    if (transW) {
      // C[:, r0:r0+nr] = A W[r0:r0+nr, :]^T (+ beta C): each panel writes its own columns of C
      sgemm(false, true, M, nr, K, 1, A, 0, lda, panel, 0, cols, false, beta, C, r0, ldc, 1, 0, 0, 0);
    } else {
      // C += A[:, r0:r0+nr] W[r0:r0+nr, :]: panels accumulate along K, the first one applies beta
      sgemm(
        false,
        false,
        M,
        N,
        nr,
        1,
        A,
        r0,
        lda,
        panel,
        0,
        cols,
        false,
        r0 === 0 ? beta : 1,
        C,
        0,
        ldc,
        1,
        0,
        0,
        0,
      );
    }
  }
}

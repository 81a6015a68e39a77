/**
 * Batched matrix multiply with transpose flags and batch broadcasting, in f32 (sgemm) or in bf16
 * compute (gemmBf16: inputs rounded to bf16, products accumulated in f32) for `bf16-mixed` training.
 */
import type { FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { quantizedMatmul, quantizedOf } from '../quant.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { reshape } from './shape.ts';
import { broadcastShapes, kernelsOf, sameShape, sumToShape } from './util.ts';

export interface MatmulOptions {
  /** Use a's last two dims transposed. */
  transA?: boolean;
  /** Use b's last two dims transposed (x @ W^T for a [out, in] weight). */
  transB?: boolean;
  /**
   * Compute precision (default 'f32'). 'bf16': every element of both operands is rounded to bf16
   * on its way into the GEMM (a bf16 operand is used as is) and products are accumulated in f32;
   * the backward GEMMs (gradient wrt each operand) run in bf16 compute too.
   */
  precision?: ComputePrecision;
}

/** Compute precision of a GEMM: f32, or bf16 inputs with f32 accumulation. */
export type ComputePrecision = 'f32' | 'bf16';

function describePair(a: Tensor, b: Tensor, o: MatmulOptions): string {
  return `${formatShape(a.shape)}${o.transA ? 'ᵀ' : ''} x ${formatShape(b.shape)}${o.transB ? 'ᵀ' : ''}`;
}

/**
 * op(a) @ op(b) over the last two dims, broadcasting leading (batch) dims. `b` may be bf16 (a
 * frozen weight) or a quantised matrix (`quantizedOf`: int8 / NF4, multiplied by `qgemm`); `a`
 * must be f32/f64 and b's dtype must match unless bf16 with f32 a.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const transA = options.transA ?? false;
  const transB = options.transB ?? false;
  const precision = options.precision ?? 'f32';
  if (precision !== 'f32' && precision !== 'bf16')
    throw new TypeError(`matmul: precision must be 'f32' or 'bf16', found '${String(precision)}'`);
  if (a.rank < 2 || b.rank < 2) {
    throw new RangeError(`matmul: ${describePair(a, b, options)}: both operands need at least 2 dims`);
  }
  if (a.dtype !== 'f32' && a.dtype !== 'f64')
    throw new TypeError(`matmul: left operand ${a.describe()} must be f32 or f64`);
  // a quantised frozen weight (int8 / NF4): dequantised tile by tile inside the kernel, in f32
  // compute whatever the precision (its values are exact in f32)
  const q = quantizedOf(b);
  if (q) {
    if (transA)
      throw new TypeError(
        `matmul: ${describePair(a, b, options)}: a quantised right operand needs transA false`,
      );
    return quantizedMatmul(a, q, transB, b.name);
  }
  const bBf16 = b.dtype === 'bf16';
  if (!(b.dtype === a.dtype || (bBf16 && a.dtype === 'f32'))) {
    throw new TypeError(
      `matmul: ${describePair(a, b, options)}: dtypes ${a.dtype} and ${b.dtype} do not combine`,
    );
  }
  // [.., M, K] x [K, N]: fold a's batch dims into M, one GEMM (and one weight-gradient GEMM).
  if (b.rank === 2 && a.rank > 2 && !transA) {
    const K = a.shape[a.rank - 1]!;
    const flat = reshape(a, [-1, K]);
    const out2 = matmul(flat, b, options);
    return reshape(out2, [...a.shape.slice(0, -1), out2.shape[1]!]);
  }
  const M = a.shape[a.rank - (transA ? 1 : 2)]!;
  const K = a.shape[a.rank - (transA ? 2 : 1)]!;
  const Kb = b.shape[b.rank - (transB ? 1 : 2)]!;
  const N = b.shape[b.rank - (transB ? 2 : 1)]!;
  if (K !== Kb) throw new RangeError(`matmul: ${describePair(a, b, options)}: inner dims ${K} != ${Kb}`);
  const aBatch = a.shape.slice(0, -2);
  const bBatch = b.shape.slice(0, -2);
  const batchShape = broadcastShapes(aBatch, bBatch, `matmul ${describePair(a, b, options)}`);
  const batch = batchShape.reduce((p, d) => p * d, 1);
  const out = Tensor.alloc([...batchShape, M, N], a.dtype, false);
  const backend = kernelsOf(a);
  const gemm = precision === 'bf16' ? backend.gemmBf16.bind(backend) : backend.sgemm.bind(backend);
  const lda = a.shape[a.rank - 1]!;
  const ldb = b.shape[b.rank - 1]!;
  const aFull = sameShape(aBatch, batchShape);
  const bFull = sameShape(bBatch, batchShape);
  const aSingle = aBatch.every((d) => d === 1);
  const bSingle = bBatch.every((d) => d === 1);
  if ((aFull || aSingle) && (bFull || bSingle)) {
    gemm(
      transA,
      transB,
      M,
      N,
      K,
      1,
      a.data as FloatArray,
      0,
      lda,
      b.data as FloatArray,
      0,
      ldb,
      bBf16,
      0,
      out.data as FloatArray,
      0,
      N,
      batch,
      aSingle && !aFull ? 0 : M * K,
      bSingle && !bFull ? 0 : K * N,
      M * N,
    );
  } else {
    // general broadcast: one GEMM per output batch entry
    const aStrides = batchStrides(aBatch, batchShape, M * K);
    const bStrides = batchStrides(bBatch, batchShape, K * N);
    const idx = new Array<number>(batchShape.length).fill(0);
    for (let i = 0; i < batch; i++) {
      let ao = 0;
      let bo = 0;
      for (let d = 0; d < idx.length; d++) {
        ao += idx[d]! * aStrides[d]!;
        bo += idx[d]! * bStrides[d]!;
      }
      gemm(
        transA,
        transB,
        M,
        N,
        K,
        1,
        a.data as FloatArray,
        ao,
        lda,
        b.data as FloatArray,
        bo,
        ldb,
        bBf16,
        0,
        out.data as FloatArray,
        i * M * N,
        N,
        1,
        0,
        0,
        0,
      );
      for (let d = idx.length - 1; d >= 0; d--) {
        if (++idx[d]! < batchShape[d]!) break;
        idx[d] = 0;
      }
    }
  }
  if (needsGrad(a, b)) {
    // the input's gradient needs only the other operand: a frozen weight's input is not kept
    const saved = [...(a.requiresGrad ? [b] : []), ...(b.requiresGrad ? [a] : [])];
    record('matmul', [a, b], [out], saved, ([g]) => {
      let ga: Tensor | null = null;
      let gb: Tensor | null = null;
      if (a.requiresGrad) {
        ga = transA
          ? matmul(b, g!, { transA: transB, transB: true, precision })
          : matmul(g!, b, { transB: !transB, precision });
        ga = sumToShape(ga, a.shape);
      }
      if (b.requiresGrad) {
        gb = transB
          ? matmul(g!, a, { transA: true, transB: transA, precision })
          : matmul(a, g!, { transA: !transA, precision });
        gb = sumToShape(gb, b.shape);
      }
      return [ga, gb];
    });
  }
  return out;
}

/** matmul in bf16 compute: `matmul(a, b, { ...options, precision: 'bf16' })`. */
export function matmulBf16(a: Tensor, b: Tensor, options: Omit<MatmulOptions, 'precision'> = {}): Tensor {
  return matmul(a, b, { ...options, precision: 'bf16' });
}

function batchStrides(shape: readonly number[], batchShape: readonly number[], matrix: number): number[] {
  const strides = new Array<number>(batchShape.length).fill(0);
  let s = matrix;
  for (let i = shape.length - 1; i >= 0; i--) {
    const j = batchShape.length - shape.length + i;
    strides[j] = shape[i] === 1 ? 0 : s;
    s *= shape[i]!;
  }
  return strides;
}

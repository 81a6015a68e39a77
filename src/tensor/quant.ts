/**
 * Block-quantised matrices (QLoRA-style storage of frozen weights: int8 absmax or NF4, blocks of 64
 * with one f32 absmax each; layout in src/backend/js/quant.ts) and the matrix product with one,
 * which dequantises a tile at a time inside the kernel (`qgemm`) and never holds the f32 matrix.
 * A tensor that stands for a quantised matrix (nn's QuantizedParameter) carries it under
 * `QUANT_STORAGE`; `matmul` sees it there and multiplies through `quantizedMatmul`.
 */
import { kernelsFor } from '../backend/index.ts';
import type { FloatArray, QuantFormat } from '../backend/kernels.ts';
import { needsGrad, record } from './autograd.ts';
import { reshape } from './ops/shape.ts';
import { formatShape, Tensor } from './tensor.ts';

export type { QuantFormat } from '../backend/kernels.ts';

/** The quantised formats, for config and CLI choices. */
export const QUANT_FORMATS: readonly QuantFormat[] = ['int8', 'nf4'];

/** Elements per block (one f32 absmax each). */
export const QUANT_BLOCK_SIZE = 64;

/** Whether `s` names a quantised format. */
export function isQuantFormat(s: unknown): s is QuantFormat {
  return s === 'int8' || s === 'nf4';
}

/** A row-major [rows, cols] matrix stored block-quantised: packed codes and one absmax per block. */
export class QuantizedMatrix {
  /** Quantise `t` (an f32 or bf16 matrix [rows, cols]) in `format`; non-finite values are an error. */
  static from(t: Tensor, format: QuantFormat, where = 'quantize'): QuantizedMatrix {
    if (!isQuantFormat(format))
      throw new TypeError(`${where}: format must be int8 or nf4, found '${String(format)}'`);
    if (t.rank !== 2) throw new RangeError(`${where}: expected a matrix, found ${t.describe()}`);
    if (t.dtype !== 'f32' && t.dtype !== 'bf16')
      throw new TypeError(`${where}: expected an f32 or bf16 matrix, found ${t.describe()}`);
    const [rows, cols] = t.shape as [number, number];
    const n = rows * cols;
    const codes = new Uint16Array(format === 'int8' ? Math.ceil(n / 2) : Math.ceil(n / 4));
    const scales = new Float32Array(Math.ceil(n / QUANT_BLOCK_SIZE));
    const bad = kernelsFor(false).quantize(
      format,
      t.data as Float32Array | Uint16Array,
      t.dtype === 'bf16',
      n,
      codes,
      scales,
    );
    if (bad > 0)
      throw new RangeError(
        `${where}: ${t.describe()} has ${bad} non-finite value(s); a quantised weight needs finite values`,
      );
    return new QuantizedMatrix(format, rows, cols, codes, scales);
  }

  /** Wrap existing codes and scales (sizes checked). */
  constructor(
    readonly format: QuantFormat,
    readonly rows: number,
    readonly cols: number,
    readonly codes: Uint16Array,
    readonly scales: Float32Array,
  ) {
    const n = rows * cols;
    const words = format === 'int8' ? Math.ceil(n / 2) : Math.ceil(n / 4);
    if (codes.length !== words || scales.length !== Math.ceil(n / QUANT_BLOCK_SIZE))
      throw new RangeError(
        `QuantizedMatrix ${format} [${rows}, ${cols}]: expected ${words} code words and ${Math.ceil(n / QUANT_BLOCK_SIZE)} scales, found ${codes.length} and ${scales.length}`,
      );
  }

  /** Bytes held (codes + scales). */
  get bytes(): number {
    return this.codes.byteLength + this.scales.byteLength;
  }

  /** The f32 values of rows [r0, r0 + count) (a fresh Float32Array; tests, merges, one row at a time). */
  dequantizeRows(r0 = 0, count = this.rows - r0): Float32Array {
    if (r0 < 0 || count < 0 || r0 + count > this.rows)
      throw new RangeError(
        `QuantizedMatrix.dequantizeRows: rows [${r0}, ${r0 + count}) outside [0, ${this.rows})`,
      );
    const out = new Float32Array(count * this.cols);
    kernelsFor(false).dequantize(this.format, this.codes, this.scales, r0 * this.cols, out.length, out);
    return out;
  }
}

/** The key under which a tensor carries the quantised matrix it stands for. */
export const QUANT_STORAGE: unique symbol = Symbol('attune.quantStorage');

/** The quantised matrix `t` stands for, or null. */
export function quantizedOf(t: Tensor): QuantizedMatrix | null {
  return (t as { [QUANT_STORAGE]?: QuantizedMatrix })[QUANT_STORAGE] ?? null;
}

/**
 * op(a) @ op(W) with W quantised: `transB` true is x W^T (a Linear's forward: a [.., in], W
 * [out, in]), false x W. The gradient flows to `a` only (a quantised weight is frozen): it is the
 * product with the other orientation of W, also dequantised inside the kernel.
 */
export function quantizedMatmul(a: Tensor, w: QuantizedMatrix, transB: boolean, name = 'W'): Tensor {
  if (a.dtype !== 'f32' && a.dtype !== 'f64')
    throw new TypeError(`matmul: left operand ${a.describe()} must be f32 or f64`);
  const K = transB ? w.cols : w.rows;
  const N = transB ? w.rows : w.cols;
  if (a.rank < 1 || a.shape[a.rank - 1] !== K)
    throw new RangeError(
      `matmul: ${formatShape(a.shape)} x ${w.format} '${name}' [${w.rows}, ${w.cols}]${transB ? 'ᵀ' : ''}: inner dims ${a.shape[a.rank - 1]} != ${K}`,
    );
  if (a.rank !== 2) {
    const flat = reshape(a, [-1, K]);
    const out = quantizedMatmul(flat, w, transB, name);
    return reshape(out, [...a.shape.slice(0, -1), N]);
  }
  const M = a.shape[0]!;
  const out = Tensor.alloc([M, N], a.dtype, false);
  const kernels = kernelsFor(a.dtype === 'f64');
  kernels.qgemm(
    transB,
    M,
    N,
    K,
    a.data as FloatArray,
    K,
    w.format,
    w.codes,
    w.scales,
    0,
    out.data as FloatArray,
    N,
  );
  if (needsGrad(a)) {
    record('quantizedMatmul', [a], [out], [], ([g]) => [quantizedMatmul(g!, w, !transB, name)]);
  }
  return out;
}

/**
 * Shared pieces of the GGUF exporters: f32 values of a Tensor, the element type llama.cpp's
 * converter picks for a tensor (1-D tensors, norms and position embeddings stay f32; q8_0 needs
 * rows of a multiple of 32, otherwise the converter falls back to f16), the transforms, and the
 * `general.*` entries every file starts with.
 */
import { TensorMismatchError } from '../../errors.ts';
import { formatShape, type Tensor } from '../../tensor/index.ts';
import { bf16ToF32 } from '../convert.ts';
import { permuteRows, type TensorTransform, transpose2d } from './arch.ts';
import { encodeTensor } from './encode.ts';
import {
  GGML_QUANT_VERSION,
  GGML_TYPE_OF,
  GGUF_ALIGNMENT,
  GgmlType,
  type GgmlTypeId,
  type GgufDtype,
  Q8_0_BLOCK,
} from './types.ts';
import { type GgufKv, type GgufTensorSpec, ggufKv } from './writer.ts';

/** A tensor's values as f32 (f32 data as is, bf16 widened exactly, f64 rounded). */
export function f32Values(tensor: Tensor, where: string): Float32Array {
  const data = tensor.data;
  if (tensor.dtype === 'f32') return data as Float32Array;
  if (tensor.dtype === 'bf16') return bf16ToF32(data as Uint16Array);
  if (tensor.dtype === 'f64') return Float32Array.from(data as Float64Array);
  throw new TensorMismatchError(`${where}: dtype ${tensor.dtype} is not a floating-point tensor`);
}

/** The ggml type llama.cpp's converter writes `name` (row-major `shape`) in for output dtype `dtype`. */
export function ggmlTypeFor(name: string, shape: readonly number[], dtype: GgufDtype): GgmlTypeId {
  if (shape.length <= 1 || name.endsWith('_norm.weight') || name === 'position_embd.weight')
    return GgmlType.F32;
  const type = GGML_TYPE_OF[dtype];
  if (type === GgmlType.Q8_0 && shape[shape.length - 1]! % Q8_0_BLOCK !== 0) return GgmlType.F16;
  return type;
}

/** Apply a transform to row-major `values` of `shape`; returns the values and the new shape. */
export function applyTransform(
  values: Float32Array,
  shape: readonly number[],
  transform: TensorTransform,
  where: string,
): { values: Float32Array; shape: number[] } {
  if (transform.kind === 'none') return { values, shape: [...shape] };
  if (transform.kind === 'transpose') {
    if (shape.length !== 2)
      throw new TensorMismatchError(`${where}: expected a 2-D Conv1D weight, got ${formatShape(shape)}`);
    return { values: transpose2d(values, shape[0]!, shape[1]!), shape: [shape[1]!, shape[0]!] };
  }
  const cols = shape.length === 2 ? shape[1]! : 1;
  return { values: permuteRows(values, shape[0]!, cols, transform.heads), shape: [...shape] };
}

/** A tensor spec whose bytes are computed when the writer asks for them. */
export function lazyTensor(
  name: string,
  shape: readonly number[],
  type: GgmlTypeId,
  values: () => Float32Array,
): GgufTensorSpec {
  return { name, shape, type, data: () => encodeTensor(values(), type, `GGUF tensor '${name}'`) };
}

/** The `general.*` entries: architecture, type (model / adapter), name, alignment, quantization version. */
export function generalMetadata(arch: string, type: 'model' | 'adapter', name: string): GgufKv[] {
  return [
    ggufKv.string('general.architecture', arch),
    ggufKv.string('general.type', type),
    ggufKv.string('general.name', name),
    ggufKv.u32('general.quantization_version', GGML_QUANT_VERSION),
    ggufKv.u32('general.alignment', GGUF_ALIGNMENT),
  ];
}

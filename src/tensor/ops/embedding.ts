/** Embedding lookup (gather rows of a table) with a scatter-add gradient. */
import type { Bf16Array, FloatArray } from '../../backend/kernels.ts';
import { needsGrad, record } from '../autograd.ts';
import { formatShape, Tensor } from '../tensor.ts';
import { kernelsOf } from './util.ts';

/**
 * Rows of `table` [V, d] (f32, f64, or bf16 = frozen) picked by `ids` (i32, any shape) ->
 * [...ids.shape, d] (f32 for a bf16 table). An id outside [0, V) is a RangeError naming it.
 * Gradient: scatter-add into a zeroed [V, d] (none for a bf16 table, which cannot be trained).
 */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (table.rank !== 2) throw new RangeError(`embedding: table ${table.describe()} must be [V, d]`);
  if (table.dtype === 'i32')
    throw new TypeError(`embedding: table ${table.describe()} must be f32, f64 or bf16`);
  if (ids.dtype !== 'i32') throw new TypeError(`embedding: ids ${ids.describe()} must be i32 token ids`);
  const [V, d] = table.shape as [number, number];
  const idData = ids.data as Int32Array;
  for (let i = 0; i < idData.length; i++) {
    const id = idData[i]!;
    if (id < 0 || id >= V) {
      throw new RangeError(
        `embedding: token id ${id} (position ${i} of ids ${formatShape(ids.shape)}) is out of range for ${table.describe()} with V = ${V} rows`,
      );
    }
  }
  const isBf16 = table.dtype === 'bf16';
  if (isBf16 && needsGrad(table)) {
    throw new TypeError(
      `embedding: bf16 ${table.describe()} requires grad, but bf16 tables are frozen storage; convert it to f32 to train it`,
    );
  }
  const k = kernelsOf(table);
  const out = Tensor.alloc([...ids.shape, d], isBf16 ? 'f32' : table.dtype, false);
  k.gatherRows(table.data as FloatArray | Bf16Array, isBf16, idData, out.data as FloatArray, ids.size, d);
  if (needsGrad(table)) {
    record('embedding', [table], [out], [ids], ([g]) => {
      const gTable = Tensor.alloc(table.shape, table.dtype, true);
      k.scatterAddRows(g!.data as FloatArray, idData, gTable.data as FloatArray, ids.size, d);
      return [gTable];
    });
  }
  return out;
}

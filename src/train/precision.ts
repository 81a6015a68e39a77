/**
 * Training precision (`precision: f32 | bf16-mixed`), applied to a model once, after its tuner:
 * bf16-mixed stores the frozen base matrices in bf16 (the f32 copies dropped) and sets every
 * GEMM-backed layer to bf16 compute (bf16 inputs, f32 accumulation); trainable parameters and the
 * optimizer state stay f32, and norms, softmax, attention and the losses run in f32 as always.
 */

import { ConfigError } from '../errors.ts';
import { type Bf16StorageResult, type Module, type Parameter, storeFrozenInBf16 } from '../nn/index.ts';
import type { Tuner } from '../peft/index.ts';
import { isQuantFormat, type QuantFormat } from '../tensor/index.ts';

/** The `precision` field of a training config. */
export type TrainPrecision = 'f32' | 'bf16-mixed';

/** The training precisions, for CLI choices. */
export const TRAIN_PRECISIONS: readonly TrainPrecision[] = ['f32', 'bf16-mixed'];

/**
 * The dtype to read the base model in: int8 / nf4 as asked (a ConfigError for a tuner that trains
 * base matrices); bf16 under bf16-mixed when the tuner trains no base matrix
 * (`freezesBaseMatrices`: the f32 copy is then never in memory), else `modelDtype` (bf16-mixed
 * converts the frozen matrices after the tuner is applied).
 */
export function baseStorageDtype<D extends BaseStorage>(
  precision: TrainPrecision,
  modelDtype: D,
  tuner: Pick<Tuner, 'freezesBaseMatrices'> & { readonly name?: string },
): D | 'bf16' {
  if (isQuantFormat(modelDtype)) {
    if (tuner.freezesBaseMatrices !== true)
      throw new ConfigError(
        `model_dtype: ${modelDtype} stores the base matrices quantised (frozen), but method '${tuner.name ?? '?'}' trains base matrices; use a LoRA-family method or model_dtype f32 / bf16`,
      );
    return modelDtype;
  }
  return precision === 'bf16-mixed' && tuner.freezesBaseMatrices === true ? 'bf16' : modelDtype;
}

/** Storage of the frozen base: f32, bf16, or a block-quantised format (int8 / nf4). */
export type BaseStorage = 'f32' | 'bf16' | QuantFormat;

/**
 * Configure `model` for `precision`; with `baseParameters`, only those (the model's own, taken
 * before the tuner was applied) are stored in bf16, never an adapter's. Returns what was
 * converted to bf16 (nothing for f32).
 */
export function applyTrainPrecision(
  model: Module,
  precision: TrainPrecision,
  baseParameters?: ReadonlySet<Parameter>,
): Bf16StorageResult {
  if (precision === 'f32') {
    model.setComputePrecision('f32');
    return { converted: [], bytesSaved: 0 };
  }
  if (precision !== 'bf16-mixed')
    throw new TypeError(`precision: expected 'f32' or 'bf16-mixed', found '${String(precision)}'`);
  const stored = storeFrozenInBf16(model, baseParameters);
  model.setComputePrecision('bf16');
  return stored;
}

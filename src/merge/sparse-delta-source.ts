/**
 * Sparse-delta adapters as merge inputs (`base_dir+adapter_dir` where the adapter is a sparse delta:
 * `peft_type` SPARSE_FT — written by sparse_ft and lt_sft — or S2FT): reading a targeted weight
 * returns `W` with `W.flat[indices] += values` in f32, the same arithmetic as
 * `attune export --merge` (SparseDeltaLinear.merge), so merging `base+delta` gives the exported
 * model's bytes. Layout: docs/formats.md (`<module>.sft_delta.indices` I32 [k], `.values` [k]).
 */
import { TensorMismatchError } from '../errors.ts';
import type { JsonObject, SafetensorsReader, TensorReader } from '../io/index.ts';
import { checkIndices, PEFT_KEY_PREFIX } from '../peft/index.ts';
import { shapeSize } from '../tensor/index.ts';

/** peft_types whose adapters are sparse deltas in this layout. */
export const SPARSE_DELTA_PEFT_TYPES: readonly string[] = ['SPARSE_FT', 'S2FT'];

/** One targeted weight's entries in the adapter file. */
export interface SparseDeltaModule {
  indicesKey: string;
  valuesKey: string;
}

/** Whether an adapter_config.json object describes a sparse delta. */
export function isSparseDeltaConfig(json: JsonObject): boolean {
  return typeof json.peft_type === 'string' && SPARSE_DELTA_PEFT_TYPES.includes(json.peft_type);
}

const INDICES = '.sft_delta.indices';
const VALUES = '.sft_delta.values';

/**
 * Pair every `<module>.sft_delta.indices` with its `.values` and the base's `<module>.weight`,
 * checking shapes, dtypes and the indices (distinct, inside the weight); every problem in one error
 * naming `file`. Returns the modules by base weight name.
 */
export function sparseDeltaModules(
  adapter: SafetensorsReader,
  base: TensorReader,
  file: string,
): Map<string, SparseDeltaModule> {
  const problems: string[] = [];
  const modules = new Map<string, SparseDeltaModule>();
  for (const name of adapter.names()) {
    if (!name.startsWith(PEFT_KEY_PREFIX) || !(name.endsWith(INDICES) || name.endsWith(VALUES))) {
      problems.push(`unexpected tensor '${name}' (a sparse delta holds <module>${INDICES} / ${VALUES})`);
      continue;
    }
    if (!name.endsWith(INDICES)) continue;
    const module = name.slice(PEFT_KEY_PREFIX.length, -INDICES.length);
    const valuesKey = `${PEFT_KEY_PREFIX}${module}${VALUES}`;
    const weight = `${module}.weight`;
    if (!adapter.has(valuesKey)) {
      problems.push(`'${name}' has no '${valuesKey}'`);
      continue;
    }
    if (!base.has(weight)) {
      problems.push(`module '${module}': the base model has no '${weight}'`);
      continue;
    }
    const idx = adapter.info(name);
    const val = adapter.info(valuesKey);
    if (idx.dtype !== 'I32') problems.push(`'${name}' is ${idx.dtype}, expected I32`);
    else if (idx.shape.length !== 1 || val.shape.join() !== idx.shape.join())
      problems.push(`'${name}' [${idx.shape}] and '${valuesKey}' [${val.shape}] must both be [k]`);
    else if (!['F32', 'F64', 'BF16', 'F16'].includes(val.dtype))
      problems.push(`'${valuesKey}' is ${val.dtype}, expected a float type`);
    else {
      try {
        checkIndices(adapter.read(name).data as Int32Array, shapeSize(base.info(weight).shape), `'${name}'`);
        modules.set(weight, { indicesKey: name, valuesKey });
      } catch (e) {
        problems.push((e as Error).message);
      }
    }
  }
  for (const name of adapter.names())
    if (name.endsWith(VALUES) && !adapter.has(`${name.slice(0, -VALUES.length)}${INDICES}`))
      problems.push(`'${name}' has no matching '${INDICES}' tensor`);
  if (problems.length === 0 && modules.size === 0) problems.push('no sparse delta tensors');
  if (problems.length > 0) throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}`);
  return modules;
}

/** `w.flat[indices] += values` in f32 (as SparseDeltaLinear.merge on an f32 weight). */
export function foldSparseDelta(
  w: Float32Array,
  adapter: SafetensorsReader,
  module: SparseDeltaModule,
): void {
  const idx = adapter.read(module.indicesKey).data as Int32Array;
  const values = adapter.read(module.valuesKey, { dtype: 'f32' }).data as Float32Array;
  for (let j = 0; j < idx.length; j++) {
    const p = idx[j]!;
    if (p >= w.length)
      throw new TensorMismatchError(`'${module.indicesKey}': index ${p} is outside the weight`);
    w[p] = w[p]! + values[j]!;
  }
}

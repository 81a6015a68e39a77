/**
 * The LoRA update of a PEFT adapter directory, matrix by matrix, checked against a base
 * checkpoint: for every adapted module `<m>`, the base weight `<m>.weight` [out, in], lora_A
 * [r, in], lora_B [out, r] and the scaling (lora_alpha / r, or / sqrt(r) with use_rslora). All
 * problems (missing or mis-shaped tensors, unpaired matrices, foreign keys) are collected and
 * reported together before anything is computed.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FormatError, TensorMismatchError } from '../errors.ts';
import { openSafetensors, readJsonObject, type SafetensorsReader, type TensorReader } from '../io/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type LoraConfig,
  type LoraMatrixTarget,
  loraConfigFromAdapterJson,
  loraScaling,
  pairLoraMatrices,
} from '../peft/index.ts';
import { type Matrix64, matrix64, tensorToMatrix64 } from '../tensor/index.ts';

/** One adapted matrix (see peft's pairLoraMatrices). */
export type LoraTarget = LoraMatrixTarget;

/** An adapter directory opened and checked against a base checkpoint. */
export interface LoraDelta {
  dir: string;
  config: LoraConfig;
  /** The multiplier of B A. */
  scaling: number;
  targets: LoraTarget[];
  /** The open adapter weights (close() when done). */
  reader: SafetensorsReader;
}

/**
 * Open the LoRA adapter in `dir` and check it against `base` (open checkpoint of the base model,
 * read from `baseWhere`): every module's A and B present with consistent rank and shapes, and a
 * base weight of shape [out, in]. Throws a TensorMismatchError listing every offending tensor.
 */
export function openLoraDelta(dir: string, base: TensorReader, baseWhere: string): LoraDelta {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const json = readJsonObject(configFile, 'a PEFT adapter config');
  if (json.peft_type !== 'LORA') {
    throw new FormatError(
      configFile,
      `peft_type is ${JSON.stringify(json.peft_type)}; only LoRA adapters ("LORA") can be read as a weight update`,
    );
  }
  const config = loraConfigFromAdapterJson(json, configFile);
  const r = config.r ?? 8;
  const scaling = loraScaling(config.loraAlpha ?? 8, r, config.useRslora ?? false);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsFile)) throw new FormatError(weightsFile, 'file not found');
  const reader = openSafetensors(weightsFile);
  try {
    const { targets, problems } = pairLoraMatrices(reader, r, base, baseWhere);
    if (problems.length > 0) {
      throw new TensorMismatchError(
        `${dir}: the adapter does not fit ${baseWhere} (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}`,
      );
    }
    return { dir, config, scaling, targets, reader };
  } catch (error) {
    reader.close();
    throw error;
  }
}

/** scaling * B A of one target, in f64 ([out, in]). */
export function loraUpdate(delta: LoraDelta, target: LoraTarget): Matrix64 {
  const aT = delta.reader.read(target.aKey, { dtype: 'f32' });
  const bT = delta.reader.read(target.bKey, { dtype: 'f32' });
  try {
    const a = tensorToMatrix64(aT);
    const b = tensorToMatrix64(bT);
    const [out, inFeatures] = target.shape;
    const r = a.rows;
    const result = matrix64(out, inFeatures);
    const dst = result.data;
    for (let i = 0; i < out; i++) {
      for (let k = 0; k < r; k++) {
        const f = delta.scaling * b.data[i * r + k]!;
        if (f === 0) continue;
        const row = k * inFeatures;
        for (let j = 0; j < inFeatures; j++) dst[i * inFeatures + j] += f * a.data[row + j]!;
      }
    }
    return result;
  } finally {
    aT.release();
    bT.release();
  }
}

/**
 * The folder `attune uq fit-head` writes: `head.json` (type "uq-head", version 1, kind, hidden size,
 * training options, final loss and `fitted_on`: model config sha256 + weights fingerprint, adapter
 * sha256, data sha256, answers fitted on) and `head.safetensors` (F64 tensors `feature_mean` [d],
 * `feature_std` [d], `weight` [outputs, d], `bias` [outputs]). Applying a head to another model or
 * adapter is refused (calibrate/fitted-on.ts), as for densities and calibrators.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.ts';
import { isJsonObject, openSafetensors, writeSafetensors, writeTextAtomic } from '../io/index.ts';
import { fromArray, type Tensor } from '../tensor/index.ts';
import { type FittedOn, fittedOnFromJSON } from './calibrate/fitted-on.ts';
import { HEAD_KINDS, type Head, type HeadFitOptions, type HeadKind, headOutputs } from './heads.ts';

/** The head's JSON file in the folder. */
export const HEAD_CONFIG_FILE = 'head.json';
/** The head's weights in the folder. */
export const HEAD_WEIGHTS_FILE = 'head.safetensors';

/** A head with its provenance. */
export interface HeadFile {
  type: 'uq-head';
  version: 1;
  head: Head;
  /** method = the head kind, score "hidden_mean" (the features). */
  fittedOn: FittedOn;
}

/** Write a head folder (config written last, so a folder with head.json is complete); refused when it exists unless `overwrite`. */
export function saveHeadFile(dir: string, file: HeadFile, options: { overwrite?: boolean } = {}): void {
  const configPath = join(dir, HEAD_CONFIG_FILE);
  if (existsSync(configPath) && !options.overwrite)
    throw new ConfigError(`${dir} already holds a head (pass --overwrite to replace it)`);
  const h = file.head;
  const outs = headOutputs(h.kind);
  mkdirSync(dir, { recursive: true });
  const f64 = (data: Float64Array, shape: number[]): Tensor => fromArray(data, shape, { dtype: 'f64' });
  writeSafetensors(
    join(dir, HEAD_WEIGHTS_FILE),
    {
      feature_mean: f64(h.featureMean, [h.dim]),
      feature_std: f64(h.featureStd, [h.dim]),
      weight: f64(h.weight, [outs, h.dim]),
      bias: f64(h.bias, [outs]),
    },
    { format: 'attune-uq-head' },
  );
  const json = {
    type: file.type,
    version: file.version,
    kind: h.kind,
    hidden_size: h.dim,
    outputs: outs,
    options: h.options,
    loss: h.loss,
    fitted_on: file.fittedOn,
  };
  writeTextAtomic(configPath, `${JSON.stringify(json, null, 2)}\n`);
}

/** Read and validate a head folder (FormatError naming the file and field). */
export function loadHeadFile(dir: string): HeadFile {
  const configPath = join(dir, HEAD_CONFIG_FILE);
  if (!existsSync(configPath))
    throw new FormatError(configPath, 'file not found (fit a head with attune uq fit-head)');
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(configPath, 'utf8'));
  } catch (error) {
    throw new FormatError(configPath, `invalid JSON: ${(error as Error).message}`);
  }
  if (!isJsonObject(value) || value.type !== 'uq-head')
    throw new FormatError(configPath, 'expected {"type": "uq-head", ...} (written by attune uq fit-head)');
  if (value.version !== 1)
    throw new FormatError(configPath, `version: expected 1, found ${JSON.stringify(value.version)}`);
  const kind = value.kind as HeadKind;
  if (!HEAD_KINDS.includes(kind))
    throw new FormatError(
      configPath,
      `kind: expected one of ${HEAD_KINDS.join(', ')}, found ${JSON.stringify(value.kind)}`,
    );
  const d = value.hidden_size;
  if (!Number.isInteger(d) || (d as number) < 1)
    throw new FormatError(configPath, `hidden_size: expected an integer >= 1, found ${JSON.stringify(d)}`);
  if (!isJsonObject(value.options)) throw new FormatError(configPath, 'options: expected an object');
  const outs = headOutputs(kind);
  const weightsPath = join(dir, HEAD_WEIGHTS_FILE);
  const reader = openSafetensors(weightsPath);
  const tensor = (name: string, length: number): Float64Array => {
    if (!reader.has(name)) throw new FormatError(weightsPath, `tensor '${name}' is missing`);
    const t = reader.read(name);
    if (t.data.length !== length)
      throw new FormatError(
        weightsPath,
        `tensor '${name}': expected ${length} values, found ${t.data.length}`,
      );
    const data = Float64Array.from(t.data as ArrayLike<number>);
    if (!data.every(Number.isFinite))
      throw new FormatError(weightsPath, `tensor '${name}' has non-finite values`);
    return data;
  };
  let head: Head;
  try {
    head = {
      kind,
      dim: d as number,
      featureMean: tensor('feature_mean', d as number),
      featureStd: tensor('feature_std', d as number),
      weight: tensor('weight', outs * (d as number)),
      bias: tensor('bias', outs),
      options: value.options as unknown as Required<HeadFitOptions>,
      loss: typeof value.loss === 'number' ? value.loss : Number.NaN,
    };
  } finally {
    reader.close();
  }
  if (!head.featureStd.every((s) => s > 0))
    throw new FormatError(weightsPath, "tensor 'feature_std': expected positive values");
  return { type: 'uq-head', version: 1, head, fittedOn: fittedOnFromJSON(value.fitted_on, configPath) };
}

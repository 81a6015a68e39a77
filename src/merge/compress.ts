/**
 * ComPEFT (METHODS.md section 3): compress a fine-tuning update to a ternary sparse vector.
 *
 * tau is one global vector: the entries of every tensor of a LoRA adapter (A and B matrices), or
 * Delta = tuned - base over every tensor of a fully fine-tuned model, concatenated in sorted
 * tensor-name order. With sigma the (population) standard deviation of tau, the top `density`
 * fraction of entries by |tau| is kept (k = round(density * N), at least 1, never an exact zero;
 * ties at the threshold are kept in position order) and each kept entry becomes alpha * sigma *
 * sign(tau); everything else is zero. The file (see compress-format.ts and docs/formats.md) stores
 * the kept positions as Golomb-Rice coded gaps, one sign bit each and the one scale.
 *
 * Tensors are processed one at a time in three passes (statistics and a 16-bit histogram of the
 * f32 bit patterns of |tau|; a second histogram inside the threshold bin, which pins the exact
 * k-th largest value; encoding), so a full model's delta never has to be held in memory; |tau| is
 * ranked as rounded to f32. Decompression (compress-decode.ts) writes a PEFT adapter directory (adapter_config.json
 * as it was, adapter_model.safetensors in F32) or, for a model delta and given the same base, a
 * model directory holding base + tau^ in F32.
 */

import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import {
  openCheckpoint,
  openSafetensors,
  readGenerationConfig,
  readJsonObject,
  readModelConfig,
  type TensorReader,
} from '../io/index.ts';
import { checkSameArchitecture } from '../models/index.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE } from '../peft/index.ts';
import { formatShape, shapeSize } from '../tensor/index.ts';
import {
  COMPEFT_FILE,
  COMPEFT_FORMAT,
  COMPEFT_VERSION,
  type CompeftHeader,
  type CompeftKind,
  type CompeftTensorEntry,
  writeCompeftFile,
} from './compress-format.ts';
import { BitWriter, riceParameterFor, writeRice } from './compress-golomb.ts';
import { checkpointBytes, Fingerprint, FLOAT_DTYPES, listProblems, readFloat64 } from './compress-tau.ts';

/** ComPEFT's default density: keep 20% of the entries. */
export const DEFAULT_COMPEFT_DENSITY = 0.2;
/** ComPEFT's default alpha: kept entries become 1 sigma * sign. */
export const DEFAULT_COMPEFT_ALPHA = 1;

/** Options of the compress functions. */
export interface CompressOptions {
  /** Fraction of tau's entries kept, in (0, 1] (default 0.2). */
  density?: number;
  /** Multiplier of sigma for the kept entries, > 0 (default 1). */
  alpha?: number;
  /**
   * The adapter (or tuned model) path the header records (informational; default the path as
   * given). A caller whose file must not depend on where it was written (the method bench)
   * passes a relative one.
   */
  recordedSource?: string;
}

/** What a compression wrote and measured (snake_case: also the CLI's --json object). */
export interface CompressResult {
  kind: CompeftKind;
  /** The container file written. */
  file: string;
  total: number;
  kept: number;
  density: number;
  alpha: number;
  sigma: number;
  scale: number;
  rice_parameter: number;
  /** Size of the input safetensors file(s). */
  bytes_in: number;
  /** Size of the container file, measured on disk after writing. */
  bytes_written: number;
  /** bytes_in / bytes_written. */
  ratio: number;
  /** ||tau^ - tau|| / ||tau||. */
  reconstruction_error: number;
}

/** One tensor of tau. */
interface TauTensor extends CompeftTensorEntry {
  size: number;
}

/** Where tau comes from: tensors in order, each read on demand as f64. */
interface TauSource {
  kind: CompeftKind;
  tensors: TauTensor[];
  read(index: number): Float64Array;
  bytesIn: number;
  close(): void;
}

function checkOptions(options: CompressOptions): { density: number; alpha: number } {
  const density = options.density ?? DEFAULT_COMPEFT_DENSITY;
  const alpha = options.alpha ?? DEFAULT_COMPEFT_ALPHA;
  if (typeof density !== 'number' || !(density > 0 && density <= 1)) {
    throw new ConfigError(
      `compress: density must be in (0, 1] (the fraction of entries kept), found ${density}`,
    );
  }
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw new ConfigError(`compress: alpha must be a finite number > 0, found ${alpha}`);
  }
  return { density, alpha };
}

/** tau of a PEFT adapter directory: every tensor of adapter_model.safetensors. */
function adapterSource(dir: string): { source: TauSource; adapterConfig: Record<string, unknown> } {
  const adapterConfig = readJsonObject(join(dir, ADAPTER_CONFIG_FILE), 'a PEFT adapter config');
  const file = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(file)) throw new FormatError(file, 'file not found');
  const reader = openSafetensors(file);
  const bad = reader
    .names()
    .filter((n) => !FLOAT_DTYPES.includes(reader.info(n).dtype))
    .map((n) => `'${n}' is ${reader.info(n).dtype}, not a float tensor`);
  if (bad.length > 0) {
    reader.close();
    throw new TensorMismatchError(`${file}: cannot compress (${listProblems(bad)})`);
  }
  const tensors = reader.names().map((name) => {
    const info = reader.info(name);
    return { name, shape: info.shape, dtype: info.dtype, size: shapeSize(info.shape) };
  });
  // adapters are small: keep tau in memory across the passes
  const cache = new Map<number, Float64Array>();
  const source: TauSource = {
    kind: 'lora-adapter',
    tensors,
    bytesIn: statSync(file).size,
    read(index) {
      let values = cache.get(index);
      if (!values) {
        values = readFloat64(reader, tensors[index]!.name);
        cache.set(index, values);
      }
      return values;
    },
    close: () => reader.close(),
  };
  return { source, adapterConfig };
}

/**
 * Check that the checkpoint `other` (from `otherDir`) has exactly the tensors of `reader` (from
 * `dir`) with the same shapes and float dtypes; throws a TensorMismatchError listing every
 * offending tensor.
 */
function checkSameTensors(reader: TensorReader, dir: string, other: TensorReader, otherDir: string): void {
  const problems: string[] = [];
  for (const name of reader.names()) {
    const info = reader.info(name);
    if (!FLOAT_DTYPES.includes(info.dtype))
      problems.push(`'${name}' in ${dir} is ${info.dtype}, not a float tensor`);
    if (!other.has(name)) {
      problems.push(`'${name}' is missing from ${otherDir}`);
      continue;
    }
    const shape = other.info(name).shape;
    if (formatShape(shape) !== formatShape(info.shape)) {
      problems.push(
        `'${name}' is ${formatShape(info.shape)} in ${dir} but ${formatShape(shape)} in ${otherDir}`,
      );
    }
  }
  for (const name of other.names()) if (!reader.has(name)) problems.push(`'${name}' is missing from ${dir}`);
  if (problems.length > 0)
    throw new TensorMismatchError(`${dir} does not match ${otherDir} (${listProblems(problems)})`);
}

/** tau = tuned - base over every tensor of two model directories. */
function modelDeltaSource(modelDir: string, baseDir: string, fingerprint: Fingerprint): TauSource {
  checkSameArchitecture(baseDir, modelDir, 'the delta of a fine-tuned model is taken against its own base');
  const tuned = openCheckpoint(modelDir);
  let base: TensorReader | null = null;
  try {
    base = openCheckpoint(baseDir);
    checkSameTensors(tuned, modelDir, base, baseDir);
  } catch (error) {
    tuned.close();
    base?.close();
    throw error;
  }
  const baseReader = base;
  const tensors = tuned.names().map((name) => {
    const info = tuned.info(name);
    return { name, shape: info.shape, dtype: info.dtype, size: shapeSize(info.shape) };
  });
  let hashing = true;
  return {
    kind: 'model-delta',
    tensors,
    bytesIn: checkpointBytes(tuned),
    read(index) {
      const { name, shape } = tensors[index]!;
      const t = readFloat64(tuned, name);
      const b = readFloat64(baseReader, name);
      if (hashing) fingerprint.add(name, shape, b);
      if (index === tensors.length - 1) hashing = false; // only during the first pass
      for (let i = 0; i < t.length; i++) t[i] = t[i]! - b[i]!;
      return t;
    },
    close() {
      tuned.close();
      baseReader.close();
    },
  };
}

/** Running mean and sum of squared deviations (Chan et al.'s parallel update). */
interface Moments {
  count: number;
  mean: number;
  m2: number;
}

function addMoments(acc: Moments, values: Float64Array): void {
  const n = values.length;
  if (n === 0) return;
  let sum = 0;
  for (let i = 0; i < n; i++) sum += values[i]!;
  const mean = sum / n;
  let m2 = 0;
  for (let i = 0; i < n; i++) m2 += (values[i]! - mean) ** 2;
  const total = acc.count + n;
  const delta = mean - acc.mean;
  acc.m2 += m2 + (delta * delta * acc.count * n) / total;
  acc.mean += (delta * n) / total;
  acc.count = total;
}

/** Sortable keys of |values|: the bit patterns of the magnitudes rounded to f32 (monotonic for x >= 0). */
function magnitudeKeys(values: Float64Array, scratch: { f: Float32Array; u: Uint32Array }): Uint32Array {
  if (scratch.f.length < values.length) {
    scratch.f = new Float32Array(values.length);
    scratch.u = new Uint32Array(scratch.f.buffer);
  }
  const f = scratch.f;
  for (let i = 0; i < values.length; i++) f[i] = Math.abs(values[i]!);
  return scratch.u.subarray(0, values.length);
}

/** The core: select, encode and write. `outFile` (and its folder) is written only at the end, atomically. */
function compressSource(
  source: TauSource,
  outFile: string,
  options: { density: number; alpha: number },
  extra: Pick<CompeftHeader, 'source' | 'adapter_config' | 'model_config' | 'generation_config'> & {
    fingerprint?: Fingerprint;
  },
): CompressResult {
  const { density, alpha } = options;
  const scratch = { f: new Float32Array(0), u: new Uint32Array(0) };
  // pass 1: moments, non-zero count, histogram of the high 16 bits
  const moments: Moments = { count: 0, mean: 0, m2: 0 };
  const high = new Float64Array(65536);
  let nonZero = 0;
  source.tensors.forEach((tensor, index) => {
    const values = source.read(index);
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i]!)) {
        throw new TensorMismatchError(
          `'${tensor.name}': entry ${i} of tau is ${values[i]}; tau must be finite`,
        );
      }
    }
    addMoments(moments, values);
    const keys = magnitudeKeys(values, scratch);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i]!;
      if (key !== 0) nonZero++;
      high[key >>> 16]!++;
    }
  });
  const total = moments.count;
  const sigma = total > 0 ? Math.sqrt(moments.m2 / total) : 0;
  const scale = alpha * sigma;
  const k = Math.min(nonZero, Math.max(1, Math.round(density * total)));

  // pass 2: the exact threshold key T and how many entries equal to T are kept
  let threshold = 0xffffffff;
  let tiesToKeep = 0;
  if (k > 0) {
    let above = 0;
    let bin = 65535;
    while (above + high[bin]! < k) above += high[bin--]!;
    const low = new Float64Array(65536);
    source.tensors.forEach((_, index) => {
      const keys = magnitudeKeys(source.read(index), scratch);
      for (let i = 0; i < keys.length; i++) if (keys[i]! >>> 16 === bin) low[keys[i]! & 0xffff]!++;
    });
    let lowBin = 65535;
    while (above + low[lowBin]! < k) above += low[lowBin--]!;
    threshold = ((bin << 16) | lowBin) >>> 0;
    tiesToKeep = k - above;
  }

  // pass 3: encode gaps and signs, measure the reconstruction error
  const b = total > 0 ? riceParameterFor(Math.max(k, 1) / total) : 0;
  const gaps = new BitWriter();
  const signs = new BitWriter();
  let previous = -1;
  let offset = 0;
  let kept = 0;
  let tauSq = 0;
  let errSq = 0;
  source.tensors.forEach((_, index) => {
    const values = source.read(index);
    const keys = magnitudeKeys(values, scratch);
    for (let i = 0; i < values.length; i++) {
      const tau = values[i]!;
      tauSq += tau * tau;
      const key = keys[i]!;
      const keep = k > 0 && (key > threshold || (key === threshold && tiesToKeep > 0));
      if (!keep) {
        errSq += tau * tau;
        continue;
      }
      if (key === threshold) tiesToKeep--;
      const position = offset + i;
      writeRice(gaps, position - previous - 1, b);
      previous = position;
      signs.bit(tau < 0 ? 1 : 0);
      const approx = tau < 0 ? -scale : scale;
      errSq += (tau - approx) ** 2;
      kept++;
    }
    offset += values.length;
  });
  if (kept !== k) throw new Error(`compress: internal: kept ${kept} entries, expected ${k}`);
  const reconstructionError = tauSq > 0 ? Math.sqrt(errSq / tauSq) : 0;
  const gapBytes = gaps.finish();
  const signBytes = signs.finish();
  const header: CompeftHeader = {
    format: COMPEFT_FORMAT,
    version: COMPEFT_VERSION,
    kind: source.kind,
    tensors: source.tensors.map(({ name, shape, dtype }) => ({ name, shape, dtype })),
    total,
    kept,
    density,
    alpha,
    sigma,
    mean: moments.mean,
    scale,
    rice_parameter: b,
    gap_bits: gaps.length,
    gap_bytes: gapBytes.length,
    sign_bytes: signBytes.length,
    reconstruction_error: reconstructionError,
    bytes_in: source.bytesIn,
    source: extra.source,
    adapter_config: extra.adapter_config,
    model_config: extra.model_config,
    generation_config: extra.generation_config,
    base_fingerprint: extra.fingerprint ? extra.fingerprint.value() : null,
  };
  mkdirSync(dirname(outFile), { recursive: true });
  writeCompeftFile(outFile, header, gapBytes, signBytes);
  const written = statSync(outFile).size;
  return {
    kind: source.kind,
    file: outFile,
    total,
    kept,
    density,
    alpha,
    sigma,
    scale,
    rice_parameter: b,
    bytes_in: source.bytesIn,
    bytes_written: written,
    ratio: source.bytesIn / written,
    reconstruction_error: reconstructionError,
  };
}

/**
 * ComPEFT-compress the PEFT adapter in `adapterDir` (every tensor of adapter_model.safetensors;
 * adapter_config.json is stored in the header) into `outDir/compeft.bin`. Inputs and options are
 * validated before `outDir` is created.
 */
export function compressAdapter(
  adapterDir: string,
  outDir: string,
  options: CompressOptions = {},
): CompressResult {
  const checked = checkOptions(options);
  const { source, adapterConfig } = adapterSource(adapterDir);
  try {
    return compressSource(source, join(outDir, COMPEFT_FILE), checked, {
      source: { adapter: options.recordedSource ?? adapterDir },
      adapter_config: adapterConfig,
      model_config: null,
      generation_config: null,
    });
  } finally {
    source.close();
  }
}

/**
 * ComPEFT-compress the fine-tuning delta of the model in `modelDir` relative to `baseDir` into
 * `outDir/compeft.bin` (the tuned config.json and generation_config.json go in the header, plus a
 * fingerprint of the base). Same architecture, the same tensor names and shapes are required;
 * every mismatch is listed before anything is written.
 */
export function compressModelDelta(
  modelDir: string,
  baseDir: string,
  outDir: string,
  options: CompressOptions = {},
): CompressResult {
  const checked = checkOptions(options);
  const fingerprint = new Fingerprint();
  const source = modelDeltaSource(modelDir, baseDir, fingerprint);
  try {
    return compressSource(source, join(outDir, COMPEFT_FILE), checked, {
      source: { model: options.recordedSource ?? modelDir, base: baseDir },
      adapter_config: null,
      model_config: readModelConfig(modelDir),
      generation_config: readGenerationConfig(modelDir),
      fingerprint,
    });
  } finally {
    source.close();
  }
}

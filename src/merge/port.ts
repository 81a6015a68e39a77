/**
 * PortLLM (METHODS.md section 3): carry a LoRA adapter trained on one base over to an evolved base
 * of the same architecture without training, by adding its patch to the new weights:
 * W_new + scaling * B A for every adapted module (scaling = lora_alpha / r, or / sqrt(r) with
 * use_rslora).
 *
 * Before anything is written, the adapter is checked against the new base: every adapted module
 * needs both LoRA matrices with rank r and a base weight `<module>.weight` of shape [out, in]
 * matching B A; every problem is listed in one error. When the old base is known (`fromBase`, or
 * the adapter's base_model_name_or_path when it names a local directory), its architecture must
 * match the new base's. The output is a plain model directory (every tensor of the new base,
 * patched ones in the base's dtype; config, generation config and tokenizer files copied) plus
 * `attune_port.json` recording what was applied.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import {
  CONFIG_FILE,
  GENERATION_CONFIG_FILE,
  openCheckpoint,
  openSafetensors,
  readJsonObject,
  readModelConfig,
  type SafetensorsReader,
  type TensorReader,
  TOKENIZER_FILE,
  writeCheckpoint,
  writeJsonAtomic,
} from '../io/index.ts';
import {
  ARCHITECTURE_FIELDS,
  architectureDifferences,
  copyTokenizerFiles,
  parseModelConfig,
} from '../models/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type LoraMatrixTarget,
  loraConfigFromAdapterJson,
  loraScaling,
  pairLoraMatrices,
} from '../peft/index.ts';
import { Tensor, toBf16Bits } from '../tensor/index.ts';

/** The record written next to a ported model. */
export const PORT_RECORD_FILE = 'attune_port.json';

/** One adapted module of a port plan. */
export type PortTarget = LoraMatrixTarget;

/** A checked port: what will be applied. */
export interface PortPlan {
  adapter: string;
  toBase: string;
  /** The old base whose architecture was compared, or null when unknown. */
  fromBase: string | null;
  r: number;
  loraAlpha: number;
  useRslora: boolean;
  scaling: number;
  targets: PortTarget[];
}

/** Options of `planPort` and `portAdapter`. */
export interface PortOptions {
  /** LoRA adapter directory (trained on the old base). */
  adapter: string;
  /** The evolved base model directory. */
  toBase: string;
  /** The old base, for the architecture check (default: the adapter's base_model_name_or_path if it is a local model directory). */
  fromBase?: string | null;
}

function isModelDir(dir: unknown): dir is string {
  return typeof dir === 'string' && existsSync(join(dir, CONFIG_FILE)) && statSync(dir).isDirectory();
}

function checkTargets(
  reader: SafetensorsReader,
  r: number,
  base: TensorReader,
  baseDir: string,
): { targets: PortTarget[]; problems: string[] } {
  return pairLoraMatrices(reader, r, base, baseDir);
}

/**
 * Check that the LoRA adapter fits the new base (see the file comment) and return the plan. Throws
 * a ConfigError for different architectures and a TensorMismatchError listing every missing or
 * mis-shaped tensor; reads only headers and configs.
 */
export function planPort(options: PortOptions): PortPlan {
  const configFile = join(options.adapter, ADAPTER_CONFIG_FILE);
  const json = readJsonObject(configFile, 'a PEFT adapter config');
  if (json.peft_type !== 'LORA') {
    throw new FormatError(
      configFile,
      `peft_type is ${JSON.stringify(json.peft_type)}; port applies LoRA adapters ("LORA")`,
    );
  }
  const config = loraConfigFromAdapterJson(json, configFile);
  const r = config.r ?? 8;
  const loraAlpha = config.loraAlpha ?? 8;
  const useRslora = config.useRslora ?? false;
  const newConfig = parseModelConfig(readModelConfig(options.toBase), join(options.toBase, CONFIG_FILE));
  let fromBase = options.fromBase ?? null;
  if (fromBase === null && isModelDir(json.base_model_name_or_path)) fromBase = json.base_model_name_or_path;
  if (fromBase !== null) {
    const oldConfig = parseModelConfig(readModelConfig(fromBase), join(fromBase, CONFIG_FILE));
    // the vocabulary may grow between base versions; LoRA on projections does not care
    const diffs = architectureDifferences(
      oldConfig,
      newConfig,
      ARCHITECTURE_FIELDS.filter((f) => f !== 'vocabSize'),
    );
    if (diffs.length > 0) {
      throw new ConfigError(
        `${options.toBase} is not the same architecture as the adapter's base ${fromBase} (${diffs.join(', ')}); PortLLM ports between versions of one architecture`,
      );
    }
  }
  const weightsFile = join(options.adapter, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(weightsFile)) throw new FormatError(weightsFile, 'file not found');
  const reader = openSafetensors(weightsFile);
  const base = openCheckpoint(options.toBase);
  try {
    const { targets, problems } = checkTargets(reader, r, base, options.toBase);
    if (problems.length > 0) {
      throw new TensorMismatchError(
        `${options.adapter} does not fit ${options.toBase} (${problems.length} problem${problems.length === 1 ? '' : 's'}): ${problems.join('; ')}; nothing was written`,
      );
    }
    return {
      adapter: options.adapter,
      toBase: options.toBase,
      fromBase,
      r,
      loraAlpha,
      useRslora,
      scaling: loraScaling(loraAlpha, r, useRslora),
      targets,
    };
  } finally {
    reader.close();
    base.close();
  }
}

/** What `portAdapter` wrote (also the content of attune_port.json and the CLI's --json object). */
export interface PortRecord {
  adapter: string;
  to_base: string;
  from_base: string | null;
  out: string;
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  use_rslora: boolean;
  scaling: number;
  /** Modules patched. */
  targets: string[];
  /** Tensors changed: name and shape. */
  tensors: { name: string; shape: [number, number] }[];
  /** Files written, relative to out. */
  files: string[];
}

/** W + scaling * B A for one target, as a tensor in the base tensor's dtype. */
function patched(
  base: TensorReader,
  adapter: SafetensorsReader,
  target: PortTarget,
  scaling: number,
): Tensor {
  const stored = base.info(target.weight).dtype;
  const w = base.read(target.weight, { dtype: 'f32' });
  const a = adapter.read(target.aKey, { dtype: 'f32' });
  const b = adapter.read(target.bKey, { dtype: 'f32' });
  try {
    const [out, inFeatures] = target.shape;
    const r = a.shape[0]!;
    const W = w.data as Float32Array;
    const A = a.data as Float32Array;
    const B = b.data as Float32Array;
    const row = new Float64Array(inFeatures);
    const result = new Float32Array(out * inFeatures);
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < inFeatures; j++) row[j] = W[i * inFeatures + j]!;
      for (let k = 0; k < r; k++) {
        const f = scaling * B[i * r + k]!;
        if (f === 0) continue;
        for (let j = 0; j < inFeatures; j++) row[j] += f * A[k * inFeatures + j]!;
      }
      for (let j = 0; j < inFeatures; j++) result[i * inFeatures + j] = row[j]!;
    }
    if (stored === 'BF16') {
      return Tensor.wrap(
        Uint16Array.from(result, (x) => toBf16Bits(x)),
        target.shape,
        { track: false },
      );
    }
    return Tensor.wrap(result, target.shape, { track: false });
  } finally {
    w.release();
    a.release();
    b.release();
  }
}

/**
 * Port the LoRA adapter to the new base and write the patched model to `out` (see the file
 * comment): checked first with `planPort`, so bad input writes nothing.
 */
export function portAdapter(options: PortOptions & { out: string }): PortRecord {
  const plan = planPort(options);
  const base = openCheckpoint(plan.toBase);
  const adapter = openSafetensors(join(plan.adapter, ADAPTER_WEIGHTS_FILE));
  const tensors = new Map<string, Tensor>();
  let metadata: Record<string, string>;
  try {
    metadata = { format: 'pt', ...base.metadata() };
    const byWeight = new Map(plan.targets.map((t) => [t.weight, t]));
    for (const name of base.names()) {
      const target = byWeight.get(name);
      tensors.set(name, target ? patched(base, adapter, target, plan.scaling) : base.read(name));
    }
  } finally {
    base.close();
    adapter.close();
  }
  mkdirSync(options.out, { recursive: true });
  const written = writeCheckpoint(options.out, tensors, { metadata });
  for (const t of tensors.values()) t.release();
  const files = [...written.files];
  writeJsonAtomic(join(options.out, CONFIG_FILE), readModelConfig(plan.toBase));
  files.push(CONFIG_FILE);
  if (existsSync(join(plan.toBase, GENERATION_CONFIG_FILE))) {
    writeJsonAtomic(
      join(options.out, GENERATION_CONFIG_FILE),
      readJsonObject(join(plan.toBase, GENERATION_CONFIG_FILE), 'a generation config object'),
    );
    files.push(GENERATION_CONFIG_FILE);
  }
  if (existsSync(join(plan.toBase, TOKENIZER_FILE))) {
    copyTokenizerFiles(plan.toBase, options.out);
    files.push(TOKENIZER_FILE);
  }
  files.push(PORT_RECORD_FILE);
  const record: PortRecord = {
    adapter: plan.adapter,
    to_base: plan.toBase,
    from_base: plan.fromBase,
    out: options.out,
    peft_type: 'LORA',
    r: plan.r,
    lora_alpha: plan.loraAlpha,
    use_rslora: plan.useRslora,
    scaling: plan.scaling,
    targets: plan.targets.map((t) => t.module),
    tensors: plan.targets.map((t) => ({ name: t.weight, shape: t.shape })),
    files,
  };
  writeJsonAtomic(join(options.out, PORT_RECORD_FILE), record);
  return record;
}

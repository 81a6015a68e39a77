/**
 * Model references of a merge config and the tensors behind them. A reference is a model dir
 * (config.json + safetensors) or `base_dir+adapter_dir` (mergekit's `model+lora` syntax): a PEFT
 * LoRA adapter folded in on the fly — reading a targeted weight returns `W + scaling * B A`
 * (computed with the same matmul kernel and f32 rounding as `attune export --merge`), every other
 * tensor is the base's; a sparse-delta adapter (SPARSE_FT, S2FT: sparse-delta-source.ts) adds its
 * values at its indices. Nothing is read before it is asked for; each read returns a fresh f32 array.
 *
 * Tied embeddings: a name the checkpoint lacks is read under its `__metadata__` alias, or, when
 * config.json ties the embeddings, under the other tied name (as models/ loads them).
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FormatError, TensorMismatchError } from '../errors.ts';
import {
  type JsonObject,
  openCheckpoint,
  openSafetensors,
  readJsonObject,
  readModelConfig,
  type SafetensorsDType,
  type SafetensorsReader,
  type TensorReader,
} from '../io/index.ts';
import { checkModelDir } from '../models/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  loraConfigFromAdapterJson,
  loraScaling,
  pairLoraMatrices,
} from '../peft/index.ts';
import { formatShape, matmul, noGrad, scope, Tensor } from '../tensor/index.ts';
import type { MemoryTracker } from './memory.ts';
import {
  foldSparseDelta,
  isSparseDeltaConfig,
  type SparseDeltaModule,
  sparseDeltaModules,
} from './sparse-delta-source.ts';

/** A resolved model reference. */
export interface ModelRef {
  /** As written in the config. */
  text: string;
  /** The model dir (the base dir of `base+adapter`), absolute. */
  dir: string;
  /** The adapter dir of `base+adapter`, absolute; null for a plain model dir. */
  adapterDir: string | null;
  /** Identity of the reference (`dir` or `dir+adapterDir`). */
  key: string;
}

function isDir(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Resolve `text` relative to `baseDir`: an existing folder is a model dir; otherwise `a+b` is split
 * at the first `+` whose two sides are existing folders (else at the first `+`; opening then says
 * which folder is missing).
 */
export function parseModelReference(text: string, baseDir: string): ModelRef {
  const whole = resolve(baseDir, text);
  if (!text.includes('+') || isDir(whole)) return { text, dir: whole, adapterDir: null, key: whole };
  const splits: [string, string][] = [];
  for (let i = text.indexOf('+'); i >= 0; i = text.indexOf('+', i + 1)) {
    splits.push([text.slice(0, i), text.slice(i + 1)]);
  }
  const [left, right] =
    splits.find(([a, b]) => isDir(resolve(baseDir, a)) && isDir(resolve(baseDir, b))) ?? splits[0]!;
  const dir = resolve(baseDir, left);
  const adapterDir = resolve(baseDir, right);
  return { text, dir, adapterDir, key: `${dir}+${adapterDir}` };
}

/** The two names a tied embedding matrix may be stored under. */
export const TIED_NAMES: readonly string[] = ['model.embed_tokens.weight', 'lm_head.weight'];

/** Float dtypes a merge reads. */
export const MERGEABLE_DTYPES: readonly SafetensorsDType[] = ['F32', 'BF16', 'F16', 'F64'];

interface LoraModule {
  keyA: string;
  keyB: string;
  scaling: number;
}

/** The tensors of one model reference (see the file comment). */
export class ModelSource {
  /** The raw config.json of the model dir. */
  readonly config: JsonObject;
  private readonly reader: TensorReader;
  private readonly adapter: SafetensorsReader | null;
  private readonly lora: Map<string, LoraModule>;
  private readonly meta: Record<string, string>;

  private constructor(
    readonly ref: ModelRef,
    config: JsonObject,
    reader: TensorReader,
    adapter: SafetensorsReader | null,
    lora: Map<string, LoraModule>,
    private readonly sparse: Map<string, SparseDeltaModule> = new Map(),
  ) {
    this.config = config;
    this.reader = reader;
    this.adapter = adapter;
    this.lora = lora;
    this.meta = reader.metadata();
  }

  /** Open a reference: config.json and checkpoint headers now, plus the adapter's, validated. */
  static open(ref: ModelRef): ModelSource {
    if (!isDir(ref.dir)) throw new FormatError(ref.dir, `model '${ref.text}': no such folder`);
    if (!existsSync(join(ref.dir, 'config.json')) && existsSync(join(ref.dir, ADAPTER_CONFIG_FILE))) {
      throw new FormatError(
        ref.dir,
        `model '${ref.text}' is a PEFT adapter, not a model; write an adapter as base+adapter in the YAML (model: path/to/base+${ref.text})`,
      );
    }
    checkModelDir(ref.dir); // config.json against the weights' shapes, one field per message
    const config = readModelConfig(ref.dir);
    const reader = openCheckpoint(ref.dir);
    if (ref.adapterDir === null) return new ModelSource(ref, config, reader, null, new Map());
    let adapter: SafetensorsReader | null = null;
    try {
      const adapterDir = ref.adapterDir;
      if (!isDir(adapterDir)) throw new FormatError(adapterDir, `adapter of '${ref.text}': no such folder`);
      const configFile = join(adapterDir, ADAPTER_CONFIG_FILE);
      const adapterJson = readJsonObject(configFile, 'a PEFT adapter config');
      if (isSparseDeltaConfig(adapterJson)) {
        const weightsFile = join(adapterDir, ADAPTER_WEIGHTS_FILE);
        if (!existsSync(weightsFile)) throw new FormatError(weightsFile, 'file not found');
        adapter = openSafetensors(weightsFile);
        const sparse = sparseDeltaModules(adapter, reader, weightsFile);
        return new ModelSource(ref, config, reader, adapter, new Map(), sparse);
      }
      const lora = loraConfigFromAdapterJson(adapterJson, configFile);
      const r = lora.r ?? 8;
      const scaling = loraScaling(lora.loraAlpha ?? 8, r, lora.useRslora ?? false);
      const weightsFile = join(adapterDir, ADAPTER_WEIGHTS_FILE);
      if (!existsSync(weightsFile)) throw new FormatError(weightsFile, 'file not found');
      adapter = openSafetensors(weightsFile);
      const modules = ModelSource.loraModules(adapter, reader, r, scaling, weightsFile);
      return new ModelSource(ref, config, reader, adapter, modules);
    } catch (error) {
      adapter?.close();
      reader.close();
      throw error;
    }
  }

  /** Pair up the adapter's A and B matrices (peft's pairLoraMatrices) and check their dtypes (all problems at once). */
  private static loraModules(
    adapter: SafetensorsReader,
    base: TensorReader,
    r: number,
    scaling: number,
    file: string,
  ): Map<string, LoraModule> {
    const { targets, problems } = pairLoraMatrices(adapter, r, base, 'the base model');
    const modules = new Map<string, LoraModule>();
    for (const t of targets) {
      const a = adapter.info(t.aKey).dtype;
      const b = adapter.info(t.bKey).dtype;
      if (!MERGEABLE_DTYPES.includes(a) || !MERGEABLE_DTYPES.includes(b)) {
        problems.push(`module '${t.module}': LoRA matrices are ${a}/${b}, expected a float type`);
        continue;
      }
      modules.set(t.weight, { keyA: t.aKey, keyB: t.bKey, scaling });
    }
    if (problems.length > 0) throw new TensorMismatchError(`${file}: ${problems.join('; ')}`);
    return modules;
  }

  /** config.json's model_type (or '' when absent). */
  get modelType(): string {
    return typeof this.config.model_type === 'string' ? this.config.model_type : '';
  }

  /** Whether config.json ties the input and output embeddings (transformers' default: true). */
  get tiedEmbeddings(): boolean {
    return this.config.tie_word_embeddings !== false;
  }

  /** num_hidden_layers of config.json (0 when absent). */
  get numLayers(): number {
    const n = this.config.num_hidden_layers;
    return typeof n === 'number' ? n : 0;
  }

  /** The tensor names stored in the checkpoint, sorted. */
  names(): string[] {
    return this.reader.names();
  }

  /** Number of weights adapted (LoRA or sparse delta). */
  get adaptedWeights(): number {
    return this.lora.size + this.sparse.size;
  }

  /** The stored name holding `name` (itself, its metadata alias or the tied twin), or null. */
  resolve(name: string): string | null {
    if (this.reader.has(name)) return name;
    const alias = this.meta[name];
    if (alias !== undefined && this.reader.has(alias)) return alias;
    if (this.tiedEmbeddings && TIED_NAMES.includes(name))
      return TIED_NAMES.find((n) => this.reader.has(n)) ?? null;
    return null;
  }

  /** Stored dtype and shape of `name` (resolved as `resolve` does). */
  info(name: string): { dtype: SafetensorsDType; shape: number[] } {
    const stored = this.resolve(name);
    if (stored === null) throw new TensorMismatchError(`${this.ref.text}: no tensor '${name}'`);
    const info = this.reader.info(stored);
    return { dtype: info.dtype, shape: info.shape };
  }

  /**
   * The values of `name` as a fresh f32 array, LoRA folded in when the reference has an adapter
   * targeting it. `tracker` counts the bytes (the returned array stays counted; the caller frees it).
   */
  read(name: string, tracker?: MemoryTracker): Float32Array {
    const stored = this.resolve(name);
    if (stored === null) throw new TensorMismatchError(`${this.ref.text}: no tensor '${name}'`);
    const tensor = this.reader.read(stored, { dtype: 'f32' });
    const values = tensor.data as Float32Array;
    tracker?.add(values.byteLength);
    const module = this.lora.get(stored);
    if (module && this.adapter) this.fold(values, tensor.shape, module, tracker);
    const sparse = this.sparse.get(stored);
    if (sparse && this.adapter) foldSparseDelta(values, this.adapter, sparse);
    return values;
  }

  /** W += scaling * (B A), exactly as LoraLinear.merge computes it. */
  private fold(w: Float32Array, shape: readonly number[], module: LoraModule, tracker?: MemoryTracker): void {
    const adapter = this.adapter!;
    const a = adapter.read(module.keyA, { dtype: 'f32' });
    const b = adapter.read(module.keyB, { dtype: 'f32' });
    const s = module.scaling;
    const bytes = w.byteLength;
    tracker?.add(bytes);
    try {
      noGrad(() =>
        scope(() => {
          const delta = matmul(Tensor.wrap(b.data, b.shape), Tensor.wrap(a.data, a.shape));
          const d = delta.data as Float32Array;
          if (d.length !== w.length)
            throw new TensorMismatchError(
              `LoRA update ${formatShape(delta.shape)} does not fit ${formatShape(shape)}`,
            );
          for (let i = 0; i < w.length; i++) w[i] = w[i]! + s * d[i]!;
        }),
      );
    } finally {
      tracker?.remove(bytes);
    }
  }

  /** Release the file handles. */
  close(): void {
    this.reader.close();
    this.adapter?.close();
  }
}

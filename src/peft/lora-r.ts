/**
 * What LoRA-XS (lora-xs.ts) and LoRA-SB (lora-sb.ts) share: a Linear with a frozen low-rank frame
 * and a trainable r x r core, `y = x W^T + b + scaling * B R A x`, A [r, in] and B [out, r] frozen,
 * R [r, r] trained; the adapter over such layers; and their PEFT-layout files.
 *
 * PEFT has neither method, so the files follow PEFT's directory layout with their own `peft_type`
 * ("LORA_XS", "LORA_SB") and keys `base_model.model.<module>.lora_A.weight` [r, in],
 * `.lora_B.weight` [out, r] and `.lora_R.weight` [r, r] (docs/formats.md). A and B are saved too:
 * they come from an SVD (of W, or of a gradient estimate that needs data), so loading reads them
 * instead of recomputing them.
 *
 * Merging adds scaling * B R A to W (computed by the matmul kernel); the weight's values before
 * the merge are kept while merged, so `unmerge` restores them exactly (f32, bf16 or f64).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { Linear, Module, type Parameter } from '../nn/index.ts';
import {
  add,
  formatShape,
  type Matrix64,
  matmul,
  mulScalar,
  noGrad,
  readElement,
  reshape,
  scope,
  type Tensor,
  toBf16Bits,
} from '../tensor/index.ts';
import type { TunerLayer } from './targets.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  PEFT_KEY_PREFIX,
  restoreTrainable,
  type SaveAdapterOptions,
} from './tuner.ts';

/** Initial values of A [r, in], B [out, r] and R [r, r] (f64, row-major). */
export interface LowRankCoreInit {
  a: Matrix64;
  b: Matrix64;
  r: Matrix64;
}

/** A Linear with frozen A, B and a trainable core R; see the file comment. */
export class LoraRLinear extends Module implements TunerLayer {
  /** Marks a layer a tuner put in the tree. */
  readonly isTunerLayer = true;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** The adapted layer's weight [out, in] (the same Parameter object, frozen). */
  weight: Parameter;
  bias: Parameter | null;
  /** A [r, in], frozen. */
  readonly lora_A: Linear;
  /** R [r, r], trained. */
  readonly lora_R: Linear;
  /** B [out, r], frozen. */
  readonly lora_B: Linear;
  readonly rank: number;
  readonly scaling: number;
  /** The Linear this layer replaced. */
  readonly base: Linear;
  private backup: Float32Array | Float64Array | Uint16Array | null = null;

  /** Wrap `base` with rank `rank`; A, B, R start from `init` (zeros when null: a load follows). */
  constructor(base: Linear, rank: number, scaling: number, init: LowRankCoreInit | null) {
    super();
    this.base = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.rank = rank;
    this.scaling = scaling;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
    this.bias = this.registerParameter('bias', base.bias);
    const dtype = base.weight.dtype === 'f64' ? 'f64' : 'f32';
    const make = (i: number, o: number) => new Linear(i, o, { bias: false, dtype, init: 'zeros' });
    this.lora_A = this.registerModule('lora_A', make(this.inFeatures, rank));
    this.lora_R = this.registerModule('lora_R', make(rank, rank));
    this.lora_B = this.registerModule('lora_B', make(rank, this.outFeatures));
    if (init) {
      this.lora_A.weight.fillWith((i) => init.a.data[i]!);
      this.lora_B.weight.fillWith((i) => init.b.data[i]!);
      this.lora_R.weight.fillWith((i) => init.r.data[i]!);
    }
    this.lora_A.weight.freeze();
    this.lora_B.weight.freeze();
  }

  /** Whether B R A is folded into `weight`. */
  get merged(): boolean {
    return this.backup !== null;
  }

  /** x [..., in] -> [..., out]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 0 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RangeError(
        `LoraRLinear(${this.inFeatures} -> ${this.outFeatures}): input ${formatShape(x.shape)} must end in ${this.inFeatures}`,
      );
    }
    if (x.rank === 1) return reshape(this.forward(reshape(x, [1, x.shape[0]!])), [this.outFeatures]);
    const base = matmul(x, this.weight, { transB: true });
    const y = this.bias ? add(base, this.bias) : base;
    if (this.merged) return y;
    const update = this.lora_B.forward(this.lora_R.forward(this.lora_A.forward(x)));
    return add(y, this.scaling === 1 ? update : mulScalar(update, this.scaling));
  }

  /** scaling * B R A [out, in] as a new f64 array (untracked, by the matmul kernel). */
  deltaWeight(): Float64Array {
    return noGrad(() =>
      scope(() => {
        const ra = matmul(this.lora_R.weight, this.lora_A.weight);
        const d = matmul(this.lora_B.weight, ra).data as Float32Array | Float64Array;
        return Float64Array.from(d, (v) => this.scaling * v);
      }),
    );
  }

  /** W += scaling * B R A (no-op when merged). */
  merge(): void {
    if (this.merged) return;
    const delta = this.deltaWeight();
    const w = this.weight.data;
    this.backup = w.slice() as Float32Array | Float64Array | Uint16Array;
    if (w instanceof Uint16Array)
      for (let i = 0; i < w.length; i++) w[i] = toBf16Bits(readElement(w, i) + delta[i]!);
    else {
      const wf = w as Float32Array | Float64Array;
      for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! + delta[i]!;
    }
  }

  /** Restore the weight's values from before `merge()` (no-op when not merged). */
  unmerge(): void {
    if (!this.backup) return;
    (this.weight.data as Float32Array).set(this.backup as Float32Array);
    this.backup = null;
  }

  /** The plain Linear to put back in the tree (holding this layer's weight and bias). */
  toLinear(): Linear {
    this.backup = null;
    this.base.train(this.training);
    return this.base;
  }
}

/** The saved key of one of the three matrices of the module at `path`. */
export function loraRKey(path: string, matrix: 'lora_A' | 'lora_B' | 'lora_R'): string {
  return `${PEFT_KEY_PREFIX}${path}.${matrix}.weight`;
}

/** What distinguishes LoRA-XS from LoRA-SB in the shared adapter. */
export interface LoraRMethod {
  /** Tuner name ('lora_xs'). */
  name: string;
  /** peft_type in adapter_config.json ('LORA_XS'). */
  peftType: string;
}

/** An adapter of LoraRLinear layers (LoRA-XS, LoRA-SB). */
export class LoraRAdapter implements Adapter {
  private isMerged = false;
  private detached = false;

  /** Built by the lora_xs / lora_sb tuners. */
  constructor(
    private readonly kind: LoraRMethod,
    readonly model: Module,
    private readonly layerList: [string, LoraRLinear][],
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
    /** The method's adapter_config.json fields (r, target_modules, its own options). */
    private readonly configFields: JsonObject,
  ) {}

  get method(): string {
    return this.kind.name;
  }

  get merged(): boolean {
    return this.isMerged;
  }

  /** The adapted layers with their module paths, in tree order. */
  layers(): [string, LoraRLinear][] {
    return [...this.layerList];
  }

  private check(action: string): void {
    if (this.detached) throw new ConfigError(`${this.kind.name}: cannot ${action}: the adapter was unloaded`);
  }

  /** Only R is trained. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.layerList.map(([path, l]): [string, Parameter] => [`${path}.lora_R.weight`, l.lora_R.weight]);
  }

  trainableParameters(): Parameter[] {
    return this.namedTrainableParameters().map(([, p]) => p);
  }

  /** A, B and R of every layer under their saved keys (live tensors). */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, l] of this.layerList) {
      out.set(loraRKey(path, 'lora_A'), l.lora_A.weight);
      out.set(loraRKey(path, 'lora_B'), l.lora_B.weight);
      out.set(loraRKey(path, 'lora_R'), l.lora_R.weight);
    }
    return out;
  }

  merge(): void {
    this.check('merge');
    for (const [, l] of this.layerList) l.merge();
    this.isMerged = true;
  }

  unmerge(): void {
    this.check('unmerge');
    for (const [, l] of this.layerList) l.unmerge();
    this.isMerged = false;
  }

  /** The adapter_config.json object (keys sorted). */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    const json: JsonObject = {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      inference_mode: true,
      peft_type: this.kind.peftType,
      revision: null,
      task_type: 'CAUSAL_LM',
      ...this.configFields,
    };
    return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  /** adapter_model.safetensors, then adapter_config.json, each atomically. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), this.state(), { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /** Read A, B and R; names and shapes are all checked before anything is copied. */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const expected = this.state();
    const reader = openSafetensors(file);
    const loaded = new Map<string, Tensor>();
    try {
      const problems: string[] = [];
      for (const [key, p] of expected) {
        if (!reader.has(key)) {
          problems.push(`missing tensor '${key}'`);
          continue;
        }
        const shape = reader.info(key).shape;
        if (shape.length !== p.shape.length || shape.some((d, i) => d !== p.shape[i]))
          problems.push(`tensor '${key}' has shape ${formatShape(shape)}, expected ${formatShape(p.shape)}`);
      }
      const unexpected = reader.names().filter((n) => !expected.has(n));
      if (unexpected.length > 0) problems.push(`unexpected tensor(s) ${unexpected.slice(0, 5).join(', ')}`);
      if (problems.length > 0)
        throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}; nothing was loaded`);
      for (const key of expected.keys()) loaded.set(key, reader.read(key));
    } catch (error) {
      for (const t of loaded.values()) t.release();
      throw error;
    } finally {
      reader.close();
    }
    for (const [key, p] of expected) {
      const t = loaded.get(key)!;
      (p as Parameter).copyFrom(t, true);
      t.release();
    }
  }

  private detach(merge: boolean): Module {
    this.check(merge ? 'merge and unload' : 'unload');
    if (merge) this.merge();
    else this.unmerge();
    for (const [path, l] of this.layerList) this.model.setSubmodule(path, l.toLinear());
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }

  unload(): Module {
    return this.detach(false);
  }

  mergeAndUnload(): Module {
    return this.detach(true);
  }
}

/** `json[field]` as a positive integer, or a FormatError naming `file`. */
export function positiveIntField(json: JsonObject, field: string, file: string, fallback: number): number {
  const v = json[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
    throw new FormatError(file, `'${field}' must be a positive integer, found ${JSON.stringify(v)}`);
  return v;
}

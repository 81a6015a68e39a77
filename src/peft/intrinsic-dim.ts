/**
 * Intrinsic-dimension tuning ("Intrinsic Dimensionality Explains the Effectiveness of Language
 * Model Fine-Tuning", Aghajanyan et al. 2021; after Li et al. 2018), the tuner 'intrinsic_dim'
 * (peft_type "INTRINSIC_DIM"; PEFT has none): d trainable numbers z (zero at the start), and every
 * target matrix is `theta_0 + P_i z` with P_i a fixed seeded projection (intrinsic-projection.ts:
 * Fastfood or dense). One z for the whole model, as in the papers' FastfoodWrap; the
 * per-layer scaling of their structure-aware variant (SAID) is not implemented.
 *
 * Files (docs/formats.md): adapter_model.safetensors holds `intrinsic_dim.z` (F32 [d]) only; the
 * projections are regenerated from adapter_config.json's `intrinsic_dim`, `projection`,
 * `projection_seed` and `target_modules` (exact module paths, in order), with `target_numel` (D per
 * target) checked on load.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z as zod } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { Conv1D, Linear, type Module, Parameter } from '../nn/index.ts';
import { Tensor } from '../tensor/index.ts';
import { IntrinsicLinear } from './intrinsic-linear.ts';
import {
  DENSE_PROJECTION_MAX_ENTRIES,
  INTRINSIC_PROJECTIONS,
  type IntrinsicProjectionKind,
  makeProjection,
} from './intrinsic-projection.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  registerTuner,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

/** The saved name of z. */
export const INTRINSIC_Z_KEY = 'intrinsic_dim.z';

/** intrinsic_dim's config (what `apply` takes). */
export interface IntrinsicDimConfig {
  /** The intrinsic dimension d (default 1000). */
  d?: number;
  /** Fastfood (default) or dense. */
  projection?: IntrinsicProjectionKind;
  /** Seed of the projections (default 0). */
  seed?: number;
  /** PEFT-style target_modules (default 'all-linear': every Linear / Conv1D but the LM head). */
  targetModules?: TargetModules;
  /** Modules to skip even when targeted. */
  excludeModules?: TargetModules | null;
}

/** One z through fixed projections into every target; see the file comment. */
export class IntrinsicDimAdapter implements Adapter {
  readonly method = 'intrinsic_dim';
  private detached = false;

  constructor(
    readonly model: Module,
    readonly z: Parameter,
    readonly layers: [string, IntrinsicLinear][],
    private readonly flags: ReadonlyMap<Parameter, boolean>,
    private readonly fields: JsonObject,
  ) {}

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`intrinsic_dim: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** Whether every target has P z folded into its weight. */
  get merged(): boolean {
    return this.layers.length > 0 && this.layers.every(([, l]) => l.merged);
  }

  /** z, the only trainable tensor. */
  namedTrainableParameters(): [string, Parameter][] {
    return [[INTRINSIC_Z_KEY, this.z]];
  }

  /** What the optimizer updates: [z]. */
  trainableParameters(): Parameter[] {
    return [this.z];
  }

  /** `intrinsic_dim.z` (live). */
  state(): Map<string, Tensor> {
    return new Map([[INTRINSIC_Z_KEY, this.z]]);
  }

  /** theta_0 + P z into every target weight. */
  merge(): void {
    for (const [, l] of this.layers) l.merge();
  }

  /** Undo `merge()` exactly. */
  unmerge(): void {
    for (const [, l] of this.layers) l.unmerge();
  }

  /** The adapter_config.json object. */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    return {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: 'INTRINSIC_DIM',
      task_type: 'CAUSAL_LM',
      ...this.fields,
      target_modules: this.layers.map(([n]) => n),
      target_numel: this.layers.map(([, l]) => l.weight.size),
    };
  }

  /** Write adapter_model.safetensors (z as F32 [d]), then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    const z =
      this.z.dtype === 'f32'
        ? this.z
        : Tensor.wrap(Float32Array.from(this.z.data as Float64Array), [this.z.size], { track: false });
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), new Map([[INTRINSIC_Z_KEY, z]]), { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /** Read z written by `save` (validated first: nothing changes on error). */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const reader = openSafetensors(file);
    try {
      if (!reader.has(INTRINSIC_Z_KEY))
        throw new TensorMismatchError(`${file}: missing tensor '${INTRINSIC_Z_KEY}'; nothing was loaded`);
      const extra = reader.names().filter((n) => n !== INTRINSIC_Z_KEY);
      if (extra.length > 0)
        throw new TensorMismatchError(
          `${file}: unexpected tensor(s) ${extra.slice(0, 5).join(', ')}; nothing was loaded`,
        );
      const shape = reader.info(INTRINSIC_Z_KEY).shape;
      if (shape.join() !== String(this.z.size))
        throw new TensorMismatchError(
          `${file}: tensor '${INTRINSIC_Z_KEY}' has shape [${shape.join(',')}], expected [${this.z.size}] (intrinsic_dim); nothing was loaded`,
        );
      const values = reader.read(INTRINSIC_Z_KEY);
      const wasMerged = this.merged;
      if (wasMerged) this.unmerge();
      this.z.copyFrom(values, true);
      values.release();
      if (wasMerged) this.merge();
    } finally {
      reader.close();
    }
  }

  /** Put the original layers back without the update; restore the trainable flags. */
  unload(): Module {
    this.check('unload');
    this.unmerge();
    return this.detach();
  }

  /** Fold theta_0 + P z into the weights and put the plain layers back. */
  mergeAndUnload(): Module {
    this.check('merge and unload');
    this.merge();
    return this.detach();
  }

  private detach(): Module {
    for (const [n, l] of this.layers) this.model.setSubmodule(n, l.toLinear());
    restoreTrainable(this.flags);
    this.detached = true;
    return this.model;
  }
}

/** intrinsic_dim's options in training configs. */
export const intrinsicDimOptions = zod.object({
  d: zod
    .number()
    .int()
    .positive()
    .default(1000)
    .describe('the intrinsic dimension: number of trained values z'),
  projection: zod
    .enum(INTRINSIC_PROJECTIONS)
    .default('fastfood')
    .describe(
      'fastfood (structured, O(D log D) per matrix) or dense (a seeded Gaussian [D, d] per matrix; small models only)',
    ),
  seed: zod
    .number()
    .int()
    .min(0)
    .nullable()
    .default(null)
    .describe("seed of the fixed projections; null = the run's train.seed"),
  target_modules: zod
    .union([zod.array(zod.string()).min(1), zod.string()])
    .default('all-linear')
    .describe("names (suffix match), a full-match regex or 'all-linear' (every Linear but the LM head)"),
  exclude_modules: zod
    .union([zod.array(zod.string()).min(1), zod.string()])
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
});

/** Apply intrinsic_dim to `model` (checked before the model changes). */
export function applyIntrinsicDim(model: Module, config: IntrinsicDimConfig): IntrinsicDimAdapter {
  const d = config.d ?? 1000;
  if (!Number.isInteger(d) || d <= 0)
    throw new ConfigError(`intrinsic_dim: d must be a positive integer, found ${d}`);
  const kind = config.projection ?? 'fastfood';
  if (!INTRINSIC_PROJECTIONS.includes(kind))
    throw new ConfigError(
      `intrinsic_dim: projection must be one of ${INTRINSIC_PROJECTIONS.join(', ')}, found '${String(kind)}'`,
    );
  const seed = config.seed ?? 0;
  const { modules } = selectTargetModules<Linear | Conv1D>(model, config.targetModules ?? 'all-linear', {
    exclude: config.excludeModules ?? null,
    method: 'intrinsic_dim',
    supported: [Linear, Conv1D],
  });
  const heads = outputLayerNames(model);
  const dtypes = new Set<string>();
  for (const [name, layer] of modules) {
    if (heads.has(name))
      throw new ConfigError(
        `intrinsic_dim: target '${name}' is the LM head (applied by the fused loss kernel); leave it out of target_modules`,
      );
    if (layer.weight.dtype !== 'f32' && layer.weight.dtype !== 'f64')
      throw new ConfigError(
        `intrinsic_dim: '${name}' has a ${layer.weight.dtype} weight; the projected delta needs f32 (load the model in f32)`,
      );
    dtypes.add(layer.weight.dtype);
  }
  if (dtypes.size > 1) throw new ConfigError('intrinsic_dim: the target weights mix f32 and f64');
  if (kind === 'dense') {
    const entries = modules.reduce((s, [, l]) => s + l.weight.size * d, 0);
    if (entries > DENSE_PROJECTION_MAX_ENTRIES)
      throw new ConfigError(
        `intrinsic_dim: projection 'dense' with d = ${d} over ${modules.length} target(s) holds ${entries} entries, above the limit of ${DENSE_PROJECTION_MAX_ENTRIES}; use projection: fastfood, a smaller d or fewer target_modules`,
      );
  }
  const f64 = dtypes.has('f64');
  const z = Parameter.zeros([d], f64 ? 'f64' : 'f32');
  const layers = modules.map(([name, layer]): [string, IntrinsicLinear] => [
    name,
    new IntrinsicLinear(layer, z, makeProjection(kind, d, layer.weight.size, seed, name, f64)),
  ]);
  const flags = snapshotTrainable(model);
  model.freeze();
  for (const [name, layer] of layers) model.setSubmodule(name, layer);
  z.unfreeze();
  return new IntrinsicDimAdapter(model, z, layers, flags, {
    intrinsic_dim: d,
    projection: kind,
    projection_seed: seed,
    ...(config.excludeModules ? { exclude_modules: config.excludeModules as JsonObject[string] } : {}),
  });
}

function configFromJson(json: JsonObject, file: string): IntrinsicDimConfig {
  const d = json.intrinsic_dim;
  if (typeof d !== 'number' || !Number.isInteger(d) || d <= 0)
    throw new FormatError(file, `'intrinsic_dim' must be a positive integer, found ${JSON.stringify(d)}`);
  const kind = json.projection;
  if (typeof kind !== 'string' || !(INTRINSIC_PROJECTIONS as readonly string[]).includes(kind))
    throw new FormatError(
      file,
      `'projection' must be one of ${INTRINSIC_PROJECTIONS.join(', ')}, found ${JSON.stringify(kind)}`,
    );
  const seed = json.projection_seed;
  if (typeof seed !== 'number' || !Number.isInteger(seed) || seed < 0)
    throw new FormatError(file, `'projection_seed' must be an integer >= 0, found ${JSON.stringify(seed)}`);
  const targets = json.target_modules;
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string'))
    throw new FormatError(file, "'target_modules' must be a non-empty list of module paths");
  return { d, projection: kind as IntrinsicProjectionKind, seed, targetModules: targets as string[] };
}

/** The 'intrinsic_dim' tuner. */
export const intrinsicDimTuner: Tuner<IntrinsicDimConfig> = {
  name: 'intrinsic_dim',
  description:
    'intrinsic-dimension tuning: d trained values z, every target theta_0 + P z (fixed seeded Fastfood or dense P)',
  peftType: 'INTRINSIC_DIM',
  options: intrinsicDimOptions,
  freezesBaseMatrices: false,
  fromOptions(options, context): IntrinsicDimConfig {
    const o = intrinsicDimOptions.parse(options);
    return {
      d: o.d,
      projection: o.projection,
      seed: o.seed ?? context.seed,
      targetModules: o.target_modules,
      excludeModules: o.exclude_modules,
    };
  },
  apply: (model, config) => applyIntrinsicDim(model, config),
  configFromAdapterJson: configFromJson,
};

registerTuner('intrinsic_dim', intrinsicDimTuner);

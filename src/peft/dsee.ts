/**
 * DSEE ("DSEE: Dually Sparsity-embedded Efficient Tuning of Pre-trained Language Models"),
 * registered as the tuner 'dsee' (peft_type "DSEE"): each target W gets a LoRA update and a sparse
 * residual of N = `sparse_entries` trainable entries, `W_eff = W + scaling B A + S` (dsee-linear.ts).
 *
 * Where S may be non-zero (`sparse_init`, the paper's rule by default): `residual` — the N largest
 * |W - W_r| where W_r is W's rank-`residual_rank` truncated SVD (randomized, seeded), i.e. the
 * support of the sparse part of a low-rank + sparse decomposition of W (the paper's GreBsmo step,
 * one alternation); `magnitude` — the N largest |W|; `random` — uniform (seeded). S starts at 0,
 * A kaiming-uniform, B = 0, so the model starts as the base.
 *
 * Optional magnitude pruning of the final weights (`prune_ratio`, default 0): merging (and so
 * `attune export --merge`) zeroes the `prune_ratio` fraction of smallest-|w| entries of each
 * merged target matrix. Training does not see the pruning (the paper's "prune, then tune" variant
 * is not built).
 *
 * Files: adapter_model.safetensors with per target `base_model.model.<module>.lora_A.weight`
 * [r, in], `.lora_B.weight` [out, r] (PEFT's names), `.sft_delta.indices` (I32 [N]) and
 * `.sft_delta.values` (F32 [N]); adapter_config.json with `peft_type: "DSEE"`, `r`, `lora_alpha`,
 * `target_modules` (exact paths), `sparse_entries`, `sparse_init`, `residual_rank`, `prune_ratio`.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigError, FormatError, TensorMismatchError } from '../errors.ts';
import { type JsonObject, openSafetensors, writeJsonAtomic, writeSafetensors } from '../io/index.ts';
import { Linear, type Module, type Parameter } from '../nn/index.ts';
import { formatShape, matmul64, Rng, randomizedSvd, Tensor, tensorToMatrix64 } from '../tensor/index.ts';
import { DseeLinear } from './dsee-linear.ts';
import { checkIndices } from './sparse-delta-linear.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import { largestPositions, randomPositions } from './top-k.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  type Adapter,
  PEFT_KEY_PREFIX,
  registerTuner,
  restoreTrainable,
  type SaveAdapterOptions,
  snapshotTrainable,
  type Tuner,
} from './tuner.ts';

/** The peft_type of dsee adapter directories (Attune's own). */
export const DSEE_PEFT_TYPE = 'DSEE';

export type DseeSparseInit = 'residual' | 'magnitude' | 'random';

export interface DseeConfig {
  r?: number;
  loraAlpha?: number;
  targetModules?: TargetModules;
  excludeModules?: TargetModules | null;
  /** Trainable sparse entries per target (default 64). */
  sparseEntries?: number;
  sparseInit?: DseeSparseInit;
  /** Rank of the low-rank part removed before choosing the residual's support (default r). */
  residualRank?: number | null;
  /** Fraction of each merged matrix zeroed by magnitude at merge (default 0). */
  pruneRatio?: number;
  seed?: number;
  /** Indices come from an adapter file: do not compute a support. */
  fromFile?: boolean;
}

type Resolved = Required<Omit<DseeConfig, 'residualRank'>> & { residualRank: number };

function resolve(c: DseeConfig): Resolved {
  const r = c.r ?? 8;
  const out: Resolved = {
    r,
    loraAlpha: c.loraAlpha ?? 8,
    targetModules: c.targetModules ?? 'all-linear',
    excludeModules: c.excludeModules ?? null,
    sparseEntries: c.sparseEntries ?? 64,
    sparseInit: c.sparseInit ?? 'residual',
    residualRank: c.residualRank ?? r,
    pruneRatio: c.pruneRatio ?? 0,
    seed: c.seed ?? 0,
    fromFile: c.fromFile ?? false,
  };
  if (!Number.isInteger(out.r) || out.r < 1)
    throw new ConfigError(`dsee: r must be a positive integer, found ${out.r}`);
  if (!Number.isInteger(out.sparseEntries) || out.sparseEntries < 1)
    throw new ConfigError(`dsee: sparse_entries must be a positive integer, found ${out.sparseEntries}`);
  if (!Number.isInteger(out.residualRank) || out.residualRank < 1)
    throw new ConfigError(`dsee: residual_rank must be a positive integer, found ${out.residualRank}`);
  if (!(out.pruneRatio >= 0 && out.pruneRatio < 1))
    throw new ConfigError(`dsee: prune_ratio must be in [0, 1), found ${out.pruneRatio}`);
  if (!['residual', 'magnitude', 'random'].includes(out.sparseInit))
    throw new ConfigError(
      `dsee: sparse_init must be 'residual', 'magnitude' or 'random', found '${String(out.sparseInit)}'`,
    );
  return out;
}

/** The support of the sparse residual of `weight` under `init`; see the file comment. */
export function dseeSupport(
  weight: Tensor,
  n: number,
  init: DseeSparseInit,
  rank: number,
  rng: Rng,
): Int32Array {
  const size = weight.size;
  if (n > size)
    throw new ConfigError(`dsee: sparse_entries ${n} exceeds ${weight.describe()}'s ${size} entries`);
  if (init === 'random') return randomPositions(size, n, rng);
  const w = tensorToMatrix64(weight);
  const scores = new Float64Array(size);
  if (init === 'magnitude') for (let i = 0; i < size; i++) scores[i] = Math.abs(w.data[i]!);
  else {
    const { u, s, v } = randomizedSvd(w, rank, { rng });
    for (let i = 0; i < u.rows; i++) for (let j = 0; j < u.cols; j++) u.data[i * u.cols + j]! *= s[j]!;
    const low = matmul64(u, v, { transB: true });
    for (let i = 0; i < size; i++) scores[i] = Math.abs(w.data[i]! - low.data[i]!);
  }
  return largestPositions(scores, n);
}

/** DSEE's adapter; see the file comment. */
export class DseeAdapter implements Adapter {
  readonly method = 'dsee';
  private detached = false;

  /** Use the 'dsee' tuner. */
  constructor(
    readonly model: Module,
    readonly config: Resolved,
    private readonly layers: [string, DseeLinear][],
    private readonly trainableFlags: ReadonlyMap<Parameter, boolean>,
  ) {}

  private check(action: string): void {
    if (this.detached)
      throw new ConfigError(`dsee: cannot ${action}: the adapter was unloaded from the model`);
  }

  /** The adapted layers with their dotted names. */
  get dseeLayers(): [string, DseeLinear][] {
    return [...this.layers];
  }

  get merged(): boolean {
    return this.layers.length > 0 && this.layers.every(([, l]) => l.merged);
  }

  /** A, B and the sparse values of every target. */
  namedTrainableParameters(): [string, Parameter][] {
    return this.layers.flatMap(([n, l]): [string, Parameter][] => [
      [`${n}.lora_A.weight`, l.lora_A.weight],
      [`${n}.lora_B.weight`, l.lora_B.weight],
      [`${n}.sft_delta.values`, l.sft_delta.values],
    ]);
  }

  trainableParameters(): Parameter[] {
    return this.namedTrainableParameters().map(([, p]) => p);
  }

  /** The trainable tensors and the indices, under their file names (without the PEFT prefix); live. */
  state(): Map<string, Tensor> {
    const out = new Map<string, Tensor>(this.namedTrainableParameters());
    for (const [n, l] of this.layers) {
      const idx = l.sft_delta.indices;
      out.set(`${n}.sft_delta.indices`, Tensor.wrap(idx, [idx.length], { track: false }));
    }
    return out;
  }

  merge(): void {
    for (const [, l] of this.layers) l.merge();
  }

  unmerge(): void {
    for (const [, l] of this.layers) l.unmerge();
  }

  /** adapter_config.json's object. */
  adapterConfigJson(options: SaveAdapterOptions = {}): JsonObject {
    const c = this.config;
    return {
      base_model_name_or_path: options.baseModelNameOrPath ?? null,
      peft_type: DSEE_PEFT_TYPE,
      task_type: 'CAUSAL_LM',
      r: c.r,
      lora_alpha: c.loraAlpha,
      target_modules: this.layers.map(([n]) => n),
      sparse_entries: c.sparseEntries,
      sparse_init: c.sparseInit,
      residual_rank: c.residualRank,
      prune_ratio: c.pruneRatio,
    };
  }

  /** Write adapter_model.safetensors then adapter_config.json. */
  save(dir: string, options: SaveAdapterOptions = {}): void {
    this.check('save');
    const tensors = new Map<string, Tensor>();
    for (const [n, t] of this.state()) {
      if (t.dtype === 'f64')
        throw new ConfigError(`dsee: '${n}' is f64; convert the model to f32 before saving`);
      tensors.set(`${PEFT_KEY_PREFIX}${n}`, t);
    }
    mkdirSync(dir, { recursive: true });
    writeSafetensors(join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    writeJsonAtomic(join(dir, ADAPTER_CONFIG_FILE), this.adapterConfigJson(options));
  }

  /** Read what `save` wrote; every name, shape, dtype and index is checked before anything changes. */
  load(dir: string): void {
    this.check('load');
    const file = join(dir, ADAPTER_WEIGHTS_FILE);
    if (!existsSync(file)) throw new FormatError(file, 'file not found');
    const reader = openSafetensors(file);
    try {
      const expected = this.state();
      const problems: string[] = [];
      for (const [n, t] of expected) {
        const key = `${PEFT_KEY_PREFIX}${n}`;
        if (!reader.has(key)) problems.push(`missing tensor '${key}'`);
        else if (reader.info(key).shape.join() !== t.shape.join())
          problems.push(
            `tensor '${key}' has shape ${formatShape(reader.info(key).shape)}, expected ${formatShape(t.shape)}`,
          );
        else if (n.endsWith('.indices') && reader.info(key).dtype !== 'I32')
          problems.push(`tensor '${key}' must be I32, found ${reader.info(key).dtype}`);
      }
      const known = new Set([...expected.keys()].map((n) => `${PEFT_KEY_PREFIX}${n}`));
      const extra = reader.names().filter((n) => !known.has(n));
      if (extra.length > 0) problems.push(`unexpected tensor(s) ${extra.slice(0, 5).join(', ')}`);
      if (problems.length > 0)
        throw new TensorMismatchError(`${file}: ${problems.slice(0, 5).join('; ')}; nothing was loaded`);
      const indices = new Map<string, Int32Array>();
      for (const [n, l] of this.layers) {
        const key = `${PEFT_KEY_PREFIX}${n}.sft_delta.indices`;
        const idx = Int32Array.from(reader.read(key).data as Int32Array);
        try {
          checkIndices(idx, l.weight.size, `tensor '${key}'`);
        } catch (e) {
          throw new FormatError(file, `${(e as Error).message}; nothing was loaded`);
        }
        indices.set(n, idx);
      }
      const wasMerged = this.merged;
      if (wasMerged) this.unmerge();
      for (const [n, l] of this.layers) {
        l.sft_delta.indices = indices.get(n)!;
        for (const [p, key] of [
          [l.lora_A.weight, `${n}.lora_A.weight`],
          [l.lora_B.weight, `${n}.lora_B.weight`],
          [l.sft_delta.values, `${n}.sft_delta.values`],
        ] as const) {
          const t = reader.read(`${PEFT_KEY_PREFIX}${key}`);
          p.copyFrom(t, true);
          t.release();
        }
      }
      if (wasMerged) this.merge();
    } finally {
      reader.close();
    }
  }

  unload(): Module {
    this.check('unload');
    this.unmerge();
    return this.detach();
  }

  mergeAndUnload(): Module {
    this.check('merge and unload');
    this.merge();
    return this.detach();
  }

  private detach(): Module {
    for (const [n, l] of this.layers) this.model.setSubmodule(n, l.toLinear());
    restoreTrainable(this.trainableFlags);
    this.detached = true;
    return this.model;
  }
}

const targetModulesOption = z.union([z.array(z.string()).min(1), z.string()]);

/** The dsee options of a training config. */
export const dseeOptions = z.object({
  r: z.number().int().positive().default(8).describe('LoRA rank'),
  lora_alpha: z.number().default(8).describe('LoRA scaling numerator (scaling = lora_alpha / r)'),
  target_modules: targetModulesOption.default('all-linear').describe("modules adapted (PEFT's rules)"),
  exclude_modules: targetModulesOption
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
  sparse_entries: z
    .number()
    .int()
    .positive()
    .default(64)
    .describe('trainable sparse-residual entries per target (N)'),
  sparse_init: z
    .enum(['residual', 'magnitude', 'random'])
    .default('residual')
    .describe("support of the residual: largest |W - low-rank(W)| (the paper's), largest |W|, or random"),
  residual_rank: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('rank of the low-rank part removed before picking the residual support (null: r)'),
  prune_ratio: z
    .number()
    .min(0)
    .lt(1)
    .default(0)
    .describe('fraction of each merged matrix zeroed by magnitude at merge (0: no pruning)'),
});

/** The 'dsee' tuner. */
export const dseeTuner: Tuner<DseeConfig> = {
  name: 'dsee',
  description:
    'DSEE: LoRA plus a sparse residual on the largest |W - low-rank(W)| entries; optional magnitude pruning',
  peftType: DSEE_PEFT_TYPE,
  options: dseeOptions,
  freezesBaseMatrices: false,
  fromOptions(options, context): DseeConfig {
    const o = dseeOptions.parse(options);
    return {
      r: o.r,
      loraAlpha: o.lora_alpha,
      targetModules: o.target_modules,
      excludeModules: o.exclude_modules,
      sparseEntries: o.sparse_entries,
      sparseInit: o.sparse_init,
      residualRank: o.residual_rank,
      pruneRatio: o.prune_ratio,
      seed: context.seed,
    };
  },
  configFromAdapterJson(json, file): DseeConfig {
    if (json.peft_type !== DSEE_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "DSEE"`);
    const targets = json.target_modules;
    if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== 'string'))
      throw new FormatError(file, "'target_modules' must be a non-empty list of module names");
    const num = (key: string, fallback?: number): number => {
      const v = json[key] ?? fallback;
      if (typeof v !== 'number')
        throw new FormatError(file, `'${key}' must be a number, found ${JSON.stringify(v)}`);
      return v;
    };
    return {
      r: num('r'),
      loraAlpha: num('lora_alpha'),
      targetModules: targets as string[],
      sparseEntries: num('sparse_entries'),
      pruneRatio: num('prune_ratio', 0),
      fromFile: true,
    };
  },
  apply(model, config = {}) {
    const c = resolve(config);
    const { modules } = selectTargetModules<Linear>(model, c.targetModules, {
      exclude: c.excludeModules,
      method: 'dsee',
      supported: [Linear],
    });
    const heads = outputLayerNames(model);
    const head = modules.find(([name]) => heads.has(name));
    if (head)
      throw new ConfigError(
        `dsee: target '${head[0]}' is the LM head, which the model applies through its fused loss kernel; leave it out of target_modules`,
      );
    const rng = new Rng(c.seed);
    const layers = modules.map(([name, m]): [string, DseeLinear] => {
      const indices = c.fromFile
        ? Int32Array.from({ length: Math.min(c.sparseEntries, m.weight.size) }, (_, j) => j)
        : dseeSupport(m.weight, c.sparseEntries, c.sparseInit, c.residualRank, rng);
      return [
        name,
        new DseeLinear(m, { r: c.r, scaling: c.loraAlpha / c.r, indices, rng, pruneRatio: c.pruneRatio }),
      ];
    });
    const flags = snapshotTrainable(model);
    model.freeze();
    for (const [name, layer] of layers) model.setSubmodule(name, layer);
    return new DseeAdapter(model, c, layers, flags);
  },
};

registerTuner('dsee', dseeTuner);

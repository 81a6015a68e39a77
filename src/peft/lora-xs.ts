/**
 * LoRA-XS ("LoRA-XS: Low-Rank Adaptation with Extremely Small Number of Parameters"), the tuner
 * 'lora_xs' (peft_type "LORA_XS"; PEFT has no LoRA-XS, see lora-r.ts for the files), as
 * METHODS.md specifies: from the SVD of each target weight, A = (U_r S_r)^T and B = V_r of the SVD
 * of W^T, i.e. with W = U S V^T: B = U_r [out, r] and A = S_r V_r^T [r, in], both frozen; only
 * R [r, r] is trained, initialised N(0, 1e-5^2); scaling 1; W itself is unchanged. So
 * y = W x + B R A x, and r^2 parameters per target.
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import { isJsonObject, type JsonObject } from '../io/index.ts';
import { Linear, type Module } from '../nn/index.ts';
import { matrix64, Rng, svd, tensorToMatrix64 } from '../tensor/index.ts';
import { defaultLoraTargets } from './lora.ts';
import { LoraRAdapter, LoraRLinear, type LowRankCoreInit, positiveIntField } from './lora-r.ts';
import { outputLayerNames, selectTargetModules, type TargetModules } from './targets.ts';
import { registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** LoRA-XS options. */
export interface LoraXsConfig {
  /** Rank r (default 8): r^2 trained values per target. */
  r?: number;
  /** PEFT-style target_modules (default: PEFT's LoRA default for the model type). */
  targetModules?: TargetModules;
  /** Modules to skip even when targeted. */
  excludeModules?: TargetModules | null;
  /** Standard deviation of R's initial values (default 1e-5). */
  rInitStd?: number;
  /** Seed of R's initialisation (default 0). */
  seed?: number;
  /** Start A, B, R at zero without the SVD (a load of saved values follows; set by loadAdapter). */
  fromSaved?: boolean;
}

/** The top-r SVD frame of `w` [out, in]: B = U_r, A = S_r V_r^T, and R ~ N(0, std^2). */
export function loraXsInit(
  w: ReturnType<typeof tensorToMatrix64>,
  r: number,
  std: number,
  rng: Rng,
): LowRankCoreInit {
  const { u, s, v } = svd(w);
  const out = w.rows;
  const inF = w.cols;
  const a = matrix64(r, inF);
  const b = matrix64(out, r);
  for (let j = 0; j < r; j++) {
    for (let o = 0; o < out; o++) b.data[o * r + j] = u!.data[o * u!.cols + j]!;
    for (let i = 0; i < inF; i++) a.data[j * inF + i] = s[j]! * v!.data[i * v!.cols + j]!;
  }
  const core = matrix64(
    r,
    r,
    Float64Array.from({ length: r * r }, () => std * rng.normal()),
  );
  return { a, b, r: core };
}

/** LoRA-XS's options in training configs. */
export const loraXsOptions = z.object({
  r: z.number().int().positive().default(8).describe('rank r: the trained core R is r x r per target'),
  target_modules: z
    .union([z.array(z.string()).min(1), z.string()])
    .nullable()
    .default(null)
    .describe(
      "names (suffix match), a full-match regex or 'all-linear'; null = PEFT's LoRA default for the model type",
    ),
  exclude_modules: z
    .union([z.array(z.string()).min(1), z.string()])
    .nullable()
    .default(null)
    .describe('modules to skip even when targeted'),
  r_init_std: z.number().min(0).default(1e-5).describe("standard deviation of R's Gaussian initialisation"),
});

/**
 * Targets of a LoRA-XS / LoRA-SB config, checked (Linear only, not the LM head) with each one's
 * rank: r, which must be <= min(in, out), or with `capRank` min(r, in, out) (LoRA-SB).
 */
export function selectCoreTargets(
  model: Module,
  method: string,
  targets: TargetModules,
  exclude: TargetModules | null,
  r: number,
  capRank = false,
): { modules: [string, Linear][]; saved: string[] | string; ranks: number[] } {
  const { modules, saved } = selectTargetModules<Linear>(model, targets, {
    exclude,
    method,
    supported: [Linear],
  });
  const heads = outputLayerNames(model);
  for (const [name, layer] of modules) {
    if (heads.has(name))
      throw new ConfigError(
        `${method}: target '${name}' is the LM head (applied by the fused loss kernel); leave it out`,
      );
    if (!capRank && r > Math.min(layer.inFeatures, layer.outFeatures))
      throw new ConfigError(
        `${method}: r must be <= min(in, out) = ${Math.min(layer.inFeatures, layer.outFeatures)} for '${name}', found r = ${r}`,
      );
    if (layer.weight.dtype === 'i32') throw new ConfigError(`${method}: '${name}' needs a float weight`);
  }
  const ranks = modules.map(([, l]) => Math.min(r, l.inFeatures, l.outFeatures));
  return { modules, saved, ranks };
}

/** Wrap every target in a LoraRLinear (after all are checked) and freeze the rest. */
export function applyCore(
  model: Module,
  method: { name: string; peftType: string },
  modules: [string, Linear][],
  inits: (LowRankCoreInit | null)[],
  ranks: readonly number[],
  fields: JsonObject,
): LoraRAdapter {
  const layers = modules.map(([name, linear], i): [string, LoraRLinear] => [
    name,
    new LoraRLinear(linear, ranks[i]!, 1, inits[i]!),
  ]);
  const flags = snapshotTrainable(model);
  model.freeze();
  for (const [name, layer] of layers) model.setSubmodule(name, layer);
  for (const [, l] of layers) l.lora_R.weight.unfreeze();
  return new LoraRAdapter(method, model, layers, flags, fields);
}

/** The target_modules / exclude_modules of an adapter_config.json, checked. */
export function targetFields(
  json: JsonObject,
  file: string,
): { targets: TargetModules | undefined; exclude: TargetModules | null } {
  const ok = (v: unknown) =>
    typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string'));
  const t = json.target_modules;
  const e = json.exclude_modules ?? null;
  if (t !== undefined && t !== null && !ok(t))
    throw new FormatError(
      file,
      `'target_modules' must be a list of names or a regex string, found ${JSON.stringify(t)}`,
    );
  if (e !== null && !ok(e))
    throw new FormatError(
      file,
      `'exclude_modules' must be a list of names or a regex string, found ${JSON.stringify(e)}`,
    );
  return { targets: (t ?? undefined) as TargetModules | undefined, exclude: e as TargetModules | null };
}

const METHOD = { name: 'lora_xs', peftType: 'LORA_XS' };

/** The 'lora_xs' tuner. */
export const loraXsTuner: Tuner<LoraXsConfig> = {
  name: 'lora_xs',
  description: 'LoRA-XS: a trainable r x r core between frozen SVD factors of W (r^2 values per target)',
  peftType: 'LORA_XS',
  options: loraXsOptions,
  fromOptions(options, context): LoraXsConfig {
    const o = loraXsOptions.parse(options);
    return {
      r: o.r,
      targetModules: o.target_modules ?? undefined,
      excludeModules: o.exclude_modules,
      rInitStd: o.r_init_std,
      seed: context.seed,
    };
  },
  apply(model: Module, config: LoraXsConfig): LoraRAdapter {
    if (!isJsonObject(config as unknown)) throw new ConfigError('lora_xs: the config must be an object');
    const r = config.r ?? 8;
    if (!Number.isInteger(r) || r <= 0)
      throw new ConfigError(`lora_xs: r must be a positive integer, found ${r}`);
    const std = config.rInitStd ?? 1e-5;
    if (!(std >= 0)) throw new ConfigError(`lora_xs: rInitStd must be >= 0, found ${std}`);
    const { modules, saved, ranks } = selectCoreTargets(
      model,
      'lora_xs',
      config.targetModules ?? defaultLoraTargets(model),
      config.excludeModules ?? null,
      r,
    );
    const rng = new Rng(config.seed ?? 0);
    const inits = modules.map(([, l]) =>
      config.fromSaved ? null : loraXsInit(tensorToMatrix64(l.weight), r, std, rng),
    );
    const fields: JsonObject = { r, r_init_std: std, target_modules: saved };
    if (config.excludeModules) fields.exclude_modules = config.excludeModules;
    return applyCore(model, METHOD, modules, inits, ranks, fields);
  },
  configFromAdapterJson(json, file): LoraXsConfig {
    const { targets, exclude } = targetFields(json, file);
    const std = json.r_init_std ?? 1e-5;
    if (typeof std !== 'number' || !(std >= 0))
      throw new FormatError(file, `'r_init_std' must be a number >= 0, found ${JSON.stringify(std)}`);
    return {
      r: positiveIntField(json, 'r', file, 8),
      targetModules: targets,
      excludeModules: exclude,
      rInitStd: std,
      fromSaved: true,
    };
  },
};

registerTuner('lora_xs', loraXsTuner);

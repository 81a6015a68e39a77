/**
 * LoRA-SB ("Initialization using Update Approximation is a Silver Bullet for Extremely Efficient
 * Low-Rank Fine-Tuning"), the tuner 'lora_sb' (peft_type "LORA_SB"; PEFT has no LoRA-SB, files in
 * lora-r.ts), as METHODS.md specifies: LoRA-XS's architecture y = W x + B R A x (A, B frozen, R
 * [r, r] trained, scaling 1, W unchanged), initialised from an approximation of the first full
 * fine-tuning update:
 *
 * 1. G = the gradient of the mean next-token NLL with respect to each target W, accumulated over
 *    `grad_samples` (50) calibration examples, one forward/backward each (eval mode);
 * 2. G~ = -lr_eff * sign(G) (a signSGD step, Adam's first step), lr_eff = lr / (warmup_ratio *
 *    total_steps);
 * 3. the rank-r SVD G~ = U S V^T gives B = U_r [out, r], A = V_r^T [r, in] (frozen) and R = diag(S_r),
 *    so the adapted model starts at W + (G~)_r, the best rank-r approximation of that update.
 *
 * (METHODS.md writes A = U_r^T, B = V_r for the SVD of G~ in the [in, out] layout; it is the same.)
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import type { JsonObject } from '../io/index.ts';
import { type CausalLM, isCausalLM, scoreNextTokens } from '../models/index.ts';
import type { Linear, Module } from '../nn/index.ts';
import {
  backward,
  fromArray,
  type Matrix64,
  matrix64,
  mulScalar,
  neg,
  scope,
  sum,
  svd,
} from '../tensor/index.ts';
import { defaultLoraTargets } from './lora.ts';
import { type LoraRAdapter, type LowRankCoreInit, positiveIntField } from './lora-r.ts';
import { applyCore, selectCoreTargets, targetFields } from './lora-xs.ts';
import type { TargetModules } from './targets.ts';
import {
  type CalibrationExample,
  registerTuner,
  restoreTrainable,
  snapshotTrainable,
  type Tuner,
  type TunerContext,
} from './tuner.ts';

/** LoRA-SB options. */
export interface LoraSbConfig {
  /** Rank r (default 96). */
  r?: number;
  targetModules?: TargetModules;
  excludeModules?: TargetModules | null;
  /** The lr of lr_eff = lr / (warmup_ratio * total_steps) (default 1e-4). */
  initLr?: number;
  /** warmup_ratio of lr_eff (default 0.02, open). */
  warmupRatio?: number;
  /** total_steps of lr_eff (the run's train.steps in training configs). */
  totalSteps?: number;
  /** Calibration examples G is accumulated over (default 50). */
  gradSamples?: number;
  /** Reads the calibration examples (set by fromOptions from the run's context). */
  calibration?: (() => CalibrationExample[]) | null;
  /** Start A, B, R at zero (a load of saved values follows; set by loadAdapter). */
  fromSaved?: boolean;
}

/**
 * G: the gradient of each target weight of the mean next-token NLL, summed over `examples` (one
 * forward/backward each, eval mode). Only the target weights receive gradients; every flag and
 * gradient is restored afterwards.
 */
export function accumulateWeightGradients(
  model: CausalLM,
  targets: readonly [string, Linear][],
  examples: readonly CalibrationExample[],
): Float64Array[] {
  const flags = snapshotTrainable(model);
  const wasTraining = model.training;
  const sums = targets.map(([, l]) => new Float64Array(l.weight.size));
  model.freeze();
  for (const [, l] of targets) {
    l.weight.unfreeze();
    l.weight.grad = null;
  }
  model.eval();
  try {
    let used = 0;
    for (const ex of examples) {
      scope(() => {
        const ids = fromArray(ex.inputIds, [1, ex.inputIds.length], { dtype: 'i32' });
        const labels = fromArray(ex.labels, [1, ex.labels.length], { dtype: 'i32' });
        const { result, count } = scoreNextTokens(model, ids, labels);
        if (count === 0) return;
        backward(mulScalar(neg(sum(result.logp)), 1 / count));
        used += 1;
      });
      targets.forEach(([, l], i) => {
        const g = l.weight.grad;
        if (!g) return;
        const d = g.data as Float32Array | Float64Array;
        const s = sums[i]!;
        for (let k = 0; k < s.length; k++) s[k] = s[k]! + d[k]!;
        l.weight.grad = null;
      });
    }
    if (used === 0)
      throw new ConfigError('lora_sb: no calibration example has a supervised token to take a gradient on');
  } finally {
    for (const [, l] of targets) l.weight.grad = null;
    restoreTrainable(flags);
    model.train(wasTraining);
  }
  return sums;
}

/** B = U_r, A = V_r^T, R = diag(S_r) of the SVD of G~ = -lrEff * sign(G) ([out, in]). */
export function loraSbInit(
  g: Float64Array,
  out: number,
  inF: number,
  r: number,
  lrEff: number,
): LowRankCoreInit {
  const tilde: Matrix64 = matrix64(
    out,
    inF,
    Float64Array.from(g, (v) => -lrEff * Math.sign(v)),
  );
  const { u, s, v } = svd(tilde);
  const a = matrix64(r, inF);
  const b = matrix64(out, r);
  const core = matrix64(r, r);
  for (let j = 0; j < r; j++) {
    for (let o = 0; o < out; o++) b.data[o * r + j] = u!.data[o * u!.cols + j]!;
    for (let i = 0; i < inF; i++) a.data[j * inF + i] = v!.data[i * v!.cols + j]!;
    core.data[j * r + j] = s[j]!;
  }
  return { a, b, r: core };
}

/** LoRA-SB's options in training configs. */
export const loraSbOptions = z.object({
  r: z
    .number()
    .int()
    .positive()
    .default(96)
    .describe('rank r: the trained core R is r x r per target (min(in, out) on a smaller target)'),
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
  init_lr: z
    .number()
    .positive()
    .default(1e-4)
    .describe('lr of the approximated first step: lr_eff = init_lr / (warmup_ratio * total_steps)'),
  warmup_ratio: z
    .number()
    .positive()
    .max(1)
    .default(0.02)
    .describe('warmup_ratio of lr_eff (open; Attune default)'),
  total_steps: z
    .number()
    .int()
    .positive()
    .nullable()
    .default(null)
    .describe('total_steps of lr_eff; null = the run (train.steps)'),
  grad_samples: z
    .number()
    .int()
    .positive()
    .default(50)
    .describe('calibration examples the gradient is accumulated over'),
  data: z
    .string()
    .nullable()
    .default(null)
    .describe('calibration JSONL for the gradient; null = the run (data.train)'),
});

const METHOD = { name: 'lora_sb', peftType: 'LORA_SB' };

/** The 'lora_sb' tuner. */
export const loraSbTuner: Tuner<LoraSbConfig> = {
  name: 'lora_sb',
  description: 'LoRA-SB: LoRA-XS architecture initialised from the SVD of an approximated first full update',
  peftType: 'LORA_SB',
  options: loraSbOptions,
  fromOptions(options, context: TunerContext): LoraSbConfig {
    const o = loraSbOptions.parse(options);
    return {
      r: o.r,
      targetModules: o.target_modules ?? undefined,
      excludeModules: o.exclude_modules,
      initLr: o.init_lr,
      warmupRatio: o.warmup_ratio,
      totalSteps: o.total_steps ?? context.steps,
      gradSamples: o.grad_samples,
      calibration: () => {
        if (!context.calibrationData)
          throw new ConfigError(
            'lora_sb: the gradient needs calibration data, which only a training run provides',
          );
        return context.calibrationData(o.data);
      },
    };
  },
  apply(model: Module, config: LoraSbConfig): LoraRAdapter {
    const r = config.r ?? 96;
    if (!Number.isInteger(r) || r <= 0)
      throw new ConfigError(`lora_sb: r must be a positive integer, found ${r}`);
    const initLr = config.initLr ?? 1e-4;
    const warmupRatio = config.warmupRatio ?? 0.02;
    const totalSteps = config.totalSteps;
    const gradSamples = config.gradSamples ?? 50;
    // r (96 by default) larger than a small layer is reduced to its min(in, out): the full-rank frame
    const { modules, saved, ranks } = selectCoreTargets(
      model,
      'lora_sb',
      config.targetModules ?? defaultLoraTargets(model),
      config.excludeModules ?? null,
      r,
      true,
    );
    let inits: (LowRankCoreInit | null)[] = modules.map(() => null);
    if (!config.fromSaved) {
      if (!(initLr > 0) || !(warmupRatio > 0) || !Number.isInteger(totalSteps) || !(totalSteps! > 0)) {
        throw new ConfigError(
          `lora_sb: lr_eff = initLr / (warmupRatio * totalSteps) needs positive values, found initLr ${initLr}, warmupRatio ${warmupRatio}, totalSteps ${totalSteps}`,
        );
      }
      if (!config.calibration)
        throw new ConfigError('lora_sb: the gradient needs calibration data (calibration)');
      if (!isCausalLM(model))
        throw new ConfigError('lora_sb: needs a causal LM (the gradient is of its loss)');
      const examples = config.calibration().slice(0, gradSamples);
      const grads = accumulateWeightGradients(model, modules, examples);
      const lrEff = initLr / (warmupRatio * totalSteps!);
      inits = modules.map(([, l], i) => loraSbInit(grads[i]!, l.outFeatures, l.inFeatures, ranks[i]!, lrEff));
    }
    const fields: JsonObject = {
      grad_samples: gradSamples,
      init_lr: initLr,
      r,
      target_modules: saved,
      total_steps: totalSteps ?? null,
      warmup_ratio: warmupRatio,
    };
    if (config.excludeModules) fields.exclude_modules = config.excludeModules;
    return applyCore(model, METHOD, modules, inits, ranks, fields);
  },
  configFromAdapterJson(json, file): LoraSbConfig {
    const { targets, exclude } = targetFields(json, file);
    const num = (k: string, fallback: number) => {
      const v = json[k] ?? fallback;
      if (typeof v !== 'number')
        throw new FormatError(file, `'${k}' must be a number, found ${JSON.stringify(v)}`);
      return v;
    };
    return {
      r: positiveIntField(json, 'r', file, 96),
      targetModules: targets,
      excludeModules: exclude,
      initLr: num('init_lr', 1e-4),
      warmupRatio: num('warmup_ratio', 0.02),
      totalSteps: typeof json.total_steps === 'number' ? json.total_steps : undefined,
      gradSamples: num('grad_samples', 50),
      fromSaved: true,
    };
  },
};

registerTuner('lora_sb', loraSbTuner);

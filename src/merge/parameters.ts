/**
 * Merge parameters as mergekit names them, each a zod schema with its default, range and one-line
 * description, for method files to pick from. Numeric parameters are mergekit settings: a number, a
 * gradient over the layers, or conditions on the tensor name (settings.ts); every number a setting
 * can take is range-checked. The defaults are mergekit's (registry.py,
 * generalized_task_arithmetic.py); `rescale`, `scope` and `divisor` add the papers' / PEFT's
 * variants (METHODS.md section 3).
 */
import { z } from 'zod';
import { type Setting, settingNumbers } from './settings.ts';

const gradient = z.array(z.number()).min(1);
const condition = z
  .object({ filter: z.string().nullable().optional(), value: z.union([z.number(), gradient]) })
  .strict();

/** A range a numeric setting must stay in. */
export interface SettingRange {
  test(v: number): boolean;
  /** What a value out of range is: `outside (0, 1]`. */
  text: string;
}

/** Finite numbers. */
export const FINITE: SettingRange = { test: Number.isFinite, text: 'not finite' };

function describeValue(value: unknown): string {
  if (typeof value === 'number') return String(value);
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * A numeric setting (number, gradient [a, b, ...], or [{filter, value}, ...]) whose every number
 * lies in `range`; an offender is reported as `path: 1.5 is outside (0, 1]`.
 */
export function numericSetting(range: SettingRange = FINITE) {
  const shapes = [z.number(), gradient, condition, z.array(condition).min(1)] as const;
  const error = (issue: { input?: unknown }) =>
    `expected a number, a gradient [a, b, ...] or conditions [{filter, value}, ...], found ${describeValue(issue.input)}`;
  return z.union(shapes, { error }).superRefine((value, ctx) => {
    for (const v of settingNumbers(value as Setting)) {
      if (!range.test(v))
        ctx.addIssue({ code: 'custom', message: `${v} is ${range.text}`, params: { bare: true } });
    }
  });
}

/** `weight`: a model's weight (mergekit requires it; Attune defaults it to 1). */
const weight = () =>
  numericSetting().default(1).describe('weight of a model (a number, gradient or [{filter, value}])');

/** `density`: fraction of each task vector kept. */
const density = () =>
  numericSetting({ test: (v) => v > 0 && v <= 1, text: 'outside (0, 1]' })
    .default(1)
    .describe('fraction of each task vector kept, in (0, 1]');

/** `gamma`: breadcrumbs' fraction of the largest entries removed. */
const gamma = () =>
  numericSetting({ test: (v) => v >= 0 && v <= 1, text: 'outside [0, 1]' })
    .default(0.01)
    .describe('fraction of the largest-magnitude entries removed, in [0, 1]');

/** `normalize`: divide by the sum of the weights (mergekit's default differs per method). */
const normalize = (byDefault: boolean) =>
  z.boolean().default(byDefault).describe('divide by the sum of the weights');

/** `lambda`: scale of the merged task vector. */
const lambda = () => numericSetting().default(1).describe('scale of the merged task vector');

/** How the kept entries of a sparsified task vector are rescaled. */
export type Rescale = 'l1' | 'inverse_density' | 'none';

/** `rescale`: l1 (mergekit), inverse_density (paper / PEFT) or none; true = l1, false = none. */
const rescale = (byDefault: Rescale) =>
  z
    .union([z.enum(['l1', 'inverse_density', 'none']), z.boolean()])
    .transform((v): Rescale => (v === true ? 'l1' : v === false ? 'none' : v))
    .default(byDefault)
    .describe('rescale kept entries: l1 (mergekit), inverse_density (paper/PEFT) or none; true = l1');

/** Over what the magnitude ranking runs. */
export type Scope = 'tensor' | 'global' | 'row';

/** `scope`: the magnitude ranking over a tensor (mergekit), each row or the whole model. */
const scope = (allowed: readonly [Scope, ...Scope[]] = ['tensor', 'row', 'global']) =>
  z
    .enum(allowed, {
      error: (issue) => `expected one of ${allowed.join(' | ')}, found '${String(issue.input)}'`,
    })
    .default(allowed[0])
    .describe('magnitude ranking over a tensor (mergekit), each row or the whole model');

/** What TIES divides the agreeing sum by (with `normalize: true`). */
export type Divisor = 'weights' | 'count';

/** `divisor`: the agreeing models' weights (mergekit) or their count (paper / PEFT). */
const divisor = () =>
  z
    .enum(['weights', 'count'])
    .default('weights')
    .describe('sign consensus: divide by the agreeing weights (mergekit) or their count (paper/PEFT)');

/** `int8_mask`: mergekit's mask storage type; accepted, no effect on the result. */
const int8Mask = () =>
  z.boolean().default(false).describe('accepted for mergekit configs; no effect on the result');

/** `t`: slerp's interpolation factor (required). */
const t = () =>
  numericSetting()
    .optional()
    .describe('required: interpolation factor from the base (0) to the other model (1)');

/** `filter_wise`: model stock's ratio per row instead of per tensor. */
const filterWise = () =>
  z.boolean().default(false).describe('one interpolation ratio per row instead of per tensor');

/** mergekit's merge parameters, for method files (and plug-ins) to declare their options with. */
export const mergeParameters = {
  weight,
  density,
  gamma,
  normalize,
  lambda,
  rescale,
  scope,
  divisor,
  int8_mask: int8Mask,
  t,
  filter_wise: filterWise,
} as const;

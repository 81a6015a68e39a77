/**
 * Learning-rate schedules with linear warmup, matching Hugging Face transformers'
 * get_constant_schedule_with_warmup, get_linear_schedule_with_warmup and
 * get_cosine_schedule_with_warmup (with min_lr_rate as in get_cosine_with_min_lr_schedule_with_warmup).
 */
import { ConfigError } from '../errors.ts';
import { schedules } from './schedules/index.ts';

/** A registered schedule name ('constant', 'linear', 'cosine', or a plug-in's). */
export type ScheduleKind = string;

export interface ScheduleOptions {
  schedule: ScheduleKind;
  /** Steps of linear warmup from 0 to baseLr (default 0). */
  warmupSteps?: number;
  /** Total optimizer steps (needed by linear and cosine). */
  totalSteps?: number;
  /** Peak learning rate. */
  baseLr: number;
  /**
   * Floor of the decay as a fraction of baseLr (default 0): linear and cosine decay to
   * baseLr * minLrRatio instead of 0 (factor f becomes f * (1 - ratio) + ratio after warmup).
   */
  minLrRatio?: number;
  /** Cosine waves over the decay (default 0.5: one half-wave from baseLr down to the floor). */
  numCycles?: number;
}

/** Throws a ConfigError unless the options describe a valid schedule. */
export function checkSchedule(options: ScheduleOptions): void {
  const { schedule, baseLr } = options;
  const warmup = options.warmupSteps ?? 0;
  const ratio = options.minLrRatio ?? 0;
  if (!schedules.has(schedule)) {
    throw new ConfigError(
      `schedule must be one of ${schedules.names().join(', ')}, found '${String(schedule)}'`,
    );
  }
  if (!(baseLr >= 0) || !Number.isFinite(baseLr))
    throw new ConfigError(`baseLr must be >= 0, found ${baseLr}`);
  if (!Number.isInteger(warmup) || warmup < 0) {
    throw new ConfigError(`warmupSteps must be a non-negative integer, found ${warmup}`);
  }
  if (!(ratio >= 0 && ratio <= 1)) throw new ConfigError(`minLrRatio must be in [0, 1], found ${ratio}`);
  if (schedules.get(schedule).needsTotalSteps) {
    const total = options.totalSteps;
    if (total === undefined || !Number.isInteger(total) || total < 0) {
      throw new ConfigError(
        `the ${schedule} schedule needs totalSteps, a non-negative integer (found ${total})`,
      );
    }
  }
}

/**
 * The multiplier of baseLr after `step` optimizer steps (HF's lr_lambda(current_step)): the
 * update that follows `step` completed steps uses lrAt(step), so with warmup the first update
 * (step 0) has lr 0, exactly as transformers' Trainer.
 *   warmup (step < warmupSteps): step / max(1, warmupSteps)
 *   constant: 1
 *   linear: max(0, (total - step) / max(1, total - warmup))
 *   cosine: max(0, 0.5 (1 + cos(pi * numCycles * 2 * progress))), progress = (step - warmup) / max(1, total - warmup)
 * then, for linear and cosine, f * (1 - minLrRatio) + minLrRatio. Beyond totalSteps the value of
 * step totalSteps is held (HF's cosine would rise again there).
 */
export function lrFactor(step: number, options: ScheduleOptions): number {
  checkSchedule(options);
  if (!(step >= 0) || !Number.isInteger(step))
    throw new ConfigError(`step must be a non-negative integer, found ${step}`);
  const entry = schedules.get(options.schedule);
  const snake: Record<string, unknown> = {
    warmup_steps: options.warmupSteps ?? 0,
    min_lr_ratio: options.minLrRatio ?? 0,
    num_cycles: options.numCycles ?? 0.5,
  };
  const own = Object.fromEntries(Object.entries(snake).filter(([k]) => k in entry.options.shape));
  const validated = entry.options.parse(own) as Record<string, unknown>;
  return entry.factor(step, options.totalSteps ?? 0, validated);
}

/** The learning rate for the update after `step` completed optimizer steps: baseLr * lrFactor. */
export function lrAt(step: number, options: ScheduleOptions): number {
  return options.baseLr * lrFactor(step, options);
}

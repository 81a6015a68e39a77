/**
 * The learning-rate schedule registry: `schedule: {name: cosine, warmup_steps: 20}` names one. A
 * schedule gives the multiplier of the peak learning rate for the update after `step` completed
 * optimizer steps (HF transformers' lr_lambda), from its own validated options.
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';

/** A registered schedule. */
export interface ScheduleFactory<O = Record<string, unknown>> extends RegistryEntry {
  /** Whether the schedule depends on the run's total steps (decaying ones do). */
  readonly needsTotalSteps: boolean;
  /** The multiplier of the peak lr after `step` completed steps of `totalSteps`. */
  factor(step: number, totalSteps: number, options: O): number;
}

/** Every schedule a config can name. */
export const schedules = new Registry<ScheduleFactory>('schedule', 'schedule');

/** Make a schedule available as `schedule: {name: <name>, ...}`. */
export function registerSchedule<S extends z.ZodObject>(factory: {
  name: string;
  description: string;
  options: S;
  needsTotalSteps: boolean;
  factor(step: number, totalSteps: number, options: z.output<S>): number;
}): void {
  schedules.register(factory as unknown as ScheduleFactory);
}

/** The option every schedule has: linear warmup from 0 over the first steps. */
export const warmupSteps = z.number().int().min(0).default(0).describe('linear warmup steps from lr 0');

/** The floor option of decaying schedules. */
export const minLrRatio = z
  .number()
  .min(0)
  .max(1)
  .default(0)
  .describe('floor of the decay as a fraction of lr');

/** HF's warmup: step / max(1, warmup) before `warmup` steps, else null (the schedule's own part). */
export function warmupFactor(step: number, warmup: number): number | null {
  return step < warmup ? step / Math.max(1, warmup) : null;
}

/** The multiplier for the schedule `choice` ({name, ...options}, validated) after `step` steps. */
export function scheduleFactor(
  choice: { name: string } & Record<string, unknown>,
  step: number,
  totalSteps: number,
): number {
  const { name, ...options } = schedules.parse(choice);
  return schedules.get(name).factor(step, totalSteps, options);
}

/**
 * The calibrator registry: each kind a calibrator file (`{type, version, params}`) can hold. An
 * entry says what it calibrates (token logits or a sequence confidence) and how to rebuild a fitted
 * calibrator from its saved params; `calibratorFromJSON` dispatches on `type` through it. A new
 * calibrator is one file with its class and one `registerCalibrator` call (imported by
 * calibrate/builtin.ts).
 */
import { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import { FormatError } from '../../errors.ts';
import { describeJsonValue } from '../../io/index.ts';

/** What every fitted calibrator offers. */
export interface FittedCalibrator {
  readonly type: string;
  toJSON(): { type: string; version: number; params: Record<string, unknown> };
}

/** A registered calibrator kind. */
export interface CalibratorKind extends RegistryEntry {
  /** 'logits': temperature-style, applied to token logits; 'confidence': maps a score in [0, 1]. */
  readonly input: 'logits' | 'confidence';
  /** Rebuild from saved params (`source` names the file in errors). */
  fromParams(params: Record<string, unknown>, source: string): FittedCalibrator;
}

/** Every calibrator kind a file can name. */
export const calibrators = new Registry<CalibratorKind>('calibrator', 'type');

/** Register a calibrator kind (no fitting options today). */
export function registerCalibrator(kind: Omit<CalibratorKind, 'options'>): void {
  calibrators.register({ ...kind, options: z.object({}) });
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : describeJsonValue(value);
}

/** A finite number param, or a FormatError naming `source` and the param. */
export function numberParam(params: Record<string, unknown>, name: string, source: string): number {
  const value = params[name];
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new FormatError(source, `params.${name}: expected a finite number, found ${describe(value)}`);
  }
  return value;
}

/** An array-of-finite-numbers param, or a FormatError naming `source` and the param. */
export function numberArrayParam(params: Record<string, unknown>, name: string, source: string): number[] {
  const value = params[name];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
    throw new FormatError(
      source,
      `params.${name}: expected an array of finite numbers, found ${describe(value)}`,
    );
  }
  return value as number[];
}

/** A boolean param with a default, or a FormatError. */
export function booleanParam(
  params: Record<string, unknown>,
  name: string,
  fallback: boolean,
  source: string,
): boolean {
  const value = params[name] ?? fallback;
  if (typeof value !== 'boolean')
    throw new FormatError(source, `params.${name}: expected true or false, found ${describe(value)}`);
  return value;
}

/** Typed reads of config.json fields; every error names the file and the field. */
import { ConfigError } from '../errors.ts';

/** A number field of a config.json object (`fallback` when absent; throws naming the field). */
export function num(raw: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${where}: missing required field '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ConfigError(`${where}: field '${key}' must be a number, found ${JSON.stringify(v)}`);
  }
  return v;
}

/** A positive-integer field of a config.json object (`fallback` when absent). */
export function posInt(raw: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const v = num(raw, key, where, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new ConfigError(`${where}: field '${key}' must be a positive integer, found ${v}`);
  }
  return v;
}

/** A boolean field of a config.json object (`fallback` when absent). */
export function bool(raw: Record<string, unknown>, key: string, where: string, fallback: boolean): boolean {
  const v = raw[key];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean')
    throw new ConfigError(`${where}: field '${key}' must be true or false, found ${JSON.stringify(v)}`);
  return v;
}

/** Token id(s) of a config field: a number or a list of numbers. */
export function idList(v: unknown): number[] {
  if (typeof v === 'number') return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === 'number');
  return [];
}

/** Typed reads of config.json fields; every error names the file and the field. */
import { ConfigError } from '../errors.ts';
import { briefJson } from '../io/json.ts';

/** A number field of a config.json object (`fallback` when absent; throws naming the field). */
export function num(raw: Record<string, unknown>, key: string, where: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${where}: missing required field '${key}'`);
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ConfigError(`${where}: field '${key}' must be a number, found ${briefJson(v)}`);
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
    throw new ConfigError(`${where}: field '${key}' must be true or false, found ${briefJson(v)}`);
  return v;
}

/** Token id(s) of a config field: a number or a list of numbers; a non-id is an error naming `key`. */
export function idList(v: unknown, where: string, key = 'eos_token_id'): number[] {
  const ids =
    typeof v === 'number' ? [v] : Array.isArray(v) ? v.filter((x): x is number => typeof x === 'number') : [];
  if (ids.some((id) => !Number.isSafeInteger(id) || id < 0))
    throw new ConfigError(
      `${where}: field '${key}' must be a token id or a list of them, found ${briefJson(v)}`,
    );
  return ids;
}

/** `num` that must be > 0 (`'positive'`) or in [0, 1) (`'rate'`), naming the field otherwise. */
export function bounded(
  raw: Record<string, unknown>,
  key: string,
  where: string,
  fallback: number,
  kind: 'positive' | 'rate',
): number {
  const v = num(raw, key, where, fallback);
  if (kind === 'positive' ? v > 0 : v >= 0 && v < 1) return v;
  throw new ConfigError(
    `${where}: field '${key}' must be ${kind === 'positive' ? '> 0' : 'in [0, 1)'}, found ${v}`,
  );
}

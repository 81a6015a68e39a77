/**
 * PEFT's per-module LoRA settings: `rank_pattern` / `alpha_pattern` (a key, a regex, picks the
 * modules whose name it matches as a whole or as a `.`-separated suffix: PEFT's get_pattern_key,
 * `re.match(rf"(.*\.)?({key})$", name)`, first matching key in the object's order wins) and their
 * validation.
 */
import { ConfigError } from '../errors.ts';
import { isJsonObject } from '../io/index.ts';

/** A PEFT `rank_pattern` / `alpha_pattern`: pattern key -> value. */
export type LoraPattern = Readonly<Record<string, number>>;

/** The compiled regex of a pattern key (PEFT's `(.*\.)?(key)$` with re.match, anchored at the start). */
function patternRegex(key: string, what: string): RegExp {
  const js = key.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>');
  try {
    return new RegExp(`^(?:.*\\.)?(?:${js})$`);
  } catch (error) {
    throw new ConfigError(
      `lora: ${what} key '${key}' is not a valid regular expression (${(error as Error).message})`,
    );
  }
}

/**
 * The key of `pattern` that applies to the module `name` (PEFT's get_pattern_key: the first key
 * whose regex matches the whole name or a suffix after a '.'), or null when none does.
 */
export function patternKeyFor(pattern: LoraPattern, name: string, what = 'rank_pattern'): string | null {
  for (const key of Object.keys(pattern)) if (patternRegex(key, what).test(name)) return key;
  return null;
}

/** The value `pattern` gives module `name`, or `fallback` (PEFT: `pattern.get(get_pattern_key(...), default)`). */
export function patternValue(
  pattern: LoraPattern,
  name: string,
  fallback: number,
  what = 'rank_pattern',
): number {
  const key = patternKeyFor(pattern, name, what);
  return key === null ? fallback : pattern[key]!;
}

/**
 * Validate a pattern object: every key a valid regex, every value a positive number (a positive
 * integer with `integer`). Throws a ConfigError naming the field and key. Returns a copy.
 */
export function checkLoraPattern(value: unknown, what: string, integer: boolean): LoraPattern {
  if (value === undefined || value === null) return {};
  if (!isJsonObject(value)) {
    throw new ConfigError(
      `lora: ${what} must be an object of module-name pattern -> ${integer ? 'rank' : 'alpha'}, found ${JSON.stringify(value)}`,
    );
  }
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(value)) {
    patternRegex(key, what);
    const ok = typeof v === 'number' && Number.isFinite(v) && v > 0 && (!integer || Number.isInteger(v));
    if (!ok) {
      throw new ConfigError(
        `lora: ${what}['${key}'] must be a positive ${integer ? 'integer' : 'number'}, found ${JSON.stringify(v)}`,
      );
    }
    out[key] = v as number;
  }
  return out;
}

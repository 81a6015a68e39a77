/**
 * Command-line options: a declarative spec per command (type, default, description for --help),
 * parsed strictly with node:util parseArgs. Every mistake is a UsageError with a one-line message;
 * an unknown flag names the closest valid one.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { closest } from './suggest.ts';

/** One option of a command. */
export interface OptionSpec {
  type: 'string' | 'boolean';
  /** One line for --help. */
  description: string;
  /** One-letter alias (`-h`). */
  short?: string;
  /** Value used when the flag is absent (booleans default to false). */
  default?: string;
  /** How --help shows the default when it is not a fixed string (e.g. "all cores"). */
  defaultText?: string;
  /** Placeholder for the value in --help (`<n>`). */
  valueName?: string;
  /** A string option that may be repeated; its value is then a string[]. */
  multiple?: boolean;
}

export type OptionsSpec = Record<string, OptionSpec>;

/** Parsed values: booleans are always set; strings are set when given or defaulted. */
export type OptionValues<O extends OptionsSpec> = {
  [K in keyof O]: O[K]['type'] extends 'boolean'
    ? boolean
    : O[K] extends { multiple: true }
      ? string[]
      : O[K] extends { default: string }
        ? string
        : string | undefined;
};

export interface ParsedArgs<O extends OptionsSpec = OptionsSpec> {
  values: OptionValues<O>;
  positionals: string[];
}

/** The `-h, --help` flag every command accepts. */
export const helpOption = {
  type: 'boolean',
  short: 'h',
  description: 'Show this help and exit',
} as const satisfies OptionSpec;

/** The `--json` flag of commands with machine-readable output. */
export const jsonOption = {
  type: 'boolean',
  description: 'Also print the result as one JSON object, the last line of stdout',
} as const satisfies OptionSpec;

/** Whether argv asks for help (`-h`/`--help` before any `--`). */
export function wantsHelp(argv: readonly string[]): boolean {
  for (const token of argv) {
    if (token === '--') return false;
    if (token === '--help' || token === '-h') return true;
  }
  return false;
}

/** The display name of an option: `--name`. */
function flag(name: string): string {
  return `--${name}`;
}

function unknownOptionError(token: string, options: OptionsSpec, command: string): UsageError {
  const names = Object.keys(options);
  const match = closest(token.replace(/^--?/, ''), names);
  const hint = match ? `did you mean ${flag(match)}?` : `see '${command} --help'`;
  return new UsageError(`unknown option '${token}' for '${command}' (${hint})`);
}

/**
 * Parse `argv` against `options` (strict: unknown flags, missing values and unexpected positional
 * arguments are UsageErrors). `command` is the full command (`attune bench gemm`) for messages.
 */
export function parseOptions<O extends OptionsSpec>(
  argv: readonly string[],
  options: O,
  command: string,
  allowPositionals = false,
): ParsedArgs<O> {
  const config: Record<
    string,
    { type: 'string' | 'boolean'; short?: string; default?: string | boolean | string[]; multiple?: boolean }
  > = {};
  for (const [name, spec] of Object.entries(options)) {
    config[name] = {
      type: spec.type,
      ...(spec.short ? { short: spec.short } : {}),
      ...(spec.multiple ? { multiple: true, default: [] } : {}),
      ...(spec.type === 'boolean'
        ? { default: false }
        : spec.default !== undefined
          ? { default: spec.default }
          : {}),
    };
  }
  try {
    const parsed = parseArgs({ args: [...argv], options: config, strict: true, allowPositionals });
    return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals };
  } catch (err) {
    const code = (err as { code?: string }).code;
    const message = (err as Error).message;
    const quoted = /'([^']+)'/.exec(message)?.[1] ?? '';
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      // A single-dash word (`-json`) is reported as its first letter; show the word.
      const word = argv.find(
        (t) => quoted.length === 2 && !t.startsWith('--') && t.length > 2 && t.startsWith(quoted),
      );
      const token = word ? word.split('=')[0]! : quoted;
      throw unknownOptionError(token, options, command);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const name = quoted.split(' ')[0]!.replace(/,$/, '');
      const long = /--[\w-]+/.exec(quoted)?.[0] ?? name;
      if (message.includes('argument missing')) throw new UsageError(`option ${long} needs a value`);
      if (message.includes('does not take an argument'))
        throw new UsageError(`option ${long} does not take a value`);
      if (message.includes('ambiguous')) {
        throw new UsageError(
          `option ${long} needs a value; to pass a value starting with '-', write ${long}=<value>`,
        );
      }
      throw new UsageError(message.split('\n')[0]!);
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      throw new UsageError(
        `unexpected argument '${quoted}' for '${command}' (it takes no positional arguments)`,
      );
    }
    throw err;
  }
}

/** Parse an integer option value, at least `min`. */
export function parseInteger(name: string, value: string, min = 1): number {
  const trimmed = value.trim();
  const parsed = Number(trimmed);
  if (trimmed === '' || !Number.isInteger(parsed) || parsed < min) {
    throw new UsageError(`option ${flag(name)} expects an integer >= ${min}, found '${value}'`);
  }
  return parsed;
}

/** Parse a positive number option value (seconds, rates). */
export function parsePositiveNumber(name: string, value: string): number {
  const trimmed = value.trim();
  const parsed = Number(trimmed);
  if (trimmed === '' || !Number.isFinite(parsed) || parsed <= 0) {
    throw new UsageError(`option ${flag(name)} expects a number > 0, found '${value}'`);
  }
  return parsed;
}

/** Parse a comma-separated list of integers, each at least `min` (`256,512,1024`). */
export function parseIntegerList(name: string, value: string, min = 1): number[] {
  const items = value.split(',');
  if (items.some((item) => item.trim() === '')) {
    throw new UsageError(
      `option ${flag(name)} expects comma-separated integers like 256,512, found '${value}'`,
    );
  }
  return items.map((item) => {
    const parsed = Number(item.trim());
    if (!Number.isInteger(parsed) || parsed < min) {
      throw new UsageError(
        `option ${flag(name)} expects integers >= ${min}, found '${item.trim()}' in '${value}'`,
      );
    }
    return parsed;
  });
}

/** Check that an option value is one of `choices`, naming the closest one when it is not. */
export function parseChoice<T extends string>(name: string, value: string, choices: readonly T[]): T {
  if ((choices as readonly string[]).includes(value)) return value as T;
  const match = closest(value, choices);
  const hint = match ? ` (did you mean '${match}'?)` : '';
  throw new UsageError(`option ${flag(name)} expects one of ${choices.join(', ')}, found '${value}'${hint}`);
}

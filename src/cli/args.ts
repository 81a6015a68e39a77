/**
 * Command-line options: a declarative, typed spec per command (kind, range, default, description
 * for --help), parsed and validated here, once, before a command runs, so `run` receives numbers as
 * numbers and choices as their literal types. Kinds: boolean (a flag), string, path, integer,
 * number, choice; `required`, `multiple` (repeatable), `list` (comma-separated integers or
 * choices), ranges (`min`/`max`, exclusive with `exclusiveMin`/`exclusiveMax`) and positional
 * arguments are declared in the spec too. Every mistake is a UsageError with one line in one shape:
 * `--seed: expected an integer >= 0, got "x"`; an unknown flag names the closest valid one.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../errors.ts';
import { closest } from './suggest.ts';

interface CommonSpec {
  /** One line for --help. */
  description: string;
  /** One-letter alias (`-h`). */
  short?: string;
  /** Old names still accepted, hidden from --help; using one prints a one-line deprecation note. */
  deprecatedAliases?: readonly string[];
}

interface ValueSpec extends CommonSpec {
  /** How --help shows the default when it is not a fixed value (e.g. "all cores"). */
  defaultText?: string;
  /** Placeholder for the value in --help (`<n>`). */
  valueName?: string;
  /** The option must be given (a missing one is a usage error before the command runs). */
  required?: boolean;
  /** The option may be repeated; its value is then an array (empty when absent). */
  multiple?: boolean;
}

/** Bounds of a numeric option; `exclusiveMin`/`exclusiveMax` make them strict. */
export interface RangeSpec {
  min?: number;
  max?: number;
  exclusiveMin?: boolean;
  exclusiveMax?: boolean;
}

/** A flag: true when given, else false. */
export interface BooleanSpec extends CommonSpec {
  type: 'boolean';
}

/** Free text (`string`) or a file or folder (`path`: must not be empty). */
export interface TextSpec extends ValueSpec {
  type: 'string' | 'path';
  default?: string;
}

/** An integer in a range; with `list`, comma-separated integers (`256,512`). */
export interface IntegerSpec extends ValueSpec, RangeSpec {
  type: 'integer';
  default?: number;
  list?: boolean;
}

/** A finite number in a range. */
export interface NumberSpec extends ValueSpec, RangeSpec {
  type: 'number';
  default?: number;
}

/** One of `choices`; with `list`, comma-separated choices. */
export interface ChoiceSpec extends ValueSpec {
  type: 'choice';
  choices: readonly string[];
  default?: string;
  list?: boolean;
}

/** One option of a command. */
export type OptionSpec = BooleanSpec | TextSpec | IntegerSpec | NumberSpec | ChoiceSpec;

export type OptionsSpec = Record<string, OptionSpec>;

/** A positional argument (every declared one is required, in order). */
export interface PositionalSpec {
  /** Shown as `<name>` in usage and errors. */
  name: string;
  description: string;
}

type Scalar<S> = S extends { type: 'integer' | 'number' }
  ? number
  : S extends { type: 'choice'; choices: readonly (infer C)[] }
    ? C
    : string;

/** The value of one option: flags are booleans; others are set when given, defaulted or required. */
export type OptionValue<S> = S extends { type: 'boolean' }
  ? boolean
  : S extends { multiple: true }
    ? Scalar<S>[]
    : S extends { list: true }
      ? S extends { required: true }
        ? Scalar<S>[]
        : Scalar<S>[] | undefined
      : S extends { required: true } | { default: string | number }
        ? Scalar<S>
        : Scalar<S> | undefined;

/** Parsed values, typed by the spec. */
export type OptionValues<O extends OptionsSpec> = { [K in keyof O]: OptionValue<O[K]> };

export interface ParsedArgs<O extends OptionsSpec = OptionsSpec> {
  values: OptionValues<O>;
  positionals: string[];
  /** One line per deprecated alias used (main prints them on stderr). */
  notes: string[];
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

/** The repeatable `--import FILE` of commands that run registered methods (src/cli/plugins.ts). */
export const importOption = {
  type: 'path',
  multiple: true,
  valueName: '<file>',
  description: 'a plug-in module to import first: it registers methods, losses, ... (docs/extending.md)',
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

function rangeText(r: RangeSpec): string {
  const lo = r.min;
  const hi = r.max;
  if (lo !== undefined && hi !== undefined) {
    return ` in ${r.exclusiveMin ? '(' : '['}${lo}, ${hi}${r.exclusiveMax ? ')' : ']'}`;
  }
  if (lo !== undefined) return ` ${r.exclusiveMin ? '>' : '>='} ${lo}`;
  if (hi !== undefined) return ` ${r.exclusiveMax ? '<' : '<='} ${hi}`;
  return '';
}

/** What a value of `spec` must be, as a noun phrase: `an integer >= 0`, `one of a, b`. */
export function describeKind(spec: OptionSpec): string {
  switch (spec.type) {
    case 'boolean':
      return 'no value (it is a flag)';
    case 'string':
      return 'a value';
    case 'path':
      return 'a path';
    case 'integer':
      return spec.list ? `comma-separated integers${rangeText(spec)}` : `an integer${rangeText(spec)}`;
    case 'number':
      return `a number${rangeText(spec)}`;
    case 'choice':
      return spec.list
        ? `comma-separated names from ${spec.choices.join(', ')}`
        : `one of ${spec.choices.join(', ')}`;
  }
}

/** The kind and range as --help shows them: `integer >= 1`, `one of: a, b`. */
export function kindLabel(spec: OptionSpec): string {
  switch (spec.type) {
    case 'boolean':
      return 'flag';
    case 'string':
      return 'text';
    case 'path':
      return 'path';
    case 'integer':
      return `${spec.list ? 'comma-separated integers' : 'integer'}${rangeText(spec)}`;
    case 'number':
      return `number${rangeText(spec)}`;
    case 'choice':
      return `${spec.list ? 'comma-separated, from' : 'one of'}: ${spec.choices.join(', ')}`;
  }
}

/** The placeholder --help shows for an option's value. */
export function valueNameOf(spec: OptionSpec): string {
  if (spec.type === 'boolean') return '';
  if (spec.valueName) return spec.valueName;
  switch (spec.type) {
    case 'integer':
      return spec.list ? '<n,n,...>' : '<n>';
    case 'number':
      return '<x>';
    case 'choice':
      return spec.list ? '<a,b,...>' : '<name>';
    case 'path':
      return '<path>';
    default:
      return '<text>';
  }
}

function inRange(value: number, r: RangeSpec): boolean {
  if (r.min !== undefined && (r.exclusiveMin ? value <= r.min : value < r.min)) return false;
  if (r.max !== undefined && (r.exclusiveMax ? value >= r.max : value > r.max)) return false;
  return true;
}

/** The one error shape: `--name: expected <kind>, got "<value>"` (plus a hint). */
function invalid(name: string, spec: OptionSpec, raw: string, hint = ''): UsageError {
  return new UsageError(`${flag(name)}: expected ${describeKind(spec)}, got ${JSON.stringify(raw)}${hint}`);
}

const INTEGER_TEXT = /^[+-]?\d+$/;
const NUMBER_TEXT = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** A decimal number as typed (no hex, no `Infinity`, no empty string), or null. */
function toNumber(text: string, integer: boolean): number | null {
  const trimmed = text.trim();
  if (!(integer ? INTEGER_TEXT : NUMBER_TEXT).test(trimmed)) return null;
  const parsed = Number(trimmed);
  if (!Number.isFinite(parsed) || (integer && !Number.isInteger(parsed))) return null;
  return parsed;
}

function toChoice(name: string, spec: ChoiceSpec, item: string, raw: string): string {
  if (spec.choices.includes(item)) return item;
  const match = closest(item, spec.choices);
  throw invalid(name, spec, raw, match ? ` (did you mean "${match}"?)` : '');
}

/** Convert and validate one raw value of option `name`. */
export function convertValue(
  name: string,
  spec: OptionSpec,
  raw: string,
): string | number | (string | number)[] {
  switch (spec.type) {
    case 'boolean':
      throw invalid(name, spec, raw);
    case 'string':
      return raw;
    case 'path':
      if (raw.trim() === '') throw invalid(name, spec, raw);
      return raw;
    case 'integer':
    case 'number': {
      const integer = spec.type === 'integer';
      const items = spec.type === 'integer' && spec.list ? raw.split(',') : [raw];
      const values = items.map((item) => {
        const parsed = toNumber(item, integer);
        if (parsed === null || !inRange(parsed, spec)) throw invalid(name, spec, raw);
        return parsed;
      });
      return spec.type === 'integer' && spec.list ? values : values[0]!;
    }
    case 'choice':
      if (!spec.list) return toChoice(name, spec, raw, raw);
      return raw.split(',').map((item) => toChoice(name, spec, item.trim(), raw));
  }
}

function unknownOptionError(token: string, options: OptionsSpec, command: string): UsageError {
  const names = Object.keys(options);
  const match = closest(token.replace(/^--?/, ''), names);
  const hint = match ? `did you mean ${flag(match)}?` : `see '${command} --help'`;
  return new UsageError(`unknown option '${token}' for '${command}' (${hint})`);
}

/** The option a token names (`--name`, `--name=...`, `-x`), with its canonical name. */
function optionOfToken(token: string, options: OptionsSpec): [string, OptionSpec] | null {
  for (const [name, spec] of Object.entries(options)) {
    const names = [name, ...(spec.deprecatedAliases ?? [])];
    if (names.some((n) => token === flag(n)) || (spec.short !== undefined && token === `-${spec.short}`))
      return [name, spec];
  }
  return null;
}

/**
 * Join `--n -5` into `--n=-5` for numeric options, so a negative number reaches the range check
 * (node's parser would read `-5` as a flag).
 */
function joinNegativeNumbers(argv: readonly string[], options: OptionsSpec): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      out.push(...argv.slice(i));
      break;
    }
    const next = argv[i + 1];
    const option = optionOfToken(token, options);
    if (
      option &&
      (option[1].type === 'integer' || option[1].type === 'number') &&
      next !== undefined &&
      /^-(\d|\.\d|inf)/i.test(next)
    ) {
      out.push(`${token.startsWith('--') ? token : flag(option[0])}=${next}`);
      i++;
    } else out.push(token);
  }
  return out;
}

function nodeParseConfig(options: OptionsSpec) {
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(options)) {
    const type = spec.type === 'boolean' ? 'boolean' : 'string';
    const multiple = spec.type !== 'boolean' && spec.multiple === true;
    config[name] = { type, ...(spec.short ? { short: spec.short } : {}), ...(multiple ? { multiple } : {}) };
    for (const alias of spec.deprecatedAliases ?? [])
      config[alias] = { type, ...(multiple ? { multiple } : {}) };
  }
  return config;
}

/** Turn node's parse errors into UsageErrors in this module's shape. */
function translateParseError(
  err: unknown,
  argv: readonly string[],
  options: OptionsSpec,
  command: string,
): never {
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
    const long = /--[\w-]+/.exec(quoted)?.[0] ?? quoted.split(' ')[0]!.replace(/,$/, '');
    const found = optionOfToken(long, options);
    const spec = found?.[1];
    const name = long.replace(/^--?/, '');
    if (message.includes('does not take an argument')) {
      const given = argv.find((t) => t.startsWith(`${long}=`))?.slice(long.length + 1) ?? '';
      throw new UsageError(`${long}: expected no value (it is a flag), got ${JSON.stringify(given)}`);
    }
    const expected = spec ? describeKind(spec) : 'a value';
    if (message.includes('ambiguous')) {
      throw new UsageError(
        `${flag(name)}: expected ${expected}, got nothing (to pass a value starting with '-', write ${flag(name)}=<value>)`,
      );
    }
    if (message.includes('argument missing'))
      throw new UsageError(`${flag(name)}: expected ${expected}, got nothing`);
    throw new UsageError(message.split('\n')[0]!);
  }
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
    throw new UsageError(
      `unexpected argument '${quoted}' for '${command}' (it takes no positional arguments)`,
    );
  }
  throw err;
}

function checkPositionals(positionals: string[], specs: readonly PositionalSpec[], command: string): void {
  const usage = specs.map((p) => `<${p.name}>`).join(' ');
  if (positionals.length < specs.length) {
    const missing = specs[positionals.length]!;
    throw new UsageError(
      `missing argument <${missing.name}> (${missing.description}); usage: ${command} ${usage}`,
    );
  }
  if (positionals.length > specs.length) {
    throw new UsageError(
      `unexpected argument '${positionals[specs.length]}' for '${command}' (it takes ${usage})`,
    );
  }
}

/**
 * Parse and validate `argv` against `options` (strict: unknown flags, missing or invalid values,
 * missing required options and unexpected positional arguments are UsageErrors). `command` is the
 * full command (`attune bench gemm`) for messages. `positionals`: false (none), true (any number,
 * unchecked) or the declared positional arguments (exactly those).
 */
export function parseOptions<O extends OptionsSpec>(
  argv: readonly string[],
  options: O,
  command: string,
  positionals: boolean | readonly PositionalSpec[] = false,
): ParsedArgs<O> {
  const args = joinNegativeNumbers(argv, options);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args,
      options: nodeParseConfig(options),
      strict: true,
      allowPositionals: positionals !== false,
    });
  } catch (err) {
    translateParseError(err, args, options, command);
  }
  if (Array.isArray(positionals)) checkPositionals(parsed.positionals, positionals, command);
  const raw = parsed.values as Record<string, string | boolean | string[] | undefined>;
  const values: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const [name, spec] of Object.entries(options)) {
    let given = raw[name];
    for (const alias of spec.deprecatedAliases ?? []) {
      if (raw[alias] === undefined) continue;
      if (given !== undefined)
        throw new UsageError(`${flag(alias)} is the old name of ${flag(name)}; give only one of them`);
      given = raw[alias];
      notes.push(`note: ${flag(alias)} is deprecated; use ${flag(name)}`);
    }
    if (spec.type === 'boolean') {
      values[name] = given === true;
    } else if (Array.isArray(given)) {
      values[name] = given.map((item) => convertValue(name, spec, item));
    } else if (typeof given === 'string') {
      values[name] = convertValue(name, spec, given);
    } else if (spec.required) {
      throw new UsageError(`${flag(name)} ${valueNameOf(spec)} is required`);
    } else {
      values[name] = spec.multiple ? [] : spec.default;
    }
  }
  return { values: values as OptionValues<O>, positionals: parsed.positionals, notes };
}

/**
 * Registries of pluggable methods (tuners, losses, optimizers, schedules, ...). Each entry owns its
 * configuration: a name, a one-line description and a zod object schema of its options (field names
 * as its ecosystem spells them, a default and a `.describe()` line each). Config schemas, the
 * trainer, `--help` and the generated docs iterate a registry instead of listing names, so a new
 * method is one file that calls `register` plus one import line.
 */
import { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { closest } from './suggest.ts';

/** What every registry entry declares. */
export interface RegistryEntry {
  /** The name written in configs (`lora`, `ua-clm`). */
  readonly name: string;
  /** One line for --help and the docs. */
  readonly description: string;
  /** The entry's options (defaults and descriptions included). */
  readonly options: z.ZodObject;
}

/** A method chosen in a config: its name and its validated options (defaults filled in). */
export type MethodChoice = { name: string } & Record<string, unknown>;

function unknownOption(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  if (guess) return `unknown option '${key}' (did you mean '${guess}'?)`;
  return `unknown option '${key}' (options: ${known.join(', ') || 'none'})`;
}

/** A named set of entries of one kind. */
export class Registry<T extends RegistryEntry> {
  private readonly entries = new Map<string, T>();

  /**
   * @param kind what an entry is, for messages ("tuner", "loss").
   * @param field the config field that names an entry ("method", "loss").
   */
  constructor(
    readonly kind: string,
    readonly configField: string,
  ) {}

  /** Add `entry`; a second entry of the same name is an error (unregister it first). */
  register(entry: T): T {
    if (this.entries.has(entry.name))
      throw new ConfigError(`${this.kind} '${entry.name}' is already registered`);
    if (!(entry.options instanceof z.ZodObject))
      throw new ConfigError(`${this.kind} '${entry.name}': options must be a zod object schema`);
    if ('name' in entry.options.shape)
      throw new ConfigError(`${this.kind} '${entry.name}': 'name' is reserved and cannot be an option`);
    this.entries.set(entry.name, entry);
    return entry;
  }

  /** Remove the entry `name` (for tests and plug-ins that replace a built-in). */
  unregister(name: string): void {
    this.entries.delete(name);
  }

  /** Whether `name` is registered. */
  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The registered names, sorted. */
  names(): string[] {
    return [...this.entries.keys()].sort();
  }

  /** Every entry, in registration order (built-ins in their files' order, plug-ins after). */
  list(): T[] {
    return [...this.entries.values()];
  }

  /** Why `name` is not an entry: `unknown tuner 'lroa' (known: full, lora; did you mean 'lora'?)`. */
  unknownMessage(name: string): string {
    const guess = closest(name, this.names());
    const known = this.names().join(', ') || 'none registered';
    return `unknown ${this.kind} '${name}' (known: ${known}${guess ? `; did you mean '${guess}'?` : ''})`;
  }

  /** The entry `name`; a ConfigError naming the closest known one otherwise. */
  get(name: string): T {
    const entry = this.entries.get(name);
    if (!entry) throw new ConfigError(`${this.configField}: ${this.unknownMessage(name)}`);
    return entry;
  }

  /**
   * A zod schema for the config field that picks an entry: a name (`lora`) or `{name, ...options}`.
   * It validates the options against the entry's schema at parse time (so entries registered after
   * the schema was built count) and outputs `{name, ...options with defaults}`. Every problem is an
   * issue at its own path, so one run reports them all.
   */
  schema(defaultName?: string): z.ZodType<MethodChoice> {
    const spec = z.union([z.string(), z.looseObject({ name: z.string() })]);
    const checked = spec.transform((value, ctx): MethodChoice => {
      const { name, ...raw } = typeof value === 'string' ? { name: value } : value;
      const entry = this.entries.get(name);
      if (!entry) {
        ctx.issues.push({ code: 'custom', message: this.unknownMessage(name), input: value, path: ['name'] });
        return z.NEVER;
      }
      const parsed = entry.options.strict().safeParse(raw);
      if (!parsed.success) {
        const known = Object.keys(entry.options.shape);
        for (const issue of parsed.error.issues) {
          const message =
            issue.code === 'unrecognized_keys'
              ? issue.keys.map((k) => unknownOption(k, known)).join('; ')
              : issue.message;
          ctx.issues.push({ ...issue, input: value, message: `${this.kind} '${name}': ${message}` } as never);
        }
        return z.NEVER;
      }
      return { name, ...parsed.data };
    });
    return (defaultName === undefined ? checked : checked.prefault(defaultName as never)) as never;
  }

  /** Validate `value` (a name or `{name, ...options}`) outside a config file; `where` starts errors. */
  parse(value: unknown, where = this.configField): MethodChoice {
    const result = this.schema().safeParse(value);
    if (result.success) return result.data;
    throw new ConfigError(
      result.error.issues.map((i) => `${[where, ...i.path].join('.')}: ${i.message}`).join('; '),
    );
  }
}

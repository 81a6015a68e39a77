/**
 * The config toolkit every YAML command uses (`attune train`, `attune merge`, ...): read a YAML
 * mapping keeping each node's line, apply `--set key=value` overrides, validate with a zod schema
 * and report every problem of the file in one error, each as `file:line: field 'a.b': message`,
 * unknown keys with the closest valid key ("did you mean").
 */
import { readFileSync } from 'node:fs';
import { type Document, LineCounter, parseDocument, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.ts';
import { keysAt } from './schema-info.ts';
import { closest } from './suggest.ts';

/** A parsed YAML mapping and where its nodes are. */
export interface YamlSource {
  /** The file (for messages). */
  path: string;
  /** The mapping as plain data (mutable: overrides and normalisation change it). */
  raw: Record<string, unknown>;
  /** The 1-based line of the node at `path` in the file, or null (e.g. set by an override). */
  lineOf(path: readonly PropertyKey[]): number | null;
}

/** Read `path` as a YAML mapping; unreadable files and invalid YAML are ConfigErrors with the line. */
export function readYamlMapping(path: string, what = 'the config'): YamlSource {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(
      `${path}: cannot read ${what} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0]?.line;
    throw new ConfigError(`${path}${line ? `:${line}` : ''}: invalid YAML: ${e.message.split('\n')[0]}`);
  }
  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 }) ?? {};
  } catch (err) {
    throw new ConfigError(`${path}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new ConfigError(`${path}: ${what} must be a YAML mapping (key: value lines)`);
  const lineOf = (p: readonly PropertyKey[]): number | null => {
    for (let n = p.length; n >= 1; n--) {
      const node = doc.getIn(p.slice(0, n) as unknown[], true) as
        | { range?: [number, number, number] }
        | undefined;
      if (node && typeof node === 'object' && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return null;
  };
  return { path, raw: raw as Record<string, unknown>, lineOf };
}

/** Set `value` at a dotted path in a plain object tree (creating objects on the way). */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let cur = obj;
  parts.slice(0, -1).forEach((part, i) => {
    const next = cur[part];
    // an index steps into a list (`models.1.parameters.weight=0.3`)
    const indexed = Array.isArray(next) && /^\d+$/.test(parts[i + 1]!);
    // a name stands for {name} (method: lora), so `--set method.r=4` keeps the name
    if (typeof next === 'string') cur[part] = { name: next };
    else if (
      !indexed &&
      (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next))
    )
      cur[part] = {};
    cur = cur[part] as Record<string, unknown>;
  });
  cur[parts.at(-1)!] = value;
}

/** Apply `key=value` overrides (values parsed as YAML scalars / flow collections: `train.lr=2e-4`). */
export function applyOverrides(raw: Record<string, unknown>, overrides: readonly string[]): void {
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set '${o}': expected key=value (e.g. train.lr=2e-4)`);
    const key = o.slice(0, eq).trim();
    if (key.split('.').some((part) => part === '' || part === '__proto__' || part === 'constructor'))
      throw new ConfigError(`--set '${o}': '${key}' is not a dotted field path`);
    const text = o.slice(eq + 1);
    let value: unknown;
    try {
      value = parseYaml(text);
    } catch {
      value = text;
    }
    setPath(raw, key, value ?? null);
  }
}

/** `models[0].parameters.density`: keys joined by dots, array indices in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out;
}

/** One line per zod issue: `field 'a.b': ...`, unknown keys with the closest valid key. */
export function describeIssues(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
): {
  path: PropertyKey[];
  message: string;
}[] {
  return issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys' && !issue.message.includes('unknown option')) {
      const known = keysAt(schema, issue.path);
      return issue.keys.map((k) => {
        const full = formatPath([...issue.path, k]);
        const guess = closest(k, known);
        const hint = guess
          ? ` (did you mean '${formatPath([...issue.path, guess])}'?)`
          : ` (valid: ${known.join(', ')})`;
        return { path: [...issue.path, k], message: `unknown key '${full}'${hint}` };
      });
    }
    const at = formatPath(issue.path) || '(top level)';
    // custom issues may ask for `path: message` (params.bare true) or the message alone ('message')
    const bare =
      issue.code === 'custom' ? (issue.params as { bare?: true | 'message' } | undefined)?.bare : undefined;
    if (bare === 'message' || (bare && issue.path.length === 0))
      return [{ path: issue.path, message: issue.message }];
    if (bare) return [{ path: issue.path, message: `${at}: ${issue.message}` }];
    if (issue.code === 'invalid_type' && issue.message.includes('received undefined'))
      return [{ path: issue.path, message: `missing required field '${at}'` }];
    return [{ path: issue.path, message: `field '${at}': ${issue.message}` }];
  });
}

/**
 * Validate `raw` with `schema`. On failure one ConfigError lists every problem, each prefixed with
 * `where` and, when `source` knows it, the line: `train.yaml:7: field 'train.lr': ...`.
 */
export function validateWith<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  where: string,
  source?: Pick<YamlSource, 'lineOf'>,
): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  // one line each: a complex YAML key (`? {...}`) is named by its multi-line rendering
  const problems = describeIssues(schema, result.error.issues).map((p) => ({
    ...p,
    message: p.message.replace(/\s*\n\s*/g, ' '),
  }));
  if (!source) throw new ConfigError(`${where}: ${problems.map((p) => p.message).join('; ')}`);
  const lines = problems.map((p) => {
    const line = source.lineOf(p.path);
    return `${where}${line !== null ? `:${line}` : ''}: ${p.message}`;
  });
  throw new ConfigError(lines.join('; '));
}

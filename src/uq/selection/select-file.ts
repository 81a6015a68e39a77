/**
 * `attune data select` on files: read and validate the candidates (and the target sample) first, so
 * a bad line is a DataError `file:line` before any output exists; score every candidate with the
 * method; keep the top `count` (or `fraction` of the pool, rounded, at least one) by score, ties by
 * line; write the selected lines (in input order, byte for byte) and the per-record scores file,
 * each atomically. The input is never modified.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { type DataRecord, type TokenizedExample, toRecord } from '../../data/index.ts';
import { ConfigError, DataError, FormatError, UsageError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/atomic.ts';
import type { Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';
import type { Adapter } from '../../peft/index.ts';
import { tokenizeForSelection } from './record-model.ts';
import { type SelectionScores, selectionMethods } from './registry.ts';

/** A candidate line: its 1-based line, raw text and record. */
export interface CandidateLine {
  line: number;
  raw: string;
  record: DataRecord;
}

/** How many to keep: a fraction of the pool in (0, 1] or a count. */
export type SelectionSize = { fraction: number } | { count: number };

/** What `selectFile` is given. */
export interface SelectFileOptions {
  data: string;
  out: string;
  /** The scores file (default `<out>.scores.jsonl`). */
  scores?: string;
  method: string;
  /** The method's options (validated by its schema; defaults filled in). */
  methodOptions?: Record<string, unknown>;
  size: SelectionSize;
  target?: string;
  seed?: number;
  onProgress?: (label: string, done: number, total: number) => void;
}

/** The --json summary of a selection. */
export interface SelectionSummary {
  method: string;
  options: Record<string, unknown>;
  data: string;
  out: string;
  scores: string;
  candidates: number;
  selected: number;
  /** The lowest selected score (the cut). */
  cut: number;
  /** Selected 1-based lines. */
  lines: number[];
  method_summary: Record<string, number | string>;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
}

/**
 * Every non-blank line of `path` as a record; invalid JSON, an unknown shape or an empty prompt is a
 * DataError naming file:line, and a file without records is one too.
 */
export function readCandidates(path: string, what = 'candidate'): CandidateLine[] {
  const out: CandidateLine[] = [];
  readText(path)
    .split('\n')
    .forEach((rawLine, i) => {
      const raw = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
      if (raw.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(raw);
      } catch (error) {
        throw new DataError(path, i + 1, `invalid JSON: ${(error as Error).message.split('\n')[0]}`);
      }
      const record = toRecord(value, path, i + 1);
      if (record.shape === 'prompt_completion' && record.prompt.trim() === '')
        throw new DataError(path, i + 1, `the prompt is empty: a ${what} record needs a prompt`);
      if (record.shape === 'text' && record.text.trim() === '')
        throw new DataError(path, i + 1, `the text is empty: a ${what} record needs text`);
      out.push({ line: i + 1, raw, record });
    });
  if (out.length === 0)
    throw new DataError(path, 1, `no ${what} records (expected {prompt, completion} or {text} per line)`);
  return out;
}

/** How many of `pool` records `size` keeps; out-of-range values are ConfigErrors naming the flag. */
export function selectionCount(size: SelectionSize, pool: number): number {
  if ('fraction' in size) {
    if (!(size.fraction > 0 && size.fraction <= 1))
      throw new ConfigError(`--fraction: expected a number in (0, 1], got ${size.fraction}`);
    return Math.max(1, Math.round(size.fraction * pool));
  }
  if (!Number.isInteger(size.count) || size.count < 1)
    throw new ConfigError(`--count: expected a positive integer, got ${size.count}`);
  if (size.count > pool)
    throw new ConfigError(`--count ${size.count} is more than the pool of ${pool} candidate records`);
  return size.count;
}

/** Indices of the `count` highest scores (ties: the earlier index first); NaN scores rank last. */
export function topIndices(scores: ArrayLike<number>, count: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  const key = (i: number) => (Number.isNaN(scores[i]!) ? Number.NEGATIVE_INFINITY : scores[i]!);
  order.sort((a, b) => key(b) - key(a) || a - b);
  return order.slice(0, count);
}

function sameFile(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return resolve(a) === resolve(b);
  }
}

const finite = (v: number) => (Number.isFinite(v) ? v : null);

/** Run a selection (see the file comment) and return its summary. */
export function selectFile(
  model: CausalLM,
  tokenizer: Tokenizer,
  adapter: Adapter | null,
  options: SelectFileOptions,
): SelectionSummary {
  const method = selectionMethods.get(options.method);
  const parsed = selectionMethods.parse({ name: options.method, ...(options.methodOptions ?? {}) });
  const { name: _, ...methodOptions } = parsed;
  const scoresPath = options.scores ?? `${options.out}.scores.jsonl`;
  for (const [flag, path] of [
    ['--out', options.out],
    ['--scores', scoresPath],
  ] as const) {
    if (sameFile(path, options.data))
      throw new UsageError(`${flag} ${path} is the input file; select never modifies its input`);
    if (options.target !== undefined && sameFile(path, options.target))
      throw new UsageError(`${flag} ${path} is the --target file`);
  }
  if (resolve(scoresPath) === resolve(options.out))
    throw new UsageError('--scores and --out name the same file');
  if (method.needsTarget && options.target === undefined)
    throw new UsageError(`--method ${options.method} needs --target (a JSONL sample of the target domain)`);
  const candidates = readCandidates(options.data);
  const count = selectionCount(options.size, candidates.length);
  const targetLines = options.target !== undefined ? readCandidates(options.target, 'target') : null;
  const tokenize = (lines: CandidateLine[]): TokenizedExample[] =>
    lines.map((l) => tokenizeForSelection(l.record, tokenizer));
  const result: SelectionScores = method.score(
    {
      model,
      tokenizer,
      adapter,
      candidates: tokenize(candidates),
      target: targetLines ? tokenize(targetLines) : null,
      seed: options.seed ?? 0,
      onProgress: options.onProgress,
    },
    methodOptions,
  );
  if (result.scores.length !== candidates.length)
    throw new Error(
      `selection method ${options.method} returned ${result.scores.length} scores for ${candidates.length} records`,
    );
  const chosen = topIndices(result.scores, count);
  const selected = new Set(chosen);
  const rankOf = new Map(chosen.map((c, r) => [c, r + 1]));
  writeTextAtomic(
    options.out,
    candidates
      .filter((_, i) => selected.has(i))
      .map((c) => `${c.raw}\n`)
      .join(''),
  );
  const columns = Object.entries(result.columns ?? {});
  writeTextAtomic(
    scoresPath,
    candidates
      .map((c, i) =>
        JSON.stringify({
          line: c.line,
          score: finite(result.scores[i]!),
          selected: selected.has(i),
          rank: rankOf.get(i) ?? null,
          ...Object.fromEntries(columns.map(([k, v]) => [k, finite(v[i]!)])),
        }),
      )
      .map((l) => `${l}\n`)
      .join(''),
  );
  return {
    method: options.method,
    options: methodOptions,
    data: options.data,
    out: options.out,
    scores: scoresPath,
    candidates: candidates.length,
    selected: count,
    cut: result.scores[chosen.at(-1)!]!,
    lines: chosen.map((i) => candidates[i]!.line).sort((a, b) => a - b),
    method_summary: result.summary ?? {},
  };
}

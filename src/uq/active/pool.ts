/**
 * The unlabeled pool of `attune active`: questions with an id and a prompt (`Q: ...\nA:` for the
 * world's pool), read from a JSONL of `{id?, prompt}` lines (id defaults to the line number), and the
 * budget check (the labels the rounds will ask for must fit in the pool).
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, DataError } from '../../errors.ts';

/** One unlabeled question. */
export interface PoolItem {
  /** Unique in the pool; the oracle answers by it. */
  id: string;
  /** What the model continues. */
  prompt: string;
}

/** Read a pool JSONL; an empty prompt, a bad line or a repeated id is a DataError at file:line. */
export function readPoolFile(path: string): PoolItem[] {
  if (!existsSync(path)) throw new ConfigError(`pool.file: file not found: ${path}`);
  const out: PoolItem[] = [];
  const seen = new Set<string>();
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text.trim() === '') return;
      let o: unknown;
      try {
        o = JSON.parse(text);
      } catch (e) {
        throw new DataError(path, i + 1, `expected a JSON object {id?, prompt}: ${(e as Error).message}`);
      }
      if (typeof o !== 'object' || o === null || Array.isArray(o))
        throw new DataError(path, i + 1, 'expected a JSON object {id?, prompt}');
      const r = o as Record<string, unknown>;
      if (typeof r.prompt !== 'string' || r.prompt.trim() === '')
        throw new DataError(
          path,
          i + 1,
          `field 'prompt' must be a non-empty string, found ${JSON.stringify(r.prompt)}`,
        );
      const id = r.id === undefined ? String(i + 1) : typeof r.id === 'number' ? String(r.id) : r.id;
      if (typeof id !== 'string' || id === '')
        throw new DataError(
          path,
          i + 1,
          `field 'id' must be a non-empty string, found ${JSON.stringify(r.id)}`,
        );
      if (seen.has(id)) throw new DataError(path, i + 1, `id '${id}' appears twice in the pool`);
      seen.add(id);
      out.push({ id, prompt: r.prompt });
    });
  if (out.length === 0) throw new DataError(path, 1, 'expected at least one {prompt} line, found none');
  return out;
}

/** The labels a run asks for: seed_labels + rounds x per_round. */
export function labelBudget(seedLabels: number, rounds: number, perRound: number): number {
  return seedLabels + rounds * perRound;
}

/** ConfigError unless the pool holds the whole label budget (and every prompt is non-empty). */
export function checkPool(
  pool: readonly PoolItem[],
  seedLabels: number,
  rounds: number,
  perRound: number,
): void {
  const budget = labelBudget(seedLabels, rounds, perRound);
  if (pool.length < budget)
    throw new ConfigError(
      `active: the pool has ${pool.length} questions, fewer than the label budget ${budget} (seed_labels ${seedLabels} + rounds ${rounds} x per_round ${perRound})`,
    );
  const empty = pool.findIndex((q) => q.prompt.trim() === '');
  if (empty >= 0)
    throw new ConfigError(`active: pool question ${empty + 1} (id '${pool[empty]!.id}') has an empty prompt`);
}

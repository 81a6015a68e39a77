/**
 * Files of a noisy fine-tuning set: the JSONL records and, beside them, the ground truth of every
 * line (`<name>.truth.jsonl`: one CorruptionTruth per line, line for line). Both are written
 * atomically; the truth file is read back with validation.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataError, FormatError } from '../errors.ts';
import { writeTextAtomic } from '../io/atomic.ts';
import { type CorruptedSet, type CorruptionTruth, MALFORMED_KINDS } from './corrupt.ts';
import { generateWorld, RELATIONS, type World, type WorldOptions } from './generate.ts';

/** The truth file written beside the noisy JSONL file `path` (`x.jsonl` -> `x.truth.jsonl`). */
export function truthPathFor(path: string): string {
  return path.endsWith('.jsonl') ? `${path.slice(0, -'.jsonl'.length)}.truth.jsonl` : `${path}.truth.jsonl`;
}

/** Write the noisy records to `path` and their truth to `truthPathFor(path)`; returns both paths. */
export function writeCorruptedSet(set: CorruptedSet, path: string): { data: string; truth: string } {
  const truth = truthPathFor(path);
  writeTextAtomic(path, set.lines.map((l) => `${l}\n`).join(''));
  writeTextAtomic(truth, set.truth.map((t) => `${JSON.stringify(t)}\n`).join(''));
  return { data: path, truth };
}

const STATUSES = new Set(['clean', 'corrupted', 'malformed']);
const RELATION_SET = new Set<string>(RELATIONS);
const DEFECTS = new Set<string>(MALFORMED_KINDS);

/** Read a truth file; a bad line is a DataError naming the file and line. */
export function readCorruptionTruth(path: string): CorruptionTruth[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
  const out: CorruptionTruth[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new DataError(path, i + 1, `invalid JSON: ${(error as Error).message}`);
    }
    if (!Number.isInteger(value.line) || (value.line as number) < 1)
      throw new DataError(
        path,
        i + 1,
        `field 'line' must be a positive integer, found ${JSON.stringify(value.line)}`,
      );
    if (typeof value.status !== 'string' || !STATUSES.has(value.status))
      throw new DataError(
        path,
        i + 1,
        `field 'status' must be clean, corrupted or malformed, found ${JSON.stringify(value.status)}`,
      );
    if (typeof value.relation !== 'string' || !RELATION_SET.has(value.relation))
      throw new DataError(path, i + 1, `field 'relation' must be one of ${RELATIONS.join(', ')}`);
    for (const key of ['entity', 'answer'] as const)
      if (typeof value[key] !== 'string')
        throw new DataError(path, i + 1, `field '${key}' must be a string, found ${typeof value[key]}`);
    if (value.status === 'corrupted' && typeof value.given !== 'string')
      throw new DataError(path, i + 1, `a corrupted line needs field 'given' (the wrong answer) as a string`);
    if (value.status === 'malformed' && (typeof value.defect !== 'string' || !DEFECTS.has(value.defect)))
      throw new DataError(
        path,
        i + 1,
        `a malformed line needs field 'defect', one of ${MALFORMED_KINDS.join(', ')}`,
      );
    out.push(value as unknown as CorruptionTruth);
  });
  return out;
}

/**
 * The world of a folder written by `attune world` (its world.json), regenerated from the stored
 * options so that it is exactly the generator's world; a missing or foreign file is a FormatError.
 */
export function readWorldDir(worldDir: string): World {
  const path = join(worldDir, 'world.json');
  let value: Partial<World>;
  try {
    value = JSON.parse(readFileSync(path, 'utf8')) as Partial<World>;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT'
        ? 'file not found (is this a folder written by attune world?)'
        : `cannot read: ${(error as Error).message}`,
    );
  }
  if (value.format !== 'attune-world' || value.version !== 1 || typeof value.options !== 'object')
    throw new FormatError(
      path,
      `expected format 'attune-world' version 1, found ${JSON.stringify(value.format)} ${JSON.stringify(value.version)}`,
    );
  return generateWorld(value.options as WorldOptions);
}

/**
 * The pool and oracle of an `attune active` config, resolved: `pool: {world: DIR, seed}` is the
 * world's unlabeled question pool (oracle.ts renderQuestionPool), `pool: {file}` a JSONL of prompts;
 * `oracle: {name: world, world: DIR}` answers from the world, `{name: jsonl, file}` from a labels file.
 */
import {
  type ActiveConfig,
  type LabelOracle,
  LabelsOracle,
  type PoolItem,
  readLabelsFile,
  readPoolFile,
} from '../uq/index.ts';
import { readWorldDir } from './corrupt-write.ts';
import { renderQuestionPool, WorldOracle } from './oracle.ts';

/** The pool questions of `pool`. */
export function activePool(pool: ActiveConfig['pool']): PoolItem[] {
  if ('file' in pool) return readPoolFile(pool.file);
  return renderQuestionPool(readWorldDir(pool.world), { seed: pool.seed }).map((q) => ({
    id: q.id,
    prompt: q.prompt,
  }));
}

/** The labelling oracle of `oracle`. */
export function activeOracle(oracle: ActiveConfig['oracle']): LabelOracle {
  if (oracle.name === 'world') return new WorldOracle(readWorldDir(oracle.world));
  return new LabelsOracle(readLabelsFile(oracle.file));
}

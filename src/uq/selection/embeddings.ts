/** Mean-pooled embeddings of the candidates and the target, with a progress callback. */
import type { TokenizedExample } from '../../data/index.ts';
import { recordEmbedding } from './record-model.ts';
import type { SelectionInput } from './registry.ts';

/** The embedding of each of `examples` (progress under `label`). */
export function embedAll(
  input: SelectionInput,
  examples: readonly TokenizedExample[],
  label: string,
): Float64Array[] {
  return examples.map((e, i) => {
    const v = recordEmbedding(input.model, e);
    input.onProgress?.(label, i + 1, examples.length);
    return v;
  });
}

/** Each vector scaled to unit L2 norm (a zero vector stays zero). */
export function normalizeRows(rows: readonly Float64Array[]): Float64Array[] {
  return rows.map((r) => {
    let s = 0;
    for (const v of r) s += v * v;
    const norm = Math.sqrt(s);
    return norm > 0 ? r.map((v) => v / norm) : r.slice();
  });
}

/** The targets of `input` or a clear error (the registry's needsTarget is checked earlier; this is the type guard). */
export function requireTarget(input: SelectionInput, method: string): readonly TokenizedExample[] {
  if (!input.target || input.target.length === 0) throw new Error(`${method}: needs a target sample`);
  return input.target;
}

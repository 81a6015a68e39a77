/**
 * Labelling oracles of active learning (`attune active`): something that answers a pool question
 * by its id, one counted call per label. The world's oracle (src/world/oracle.ts) implements the
 * interface; `LabelsOracle` answers from given labels, e.g. a JSONL of `{id, answer}` lines.
 */
import { existsSync, readFileSync } from 'node:fs';
import { ConfigError, DataError } from '../../errors.ts';

/** Something that labels pool questions, one call each. */
export interface LabelOracle {
  /** The answer (trimmed, without the leading space of a completion) to `question`. */
  label(question: { id: string }): string;
  /** Labels given so far. */
  readonly calls: number;
}

/** An oracle over given labels (id -> answer), e.g. read from a JSONL of labels; counts its calls. */
export class LabelsOracle implements LabelOracle {
  private count = 0;

  constructor(private readonly labels: ReadonlyMap<string, string>) {}

  /** Labels given so far. */
  get calls(): number {
    return this.count;
  }

  /** The label of `question`; an id without one is a ConfigError. */
  label(question: { id: string }): string {
    const answer = this.labels.get(question.id);
    if (answer === undefined) throw new ConfigError(`oracle: no label for question '${question.id}'`);
    this.count++;
    return answer;
  }
}

/** Read a labels JSONL (`{id, answer}` per line, ids unique); DataError at file:line for a bad line. */
export function readLabelsFile(path: string): Map<string, string> {
  if (!existsSync(path)) throw new ConfigError(`oracle.file: file not found: ${path}`);
  const labels = new Map<string, string>();
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text.trim() === '') return;
      let o: unknown;
      try {
        o = JSON.parse(text);
      } catch (e) {
        throw new DataError(path, i + 1, `expected a JSON object {id, answer}: ${(e as Error).message}`);
      }
      const r = o as Record<string, unknown>;
      if (typeof o !== 'object' || o === null || Array.isArray(o))
        throw new DataError(path, i + 1, 'expected a JSON object {id, answer}');
      const id = typeof r.id === 'number' ? String(r.id) : r.id;
      if (typeof id !== 'string' || id === '')
        throw new DataError(
          path,
          i + 1,
          `field 'id' must be a non-empty string, found ${JSON.stringify(r.id)}`,
        );
      if (typeof r.answer !== 'string')
        throw new DataError(
          path,
          i + 1,
          `field 'answer' must be a string, found ${JSON.stringify(r.answer)}`,
        );
      if (labels.has(id)) throw new DataError(path, i + 1, `id '${id}' is labelled twice`);
      labels.set(id, r.answer.trim());
    });
  if (labels.size === 0) throw new DataError(path, 1, 'expected at least one {id, answer} line, found none');
  return labels;
}

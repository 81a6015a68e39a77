/** The records `attune score --data` reads: one `{"text": ...}` or `{"ids": [...]}` per JSONL line. */
import { readFileSync } from 'node:fs';
import { DataError, FormatError } from '../errors.ts';

/** A text to encode with the tokenizer, or token ids scored as given. */
export type ScoreRecord = { text: string } | { ids: number[] };

function readText(path: string): string {
  try {
    const text = readFileSync(path, 'utf8');
    return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
}

/**
 * Every non-blank line of `path` as a ScoreRecord. A line that is not JSON, not an object, or has
 * neither a string `text` nor an `ids` array of non-negative integers is a DataError naming file:line;
 * a file with no records is one too.
 */
export function readScoreRecords(path: string): ScoreRecord[] {
  const records: ScoreRecord[] = [];
  readText(path)
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (error) {
        throw new DataError(path, i + 1, `invalid JSON: ${(error as Error).message.split('\n')[0]}`);
      }
      const r = value as { text?: unknown; ids?: unknown } | null;
      if (r !== null && typeof r === 'object' && typeof r.text === 'string') records.push({ text: r.text });
      else if (
        r !== null &&
        typeof r === 'object' &&
        Array.isArray(r.ids) &&
        r.ids.length > 0 &&
        r.ids.every((x) => Number.isInteger(x) && x >= 0)
      )
        records.push({ ids: r.ids as number[] });
      else throw new DataError(path, i + 1, 'expected {"text": string} or {"ids": [non-negative int, ...]}');
    });
  if (records.length === 0)
    throw new DataError(path, 1, 'no records (expected {"text": ...} or {"ids": [...]} per line)');
  return records;
}

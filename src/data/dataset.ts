/**
 * A training set from a JSONL file: read, validate and tokenise, with the skipped records counted
 * and reported (nothing is dropped silently) and a summary of what was kept.
 */
import { FormatError } from '../errors.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import { readJsonl, type SkippedRecord } from './jsonl.ts';
import {
  type BoundaryMerges,
  IGNORE_INDEX,
  type TokenizedExample,
  type TokenizeOptions,
  tokenizeRecords,
} from './tokenize.ts';

export interface LoadDatasetOptions extends TokenizeOptions {
  /**
   * Receives the one-line summary of skipped and truncated records and the one-line warning about
   * records merged across their prompt/response boundary (only when there are some); default:
   * written to stderr.
   */
  report?: (line: string) => void;
}

export interface DatasetStats {
  /** Records read from the file, skipped ones included. */
  records: number;
  /** Examples kept. */
  examples: number;
  /** Records skipped (invalid or unusable) under `onBadRecord: 'skip'`. */
  skipped: number;
  /** Kept examples that were truncated to maxLength. */
  truncated: number;
  /** Tokens of the kept examples. */
  tokens: number;
  /** Trained tokens (label != -100) of the kept examples, position 0 of each excluded. */
  trainedTokens: number;
  /** Kept examples whose text the tokenizer merged across the prompt/response boundary. */
  boundaryMerges: number;
}

export interface Dataset {
  examples: TokenizedExample[];
  skipped: SkippedRecord[];
  stats: DatasetStats;
}

/** Token and trained-token counts of `examples` (trained: label != -100 at positions >= 1). */
export function countTokens(examples: readonly TokenizedExample[]): {
  tokens: number;
  trainedTokens: number;
} {
  let tokens = 0;
  let trainedTokens = 0;
  for (const example of examples) {
    tokens += example.inputIds.length;
    for (let t = 1; t < example.labels.length; t++) if (example.labels[t] !== IGNORE_INDEX) trainedTokens++;
  }
  return { tokens, trainedTokens };
}

/**
 * One line describing the records of `file` that were skipped and truncated, e.g.
 * `train.jsonl: skipped 2 of 50 records (line 7: field 'completion' must be a string, found number; line 9: ...)`,
 * listing at most `maxListed` (default 3) reasons; null when nothing was skipped or truncated.
 */
export function describeSkipped(
  file: string,
  skipped: readonly SkippedRecord[],
  records: number,
  truncated = 0,
  maxListed = 3,
): string | null {
  const parts: string[] = [];
  if (skipped.length > 0) {
    const listed = skipped
      .slice(0, maxListed)
      .map((s) => `line ${s.line}: ${s.reason}`)
      .join('; ');
    const more = skipped.length > maxListed ? `; and ${skipped.length - maxListed} more` : '';
    parts.push(`skipped ${skipped.length} of ${records} records (${listed}${more})`);
  }
  if (truncated > 0) parts.push(`truncated ${truncated} records to maxLength`);
  return parts.length === 0 ? null : `${file}: ${parts.join('; ')}`;
}

/**
 * The one-line warning about records merged across their prompt/response boundary, e.g.
 * `train.jsonl: the tokenizer merges text across the prompt/response boundary in 37 of 50 records
 * (first: line 1, token "found▁a▁"); ...`; null when none was.
 */
export function describeBoundaryMerges(
  file: string,
  merges: BoundaryMerges | null,
  examples: number,
): string | null {
  if (merges === null) return null;
  const token = merges.token === undefined ? '' : `, token ${JSON.stringify(merges.token)}`;
  return (
    `${file}: warning: the tokenizer merges text across the prompt/response boundary in ${merges.count} of ` +
    `${examples} records (first: line ${merges.line}${token}); their prompts are tokenized as at inference and the ` +
    'responses separately, so they are trained on tokens that differ from tokenizing each record whole'
  );
}

/**
 * Read the JSONL file `path`, validate and tokenise its records (see jsonl.ts and tokenize.ts).
 * Bad records throw (default) or are skipped, counted and reported through `options.report`; a file
 * with no usable record is a FormatError. Everything that can be wrong with the data fails here,
 * before training starts.
 */
export function loadDataset(path: string, tokenizer: Tokenizer, options: LoadDatasetOptions = {}): Dataset {
  const read = readJsonl(path, { onBadRecord: options.onBadRecord });
  const tokenized = tokenizeRecords(read.records, tokenizer, options);
  const skipped = [...read.skipped, ...tokenized.skipped].sort((a, b) => a.line - b.line);
  const records = read.records.length + read.skipped.length;
  const truncated = tokenized.examples.filter((e) => e.truncatedTokens > 0).length;
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  const summary = describeSkipped(path, skipped, records, truncated);
  if (summary !== null) report(summary);
  const merges = describeBoundaryMerges(path, tokenized.boundaryMerges, tokenized.examples.length);
  if (merges !== null) report(merges);
  if (tokenized.examples.length === 0) {
    throw new FormatError(
      path,
      records === 0
        ? 'no records (the file is empty)'
        : `none of its ${records} records is usable (all were skipped)`,
    );
  }
  const counts = countTokens(tokenized.examples);
  return {
    examples: tokenized.examples,
    skipped,
    stats: {
      records,
      examples: tokenized.examples.length,
      skipped: skipped.length,
      truncated,
      ...counts,
      boundaryMerges: tokenized.boundaryMerges?.count ?? 0,
    },
  };
}

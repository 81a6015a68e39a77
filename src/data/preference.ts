/**
 * Preference data: JSONL records of one prompt and two responses, the preferred (`chosen`) and the
 * dispreferred (`rejected`), in two shapes (mixed in one file is allowed):
 *
 *   prompt    {"prompt": "...", "chosen": "...", "rejected": "..."}
 *   messages  {"messages": [{"role": "user", "content": "..."}, ...], "chosen": "...", "rejected": "..."}
 *
 * Either shape may carry an optional `"weight": w` (a finite number >= 0, default 1): the pair's
 * weight in the preference loss (dpo: the per-pair losses are weighted, e.g. UPO's judge confidence).
 * Both examples of the pair carry it as `TokenizedExample.weight`.
 *
 * Each record becomes two examples, tokenised exactly like the corresponding supervised record
 * (tokenize.ts): `{prompt, completion: chosen}` and `{prompt, completion: rejected}`, or the
 * conversation followed by an assistant turn with the response (chat template, chat.ts). Only the
 * response tokens are trained (labelled), so the sum of their log-probs is log pi(response | prompt).
 * The examples of record k are at indices 2k (chosen) and 2k + 1 (rejected) of the dataset, so a
 * loader with `groupSize: 2` keeps every pair in one micro-batch.
 *
 * A bad record (empty prompt, a missing / empty / non-string `chosen` or `rejected`, chosen equal to
 * rejected, a conversation that ends with an assistant turn) is a DataError `<file>:<line>: <reason>`;
 * with `onBadRecord: 'skip'` the whole pair is skipped, counted and reported.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, DataError, FormatError } from '../errors.ts';
import type { ChatMessage } from '../io/chat-template.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import { requireChatTemplate } from './chat.ts';
import { countTokens, type Dataset, describeSkipped, type LoadDatasetOptions } from './dataset.ts';
import {
  checkOnBadRecord,
  type DataRecord,
  jsonTypeName,
  type MessagesRecord,
  type SkippedRecord,
  toRecord,
} from './jsonl.ts';
import { tokenizeRecord } from './tokenize.ts';

/** One validated preference record. */
export interface PreferenceRecord {
  file: string;
  line: number;
  /** The context: a plain prompt, or a conversation (rendered with the chat template). */
  context: { shape: 'prompt'; prompt: string } | { shape: 'messages'; messages: ChatMessage[] };
  chosen: string;
  rejected: string;
  /** The pair's weight in the loss (the record's `weight`, default 1). */
  weight: number;
}

/** Examples per preference record (chosen, rejected): the loader's `groupSize` for pairs. */
export const PAIR_SIZE = 2;

/** Validate one parsed JSON value as a preference record of `file` at `line`; DataError otherwise. */
export function toPreferenceRecord(value: unknown, file: string, line: number): PreferenceRecord {
  const fail = (reason: string): never => {
    throw new DataError(file, line, reason);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail(`expected a JSON object {prompt, chosen, rejected}, found ${jsonTypeName(value)}`);
  const object = value as Record<string, unknown>;
  const hasPrompt = 'prompt' in object;
  const hasMessages = 'messages' in object;
  if (hasPrompt === hasMessages) {
    fail(
      hasPrompt
        ? `ambiguous preference record: it has both 'prompt' and 'messages'; use one`
        : `a preference record needs 'prompt' or 'messages' next to 'chosen' and 'rejected'; found fields ${
            Object.keys(object)
              .map((f) => `'${f}'`)
              .join(', ') || 'none'
          }`,
    );
  }
  const response = (field: 'chosen' | 'rejected'): string => {
    const v = object[field];
    if (v === undefined) fail(`preference record is missing field '${field}'`);
    if (typeof v !== 'string') fail(`field '${field}' must be a string, found ${jsonTypeName(v)}`);
    if ((v as string).trim() === '') fail(`field '${field}' must not be empty`);
    return v as string;
  };
  let context: PreferenceRecord['context'];
  if (hasPrompt) {
    const prompt = object.prompt;
    if (typeof prompt !== 'string') fail(`field 'prompt' must be a string, found ${jsonTypeName(prompt)}`);
    if ((prompt as string).trim() === '') fail(`field 'prompt' must not be empty`);
    context = { shape: 'prompt', prompt: prompt as string };
  } else {
    // the same validation as a {messages} training record
    const record = toRecord({ messages: object.messages }, file, line);
    const messages = (record as Extract<DataRecord, { shape: 'messages' }>).messages;
    if (messages[messages.length - 1]!.role === 'assistant') {
      fail(
        `the conversation ends with an assistant turn; the responses 'chosen' and 'rejected' are the next assistant turn`,
      );
    }
    context = { shape: 'messages', messages };
  }
  const chosen = response('chosen');
  const rejected = response('rejected');
  if (chosen === rejected)
    fail(`'chosen' and 'rejected' are the same text; a pair needs two different responses`);
  const w = object.weight;
  if (w !== undefined && (typeof w !== 'number' || !Number.isFinite(w) || w < 0))
    fail(`field 'weight' must be a finite number >= 0, found ${typeof w === 'number' ? w : jsonTypeName(w)}`);
  return { file, line, context, chosen, rejected, weight: (w as number | undefined) ?? 1 };
}

/** The supervised record whose trained part is `response` after the context of `record`. */
export function responseRecord(record: PreferenceRecord, response: string): DataRecord {
  const { file, line } = record;
  if (record.context.shape === 'prompt')
    return { shape: 'prompt_completion', file, line, prompt: record.context.prompt, completion: response };
  return {
    shape: 'messages',
    file,
    line,
    messages: [...record.context.messages, { role: 'assistant', content: response }],
  };
}

/**
 * Read and validate the preference JSONL file `path` (blank lines skipped, 1-based line numbers). A
 * file that cannot be read is a FormatError; a bad record a DataError, or under
 * `onBadRecord: 'skip'` an entry of `skipped`.
 */
export function readPreferenceJsonl(
  path: string,
  options: { onBadRecord?: LoadDatasetOptions['onBadRecord'] } = {},
): { records: PreferenceRecord[]; skipped: SkippedRecord[] } {
  const onBadRecord = checkOnBadRecord(options.onBadRecord);
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
  const records: PreferenceRecord[] = [];
  const skipped: SkippedRecord[] = [];
  text
    .replace(/^\uFEFF/, '')
    .split('\n')
    .forEach((raw, index) => {
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (line.trim() === '') return;
      try {
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch (error) {
          throw new DataError(
            path,
            index + 1,
            `invalid JSON: ${(error as Error).message.replace(/\s*\n\s*/g, ' ')}`,
          );
        }
        records.push(toPreferenceRecord(value, path, index + 1));
      } catch (error) {
        if (onBadRecord === 'skip' && error instanceof DataError) skipped.push(skippedOf(error));
        else throw error;
      }
    });
  return { records, skipped };
}

function skippedOf(error: DataError): SkippedRecord {
  return {
    file: error.file,
    line: error.line,
    reason: error.message.slice(`${error.file}:${error.line}: `.length),
  };
}

/**
 * Read, validate and tokenise the preference file `path` into a Dataset of 2 examples per record
 * (chosen at 2k, rejected at 2k + 1; see the file comment). Tokenisation options are those of
 * supervised data, except that only the response is ever trained (`trainOn: 'all'` is refused).
 */
export function loadPreferenceDataset(
  path: string,
  tokenizer: Tokenizer,
  options: LoadDatasetOptions = {},
): Dataset {
  if (options.trainOn === 'all') {
    throw new ConfigError(
      `data.train_on: 'all' cannot be used with preference data (${path}): the preference loss compares the responses' log-probs, so only 'chosen' and 'rejected' are trained`,
    );
  }
  const onBadRecord = checkOnBadRecord(options.onBadRecord);
  const read = readPreferenceJsonl(path, { onBadRecord });
  const firstChat = read.records.find((r) => r.context.shape === 'messages');
  // a tokenizer without a chat template is a setup problem, not a bad record: an error whatever onBadRecord says
  if (firstChat)
    requireChatTemplate(
      tokenizer,
      responseRecord(firstChat, firstChat.chosen) as MessagesRecord,
      options.chatTemplate,
    );
  const examples: Dataset['examples'] = [];
  const skipped = [...read.skipped];
  for (const record of read.records) {
    try {
      const chosen = tokenizeRecord(responseRecord(record, record.chosen), tokenizer, options);
      const rejected = tokenizeRecord(responseRecord(record, record.rejected), tokenizer, options);
      if (record.weight !== 1) {
        chosen.weight = record.weight;
        rejected.weight = record.weight;
      }
      examples.push(chosen, rejected);
    } catch (error) {
      if (onBadRecord === 'skip' && error instanceof DataError) skipped.push(skippedOf(error));
      else throw error;
    }
  }
  skipped.sort((a, b) => a.line - b.line);
  const records = read.records.length + read.skipped.length;
  const truncated = examples.filter((e) => e.truncatedTokens > 0).length;
  const summary = describeSkipped(path, skipped, records, truncated);
  const report = options.report ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (summary !== null) report(summary);
  if (examples.length === 0) {
    throw new FormatError(
      path,
      records === 0
        ? 'no preference records (the file is empty)'
        : `none of its ${records} preference records is usable`,
    );
  }
  return {
    examples,
    skipped,
    stats: {
      records,
      examples: examples.length,
      skipped: skipped.length,
      truncated,
      ...countTokens(examples),
      boundaryMerges: 0,
    },
  };
}

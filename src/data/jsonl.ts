/**
 * JSONL training data: one JSON object per line, in one of four shapes (mixed shapes in one file are
 * allowed):
 *
 *   text               {"text": "..."}
 *   prompt_completion  {"prompt": "...", "completion": "..."}
 *   messages           {"messages": [{"role": "user", "content": "..."}, ...]}
 *   alpaca             {"instruction": "...", "input": "...", "output": "..."}   (input optional)
 *
 * Blank lines are skipped; line numbers are 1-based and count every line of the file. Fields other
 * than the shape's own (ids, metadata) are ignored. Each record is validated; a bad one is a
 * DataError `<file>:<line>: <reason>`, or, with `onBadRecord: 'skip'`, listed in `skipped`.
 */

import { isUtf8 } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { ConfigError, DataError, FormatError } from '../errors.ts';
import type { ChatMessage } from '../io/chat-template.ts';

/** What to do with a record that cannot be used: stop with its DataError, or skip and count it. */
export type OnBadRecord = 'error' | 'skip';

/** The four record shapes. */
export type RecordShape = 'text' | 'prompt_completion' | 'messages' | 'alpaca';

/** Roles a chat message may have. */
export const CHAT_ROLES: readonly string[] = ['system', 'user', 'assistant', 'tool'];

/** Where a record came from (named in every error about it). */
export interface RecordSource {
  file: string;
  /** 1-based line number in `file`. */
  line: number;
  /** The record's `weight`: the loss weight of every trained token (absent = 1). */
  weight?: number;
  /** The record's `token_weights`: one loss weight per trained token, in order (absent = all 1). */
  tokenWeights?: number[];
}

/** `{text}`: every token is trained. */
export interface TextRecord extends RecordSource {
  shape: 'text';
  text: string;
}

/** `{prompt, completion}`: the completion is trained, the prompt is context. */
export interface PromptCompletionRecord extends RecordSource {
  shape: 'prompt_completion';
  prompt: string;
  completion: string;
}

/** `{messages}`: a conversation rendered with the tokenizer's chat template; assistant turns are trained. */
export interface MessagesRecord extends RecordSource {
  shape: 'messages';
  messages: ChatMessage[];
}

/** Alpaca `{instruction, input, output}` (input '' when absent): the output is trained. */
export interface AlpacaRecord extends RecordSource {
  shape: 'alpaca';
  instruction: string;
  input: string;
  output: string;
}

/** One validated record of a JSONL file. */
export type DataRecord = TextRecord | PromptCompletionRecord | MessagesRecord | AlpacaRecord;

/** A record left out under `onBadRecord: 'skip'`. */
export interface SkippedRecord {
  file: string;
  line: number;
  reason: string;
}

export interface ReadJsonlOptions {
  /** 'error' (default): the first bad record throws its DataError; 'skip': it is listed in `skipped`. */
  onBadRecord?: OnBadRecord;
  /** Line numbers whose bytes are not valid UTF-8 (set by `readJsonl`): bad records. */
  badUtf8Lines?: ReadonlySet<number>;
}

export interface JsonlResult {
  records: DataRecord[];
  skipped: SkippedRecord[];
}

/** The fields that identify each shape (a record is of the shape whose fields it has). */
const SHAPE_FIELDS: Readonly<Record<RecordShape, readonly string[]>> = {
  text: ['text'],
  prompt_completion: ['prompt', 'completion'],
  messages: ['messages'],
  alpaca: ['instruction', 'input', 'output'],
};

const SHAPE_NAMES: Readonly<Record<RecordShape, string>> = {
  text: '{text}',
  prompt_completion: '{prompt, completion}',
  messages: '{messages}',
  alpaca: '{instruction, input, output}',
};

/** A record that fails validation: the reason, without the file:line prefix. */
class RecordProblem extends Error {}

/** The JSON type of `value` as named in errors: string, number, boolean, null, array or object. */
export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/** Throws a ConfigError unless `value` is a valid onBadRecord option (undefined gives 'error'). */
export function checkOnBadRecord(value: unknown): OnBadRecord {
  if (value === undefined) return 'error';
  if (value === 'error' || value === 'skip') return value;
  throw new ConfigError(`option 'onBadRecord' must be 'error' or 'skip', found ${JSON.stringify(value)}`);
}

/**
 * Read the JSONL file `path` and validate every record. A file that cannot be read is a
 * FormatError; a bad record is a DataError naming `path` and its line (or, with
 * `onBadRecord: 'skip'`, an entry of `skipped`).
 */
export function readJsonl(path: string, options: ReadJsonlOptions = {}): JsonlResult {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FormatError(path, 'file not found');
    if (code === 'EISDIR') throw new FormatError(path, 'is a folder, expected a JSONL file');
    throw new FormatError(path, `cannot read: ${(error as Error).message.split('\n')[0]}`);
  }
  if (isUtf8(bytes)) return parseJsonl(bytes.toString('utf8'), path, options);
  // Not UTF-8: each line that is not is a bad record (decoded lossily, it would train on U+FFFD).
  const badUtf8 = new Set<number>();
  for (let start = 0, line = 1; start <= bytes.length; line++) {
    const newline = bytes.indexOf(10, start);
    const end = newline < 0 ? bytes.length : newline;
    if (!isUtf8(bytes.subarray(start, end))) badUtf8.add(line);
    start = end + 1;
  }
  return parseJsonl(bytes.toString('utf8'), path, { ...options, badUtf8Lines: badUtf8 });
}

/**
 * Parse and validate JSONL `text` (the contents of `file`, which errors name). Lines are split on
 * `\n` (a trailing `\r` is dropped, a leading byte-order mark ignored); blank lines are skipped.
 */
export function parseJsonl(text: string, file: string, options: ReadJsonlOptions = {}): JsonlResult {
  const onBadRecord = checkOnBadRecord(options.onBadRecord);
  const records: DataRecord[] = [];
  const skipped: SkippedRecord[] = [];
  let start = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let lineNumber = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    lineNumber++;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    start = end + 1;
    if (line.trim() === '' && !options.badUtf8Lines?.has(lineNumber)) continue;
    try {
      if (options.badUtf8Lines?.has(lineNumber)) throw new RecordProblem('the line is not valid UTF-8');
      records.push(parseRecord(line, file, lineNumber));
    } catch (error) {
      if (!(error instanceof RecordProblem)) throw error;
      if (onBadRecord === 'error') throw new DataError(file, lineNumber, error.message);
      skipped.push({ file, line: lineNumber, reason: error.message });
    }
  }
  return { records, skipped };
}

/**
 * Validate one parsed JSON value as a record of `file` at `line`; throws a DataError naming them.
 * (For records that do not come from a file, e.g. generated ones.)
 */
export function toRecord(value: unknown, file: string, line: number): DataRecord {
  try {
    return validateRecord(value, file, line);
  } catch (error) {
    if (error instanceof RecordProblem) throw new DataError(file, line, error.message);
    throw error;
  }
}

function parseRecord(line: string, file: string, lineNumber: number): DataRecord {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    const detail = (error as Error).message.replace(/\s*\n\s*/g, ' ');
    throw new RecordProblem(`invalid JSON: ${detail}`);
  }
  return validateRecord(value, file, lineNumber);
}

function validateRecord(value: unknown, file: string, line: number): DataRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new RecordProblem(`expected a JSON object, found ${jsonTypeName(value)}`);
  }
  const object = value as Record<string, unknown>;
  const shape = detectShape(object);
  const weights = recordWeights(object);
  return { ...shapedRecord(object, shape, file, line), ...weights } as DataRecord;
}

/** The fields of `object` as a record of `shape` (without the optional weights). */
function shapedRecord(
  object: Record<string, unknown>,
  shape: RecordShape,
  file: string,
  line: number,
): DataRecord {
  switch (shape) {
    case 'text':
      return { shape, file, line, text: requiredString(object, 'text', shape, false) };
    case 'prompt_completion':
      return {
        shape,
        file,
        line,
        prompt: requiredString(object, 'prompt', shape, true),
        completion: requiredString(object, 'completion', shape, false),
      };
    case 'alpaca': {
      const input = object.input === undefined ? '' : object.input;
      if (typeof input !== 'string') {
        throw new RecordProblem(`field 'input' must be a string, found ${jsonTypeName(input)}`);
      }
      return {
        shape,
        file,
        line,
        instruction: requiredString(object, 'instruction', shape, false),
        input,
        output: requiredString(object, 'output', shape, false),
      };
    }
    case 'messages':
      return { shape, file, line, messages: validateMessages(object.messages) };
  }
}

/** A loss weight: a finite number >= 0 (RecordProblem naming `where` otherwise). */
function lossWeight(value: unknown, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
    throw new RecordProblem(
      `${where} must be a finite number >= 0, found ${typeof value === 'number' ? value : jsonTypeName(value)}`,
    );
  return value;
}

/** The optional `weight` and `token_weights` of a record, validated. */
function recordWeights(object: Record<string, unknown>): Pick<RecordSource, 'weight' | 'tokenWeights'> {
  const out: Pick<RecordSource, 'weight' | 'tokenWeights'> = {};
  if (object.weight !== undefined) out.weight = lossWeight(object.weight, "field 'weight'");
  const tw = object.token_weights;
  if (tw !== undefined) {
    if (!Array.isArray(tw))
      throw new RecordProblem(`field 'token_weights' must be a list of numbers, found ${jsonTypeName(tw)}`);
    out.tokenWeights = tw.map((w, i) => lossWeight(w, `token_weights[${i}]`));
  }
  return out;
}

/** The shape of `object`, from the fields it has; a RecordProblem when none or several match. */
function detectShape(object: Record<string, unknown>): RecordShape {
  const shapes = (Object.keys(SHAPE_FIELDS) as RecordShape[]).filter((shape) =>
    SHAPE_FIELDS[shape].some((field) => field in object),
  );
  if (shapes.length === 1) return shapes[0]!;
  if (shapes.length === 0) {
    const fields = Object.keys(object);
    throw new RecordProblem(
      `unknown record shape: expected ${Object.values(SHAPE_NAMES).join(', ')}; found ${
        fields.length === 0 ? 'no fields' : `fields ${fields.map((f) => `'${f}'`).join(', ')}`
      }`,
    );
  }
  const described = shapes.map((shape) => {
    const present = SHAPE_FIELDS[shape].filter((field) => field in object);
    return `${SHAPE_NAMES[shape]} (${present.map((f) => `'${f}'`).join(', ')})`;
  });
  throw new RecordProblem(
    `ambiguous record: it has fields of ${described.join(' and ')}; use one shape per record`,
  );
}

function requiredString(
  object: Record<string, unknown>,
  field: string,
  shape: RecordShape,
  emptyAllowed: boolean,
): string {
  const value = object[field];
  if (value === undefined)
    throw new RecordProblem(`${SHAPE_NAMES[shape]} record is missing field '${field}'`);
  if (typeof value !== 'string') {
    throw new RecordProblem(`field '${field}' must be a string, found ${jsonTypeName(value)}`);
  }
  if (!emptyAllowed && value.length === 0) throw new RecordProblem(`field '${field}' must not be empty`);
  return value;
}

function validateMessages(value: unknown): ChatMessage[] {
  if (!Array.isArray(value)) {
    throw new RecordProblem(
      `field 'messages' must be a list of {role, content}, found ${jsonTypeName(value)}`,
    );
  }
  if (value.length === 0) throw new RecordProblem(`field 'messages' must not be empty`);
  return value.map((message, index): ChatMessage => {
    const where = `messages[${index}]`;
    if (typeof message !== 'object' || message === null || Array.isArray(message)) {
      throw new RecordProblem(`${where} must be an object {role, content}, found ${jsonTypeName(message)}`);
    }
    const { role, content } = message as Record<string, unknown>;
    if (role === undefined) throw new RecordProblem(`${where} is missing field 'role'`);
    if (typeof role !== 'string') {
      throw new RecordProblem(`${where}.role must be a string, found ${jsonTypeName(role)}`);
    }
    if (!CHAT_ROLES.includes(role)) {
      throw new RecordProblem(`${where}.role '${role}' is not one of ${CHAT_ROLES.join(', ')}`);
    }
    if (content === undefined) throw new RecordProblem(`${where} is missing field 'content'`);
    if (typeof content !== 'string') {
      throw new RecordProblem(`${where}.content must be a string, found ${jsonTypeName(content)}`);
    }
    const weight = (message as Record<string, unknown>).weight;
    if (weight !== undefined) {
      if (role !== 'assistant')
        throw new RecordProblem(
          `${where}.weight is set on a '${role}' message; only assistant messages are trained`,
        );
      lossWeight(weight, `${where}.weight`);
    }
    return { ...(message as Record<string, unknown>), role, content };
  });
}

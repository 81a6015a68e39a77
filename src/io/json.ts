/**
 * JSON files: read with one-line errors that name the file and the line and column of a syntax
 * error; write atomically in the Hugging Face style (2-space indent, trailing newline).
 */
import { isUtf8 } from 'node:buffer';
import { existsSync, readFileSync } from 'node:fs';
import { FormatError } from '../errors.ts';
import { writeTextAtomic } from './atomic.ts';

/** A parsed JSON object (not an array, not null). */
export type JsonObject = Record<string, unknown>;

/**
 * Deepest nesting of arrays and objects accepted, as serde_json (which the Rust tokenizers and
 * safetensors libraries parse with) allows: deeper values would overflow the stack of any
 * recursive walker (validation, error messages, copies) later.
 */
export const MAX_JSON_DEPTH = 128;

/** Offset of the first bracket nested deeper than `max` levels in JSON `text`, or -1. */
function tooDeepAt(text: string, max: number): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) return i;
    } else if (c === 93 || c === 125) depth--;
  }
  return -1;
}

/**
 * Parse `text` (the contents of `file`, used in errors). A syntax error becomes a one-line
 * FormatError: `<file>: invalid JSON at line L, column C: <what was found>`; so does nesting
 * deeper than MAX_JSON_DEPTH.
 */
export function parseJson(text: string, file: string): unknown {
  const source = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const deep = tooDeepAt(source, MAX_JSON_DEPTH);
  if (deep >= 0) {
    const { line, column } = lineAndColumn(source, deep);
    throw new FormatError(
      file,
      `JSON nested deeper than ${MAX_JSON_DEPTH} levels at line ${line}, column ${column}`,
    );
  }
  try {
    return JSON.parse(source);
  } catch (error) {
    const located = locateJsonError(source);
    if (located) {
      const { line, column } = lineAndColumn(source, located.position);
      throw new FormatError(file, `invalid JSON at line ${line}, column ${column}: ${located.reason}`);
    }
    const detail = (error as Error).message.split('\n')[0];
    throw new FormatError(file, `invalid JSON: ${detail}`);
  }
}

/**
 * The text of the UTF-8 file `path`. A missing or unreadable file, or bytes that are not UTF-8
 * (named by line and column; a lossy decode would silently change names and tokens), is a
 * FormatError naming it.
 */
export function readUtf8(path: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new FormatError(path, 'file not found');
    throw new FormatError(path, `cannot read: ${(error as Error).message.split('\n')[0]}`);
  }
  if (isUtf8(bytes)) return bytes.toString('utf8');
  const lossy = bytes.toString('utf8');
  const { line, column } = lineAndColumn(lossy, Math.max(0, lossy.indexOf('\ufffd')));
  throw new FormatError(path, `not valid UTF-8 (at line ${line}, column ${column})`);
}

/** Read and parse the JSON file `path`; a missing file, bytes that are not UTF-8 or a syntax error is a FormatError naming it. */
export function readJson(path: string): unknown {
  return parseJson(readUtf8(path), path);
}

/** Read the JSON file `path`, which must hold an object (`what` names it in the error, e.g. "a model config"). */
export function readJsonObject(path: string, what = 'a JSON object'): JsonObject {
  const value = readJson(path);
  if (!isJsonObject(value)) {
    throw new FormatError(path, `expected ${what} ({...}), found ${describeJsonValue(value)}`);
  }
  return value;
}

/** Like `readJsonObject`, but a missing file gives null. */
export function readOptionalJsonObject(path: string, what?: string): JsonObject | null {
  if (!existsSync(path)) return null;
  return readJsonObject(path, what);
}

/** Write `value` as JSON to `path` atomically: 2-space indent and a trailing newline, as transformers writes. */
export function writeJsonAtomic(path: string, value: unknown): void {
  const text = JSON.stringify(value, null, 2);
  if (text === undefined) throw new TypeError(`writeJsonAtomic(${path}): the value is not JSON-serializable`);
  writeTextAtomic(path, `${text}\n`);
}

/** Whether `value` is a plain JSON object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A short description of a JSON value's kind for error messages ("an array", "null", "a string"). */
export function describeJsonValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/**
 * `value` as JSON for an error message, cut to `max` characters (with '...'): safe for any value
 * (deeply nested, huge, circular, or not JSON at all, e.g. NaN or undefined).
 */
export function briefJson(value: unknown, max = 80): string {
  let text: string;
  try {
    text =
      typeof value === 'number' && !Number.isFinite(value)
        ? String(value)
        : (JSON.stringify(value) ?? String(value));
  } catch {
    text = Array.isArray(value) ? '[...]' : typeof value === 'object' ? '{...}' : String(value);
  }
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

/** 1-based line and column of a character offset. */
function lineAndColumn(text: string, position: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < position && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: position - lineStart + 1 };
}

/**
 * The offset and a description of the first syntax error in `text` (a small JSON scanner, used
 * only after JSON.parse failed, because V8's messages do not always carry a position), or null if
 * the scanner finds none.
 */
function locateJsonError(text: string): { position: number; reason: string } | null {
  let i = 0;
  const fail = (reason: string): never => {
    throw { position: i, reason };
  };
  const found = (): string => {
    if (i >= text.length) return 'unexpected end of input';
    const c = text[i]!;
    return `unexpected ${JSON.stringify(c)}`;
  };
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const literal = (word: string) => {
    for (let k = 0; k < word.length; k++, i++) {
      if (text[i] !== word[k]) fail(`${found()} (expected ${word})`);
    }
  };
  const string = () => {
    i++; // opening quote
    while (true) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return;
      }
      if (c < 32) fail('control character in string (escape it)');
      if (c === 92) {
        i++;
        const e = text[i];
        if (e === 'u') {
          for (let k = 1; k <= 4; k++) {
            if (!/[0-9a-fA-F]/.test(text[i + k] ?? '')) {
              i += k;
              fail('invalid \\u escape');
            }
          }
          i += 5;
        } else if (e !== undefined && '"\\/bfnrt'.includes(e)) i++;
        else fail('invalid escape in string');
      } else i++;
    }
  };
  const number = () => {
    const match = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 400));
    if (!match || match[0].length === 0 || match[0] === '-') fail(`${found()} (expected a value)`);
    i += match![0].length;
  };
  const value = (depth: number): void => {
    if (depth > 10000) fail('nesting too deep');
    skipSpace();
    const c = text[i];
    if (c === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      while (true) {
        skipSpace();
        if (text[i] !== '"') fail(`${found()} (expected a double-quoted property name)`);
        string();
        skipSpace();
        if (text[i] !== ':') fail(`${found()} (expected ':')`);
        i++;
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`${found()} (expected ',' or '}')`);
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      while (true) {
        value(depth + 1);
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`${found()} (expected ',' or ']')`);
      }
    }
    if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail(`${found()} (expected a value)`);
  };
  try {
    value(0);
    skipSpace();
    if (i < text.length) fail(`${found()} after the end of the JSON value`);
    return null;
  } catch (error) {
    if (typeof error === 'object' && error !== null && 'position' in error) {
      return error as { position: number; reason: string };
    }
    return null; // e.g. a stack overflow on absurd nesting: fall back to V8's message
  }
}

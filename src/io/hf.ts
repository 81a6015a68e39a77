/**
 * Files of a Hugging Face model folder other than weights and tokenizer: `config.json` and
 * `generation_config.json`, returned as raw JSON objects (validating model fields is models/' job).
 */
import { join } from 'node:path';
import { FormatError } from '../errors.ts';
import { briefJson, type JsonObject, readJsonObject, readOptionalJsonObject } from './json.ts';

/** The model config file of a Hugging Face folder. */
export const CONFIG_FILE = 'config.json';
/** The optional generation defaults file of a Hugging Face folder. */
export const GENERATION_CONFIG_FILE = 'generation_config.json';

/** The raw `config.json` object of the model folder `dir` (FormatError naming the file if missing or malformed). */
export function readModelConfig(dir: string): JsonObject {
  return readJsonObject(join(dir, CONFIG_FILE), 'a model config object');
}

/** The raw `generation_config.json` object of `dir`, or null when the folder has none. */
export function readGenerationConfig(dir: string): JsonObject | null {
  return readOptionalJsonObject(join(dir, GENERATION_CONFIG_FILE), 'a generation config object');
}

/**
 * The token ids of a config's `field` (default `eos_token_id`), which transformers allows to be a
 * single id or a list: [] when absent or null; a FormatError naming `file` for anything else.
 */
export function tokenIdsOf(config: JsonObject, file: string, field = 'eos_token_id'): number[] {
  const value = config[field];
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  for (const id of list) {
    if (!Number.isSafeInteger(id) || (id as number) < 0) {
      throw new FormatError(
        file,
        `${field} must be a token id or a list of token ids, found ${briefJson(value)}`,
      );
    }
  }
  return list as number[];
}

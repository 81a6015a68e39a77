/**
 * Fitting a hidden-state density on data (`attune uq fit-density`): every record of a JSONL file
 * (`{text}`, `{prompt, completion}`, `{prompt, answer}` or `{messages}`) is encoded whole and
 * passed through the model once; its mean final hidden state is one sample of the Gaussian.
 */
import { readFileSync } from 'node:fs';
import { DataError, FormatError } from '../errors.ts';
import type { ChatMessage, Tokenizer } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { DEFAULT_DENSITY_RIDGE, fitGaussian, type Gaussian } from './density.ts';
import { sequenceInternals } from './internals.ts';

/** The token ids of every record of `path` (a DataError names file:line for a bad record). */
export function readDensityRecords(
  path: string,
  tokenizer: Tokenizer,
  options: { chatTemplate?: string; maxTokens?: number } = {},
): number[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new FormatError(path, `cannot read: ${(error as Error).message}`);
  }
  const out: number[][] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let r: Record<string, unknown>;
    try {
      r = JSON.parse(line);
    } catch (error) {
      throw new DataError(path, i + 1, `invalid JSON: ${(error as Error).message}`);
    }
    let ids: number[];
    if (r !== null && typeof r === 'object' && typeof r.text === 'string') ids = tokenizer.encode(r.text);
    else if (r !== null && typeof r === 'object' && typeof r.prompt === 'string') {
      const rest =
        typeof r.completion === 'string' ? r.completion : typeof r.answer === 'string' ? r.answer : '';
      const sep = rest !== '' && !/\s$/.test(r.prompt) && !/^\s/.test(rest) ? ' ' : '';
      ids = tokenizer.encode(r.prompt + sep + rest);
    } else if (r !== null && typeof r === 'object' && Array.isArray(r.messages))
      ids = tokenizer.encodeChat(r.messages as ChatMessage[], { chatTemplate: options.chatTemplate });
    else
      throw new DataError(
        path,
        i + 1,
        'expected {"text"}, {"prompt", "completion" | "answer"} or {"messages"} (a string or an array of messages)',
      );
    if (ids.length === 0) throw new DataError(path, i + 1, 'the record encodes to no tokens');
    out.push(options.maxTokens !== undefined ? ids.slice(0, options.maxTokens) : ids);
  });
  if (out.length < 2) throw new DataError(path, 1, `a density needs at least 2 records, found ${out.length}`);
  return out;
}

/** Fit the Gaussian of the mean hidden states of `sequences` under `model`. */
export function fitDensityOnSequences(
  model: CausalLM,
  sequences: readonly number[][],
  options: { ridge?: number; onProgress?: (done: number, total: number) => void } = {},
): Gaussian {
  const wasTraining = model.training;
  model.eval();
  try {
    const rows = sequences.map((ids, i) => {
      const { meanHidden } = sequenceInternals(model, ids);
      options.onProgress?.(i + 1, sequences.length);
      return meanHidden;
    });
    return fitGaussian(rows, options.ridge ?? DEFAULT_DENSITY_RIDGE);
  } finally {
    model.train(wasTraining);
  }
}

/** Options and loading shared by commands that run a model (generate, score, eval). */
import { readFileSync } from 'node:fs';
import { FormatError, UsageError } from '../errors.ts';
import type { Tokenizer } from '../io/index.ts';
import { type LoadedModel, loadModel } from '../models/index.ts';
import { loadAdapter } from '../peft/index.ts';

/** --model (required), --adapter and --dtype. */
export const modelOptions = {
  model: {
    type: 'path',
    required: true,
    description: 'Hub-format model directory (config.json, safetensors, tokenizer)',
    valueName: '<dir>',
  },
  adapter: {
    type: 'path',
    description: 'PEFT adapter directory to apply (adapter_config.json + adapter_model.safetensors)',
    valueName: '<dir>',
  },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16'],
    description: 'weight storage',
    default: 'f32',
  },
} as const;

/** Load --model (with --adapter applied) as the flags say, in eval mode. */
export function loadModelFromFlags(values: {
  model: string;
  adapter?: string | undefined;
  dtype: 'f32' | 'bf16';
}): LoadedModel {
  const loaded = loadModel(values.model, { dtype: values.dtype });
  if (values.adapter) loadAdapter(loaded.model, values.adapter);
  loaded.model.eval();
  return loaded;
}

/** A stop string as typed on a command line: `\n` and `\t` stand for newline and tab. */
export function unescapeStop(text: string): string {
  return text.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

/** The source of a `--chat-template` file; a missing or unreadable file is a FormatError naming it. */
export function readChatTemplate(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new FormatError(
      path,
      code === 'ENOENT' ? 'file not found' : `cannot read: ${(error as Error).message}`,
    );
  }
}

/** A UsageError pointing to --chat-template unless `tokenizer` has a default chat template. */
export function requireChatTemplate(tokenizer: Tokenizer, what: string): void {
  if (tokenizer.chatTemplate !== null) return;
  const named = Object.keys(tokenizer.chatTemplates);
  throw new UsageError(
    `${what}: the tokenizer of ${tokenizer.origin} has ${named.length > 0 ? `no default chat template (named: ${named.join(', ')})` : 'no chat template'}; pass one with --chat-template <file>`,
  );
}

/** Shared helpers of the data/ tests: temp JSONL files and the real tokenizers (ATTUNE_TEST_MODELS). */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { DataError } from '../../../src/errors.ts';
import { Tokenizer } from '../../../src/io/tokenizer.ts';
import { testModelDir } from '../../helpers/models-env.ts';

/** SmolLM2's ChatML template. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const made: string[] = [];

/** A fresh temporary folder; `cleanup()` removes every folder made. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'attune-data-'));
  made.push(dir);
  return dir;
}

/** Remove the temporary folders. */
export function cleanup(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Write `lines` (strings as they are, anything else JSON-encoded) as `name` in a temp folder. */
export function writeJsonl(name: string, lines: readonly unknown[]): string {
  const path = join(tempDir(), name);
  writeFileSync(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n'));
  return path;
}

/** The real tinystories-656k tokenizer, or null after skipping the test with the reason. */
export function tinystoriesTokenizer(t: TestContext): Tokenizer | null {
  const model = testModelDir('tinystories-656k');
  if (model.skip !== false) {
    t.skip(model.skip);
    return null;
  }
  return Tokenizer.fromDir(model.dir);
}

/**
 * The tinystories tokenizer with `<|im_start|>` / `<|im_end|>` added as special tokens (ids 2048,
 * 2049) and `template` (default ChatML) as its chat template; null after skipping.
 */
export function chatTokenizer(t: TestContext, template: string = CHATML_TEMPLATE): Tokenizer | null {
  const model = testModelDir('tinystories-656k');
  if (model.skip !== false) {
    t.skip(model.skip);
    return null;
  }
  const tokenizerJson = JSON.parse(readFileSync(join(model.dir, 'tokenizer.json'), 'utf8'));
  const config = JSON.parse(readFileSync(join(model.dir, 'tokenizer_config.json'), 'utf8'));
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  tokenizerJson.added_tokens.push(special(2048, '<|im_start|>'), special(2049, '<|im_end|>'));
  config.chat_template = template;
  return Tokenizer.fromObjects(tokenizerJson, config, model.dir);
}

/** Assert `fn` throws a one-line DataError with exactly `message`. */
export function assertDataError(fn: () => unknown, message: string | RegExp): DataError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof DataError, `expected a DataError, got ${String(caught)}`);
  assert.ok(!caught.message.includes('\n'), `not one line: ${caught.message}`);
  if (typeof message === 'string') assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  return caught;
}

/** Labels an example should have: -100 outside the half-open spans, the id inside. */
export function expectedLabels(
  ids: ArrayLike<number>,
  spans: readonly (readonly [number, number])[],
): number[] {
  return Array.from(ids, (id, t) => (spans.some(([s, e]) => t >= s && t < e) ? id : -100));
}

import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-generate-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'model'));

describe('attune generate', () => {
  it('rejects out-of-range numbers as usage errors (exit 2), before loading anything', async () => {
    const cases: [string[], string][] = [
      [['--max-new-tokens=-5'], '--max-new-tokens: expected an integer >= 1, got "-5"'],
      [['--top-p', '2'], '--top-p: expected a number in (0, 1], got "2"'],
      [['--temperature=-1'], '--temperature: expected a number >= 0, got "-1"'],
      [['--seed', 'x'], '--seed: expected an integer >= 0, got "x"'],
      [['--top-k', '1.5'], '--top-k: expected an integer >= 0, got "1.5"'],
    ];
    for (const [flags, message] of cases) {
      // a model folder that does not exist: parsing must fail first
      const r = await attune(['generate', '--model', join(root, 'absent'), '--prompt', 'x', ...flags]);
      assert.equal(r.status, 2, flags.join(' '));
      assert.equal(r.stderr, `error: ${message}\n`);
      assert.equal(r.stdout, '');
    }
    const missing = await attune(['generate', '--prompt', 'x']);
    assert.equal(missing.status, 2);
    assert.equal(
      missing.stderr,
      'error: --model <dir> is required (or --strong, --weak-base and --weak-tuned to fuse)\n',
    );
  });

  it('temperature 0 is greedy, as the help says', async () => {
    const r = await attune([
      'generate',
      '--model',
      model,
      '--prompt',
      'ab',
      '--temperature',
      '0',
      '--max-new-tokens',
      '3',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.json!.generated_ids as number[]).length <= 3, true);
  });

  it('--chat on a model without a chat template points to --chat-template, which renders it', async () => {
    const bare = await attune(['generate', '--model', model, '--chat', 'hi', '--max-new-tokens', '2']);
    assert.equal(bare.status, 2);
    assert.match(
      bare.stderr,
      /^error: generate --chat: the tokenizer of .* has no chat template; pass one with --chat-template <file>\n$/,
    );
    const template = join(root, 'chat.jinja');
    writeFileSync(
      template,
      '{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}',
    );
    const r = await attune([
      'generate',
      '--model',
      model,
      '--chat',
      'hi',
      '--chat-template',
      template,
      '--max-new-tokens',
      '2',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const promptIds = r.json!.prompt_ids as number[];
    // the byte tokenizer: one id per byte of the rendered "<user>hi\n<assistant>"
    assert.deepEqual(promptIds.length, Buffer.byteLength('<user>hi\n<assistant>'));
    const absent = await attune([
      'generate',
      '--model',
      model,
      '--chat',
      'hi',
      '--chat-template',
      join(root, 'no.jinja'),
    ]);
    assert.equal(absent.status, 1);
    assert.match(absent.stderr, /no\.jinja: file not found/);
    const wrongPair = await attune([
      'generate',
      '--model',
      model,
      '--prompt',
      'hi',
      '--chat-template',
      template,
    ]);
    assert.equal(wrongPair.status, 2);
    assert.match(wrongPair.stderr, /--chat-template goes with --chat/);
  });
});

// `attune active CONFIG.yaml --json` through the command: the JSON summary's shape and counts, a
// re-run that skips every finished round (no new oracle calls), and a bad config refused before any output.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { activeCommand } from '../../../src/cli/commands/active.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { ConfigError } from '../../../src/errors.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-active-cli-');
after(() => rmSync(root, { recursive: true, force: true }));

writeTinyModel(join(root, 'model'), { seed: 5, hidden: 32 });
const ids = Array.from({ length: 10 }, (_, i) => `q${i}`);
writeJsonl(
  join(root, 'pool.jsonl'),
  ids.map((id, i) => ({ id, prompt: `Question ${i}:` })),
);
writeJsonl(
  join(root, 'labels.jsonl'),
  ids.map((id, i) => ({ id, answer: ` a${i % 3}` })),
);

function config(name: string, seedLabels = 2): string {
  const path = join(root, `${name}.yaml`);
  writeFileSync(
    path,
    `model: model
method: { name: lora, r: 2 }
train: { steps: 2, batch_size: 2, lr: 1.0e-3 }
data: { max_length: 24 }
pool: { file: pool.jsonl }
oracle: { name: jsonl, file: labels.jsonl }
strategy: random
seed_labels: ${seedLabels}
rounds: 2
per_round: 2
max_new_tokens: 3
out: ${name}
`,
  );
  return path;
}

async function run(argv: string[]): Promise<{ code: number; json: Record<string, unknown> }> {
  const { io, stdout } = captureIO();
  const code = await activeCommand.run(
    parseOptions(argv, activeCommand.options, 'attune active', activeCommand.positionals),
    io,
  );
  return { code, json: JSON.parse(stdout().trim().split('\n').at(-1)!) };
}

describe('attune active --json', () => {
  it('ends with {strategy, out, labels, oracle_calls, rounds}; a re-run skips finished rounds', async () => {
    const path = config('random');
    const first = await run([path, '--json']);
    assert.equal(first.code, 0);
    assert.equal(first.json.strategy, 'random');
    assert.equal(first.json.out, join(root, 'random'));
    assert.equal(first.json.labels, 6); // 2 seed labels + 2 rounds x 2
    assert.equal(first.json.oracle_calls, 6);
    const rounds = first.json.rounds as { round: number; labels: number; oracle_calls: number }[];
    assert.deepEqual(
      rounds.map((r) => [r.round, r.labels, r.oracle_calls]),
      [
        [0, 2, 2],
        [1, 4, 2],
        [2, 6, 2],
      ],
    );
    assert.deepEqual(readdirSync(join(root, 'random')).sort(), [
      'active.json',
      'round-0',
      'round-1',
      'round-2',
    ]);
    const again = await run([path, '--json']);
    assert.equal(again.code, 0);
    assert.equal(again.json.labels, 6);
    assert.deepEqual(
      (again.json.rounds as { round: number }[]).map((r) => r.round),
      [0, 1, 2],
    );
  });

  it('a budget larger than the pool is refused before any round folder is written', async () => {
    const path = config('too-many', 8); // 10 pool questions < 8 + 2 x 2 labels
    await assert.rejects(
      run([path, '--json']),
      (e: Error) => e instanceof ConfigError && /10/.test(e.message),
    );
    assert.equal(existsSync(join(root, 'too-many')), false);
  });
});

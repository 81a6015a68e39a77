// `attune bench methods --executor ...`: the executor flags that do not fit together are refused in
// one line before the bench writes anything.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-bench-methods-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('attune bench methods --executor', () => {
  it('refuses flags of another executor, a missing or bad --url, before any output', async () => {
    const out = join(root, 'out');
    const cases: [string[], RegExp][] = [
      [['--workers', '2'], /--workers: expected with --executor local, found --executor in-process/],
      [['--executor', 'bullmq', '--workers', '2'], /--workers: expected with --executor local/],
      [
        ['--executor', 'local', '--url', 'redis://h:1'],
        /--url: expected with --executor bullmq, found --executor local/,
      ],
      [['--executor', 'bullmq'], /--executor bullmq: expected --url redis:\/\/host:port, found none/],
      [
        ['--executor', 'bullmq', '--url', 'http://h:1'],
        /--url: expected redis:\/\/host:port, found 'http:\/\/h:1'|ioredis/,
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await attune(['bench', 'methods', '--methods', 'lora', '--out', out, ...flags]);
      assert.notEqual(r.status, 0, flags.join(' '));
      assert.match(r.stderr, message, flags.join(' '));
      assert.ok(!existsSync(out), `${flags.join(' ')}: nothing written`);
    }
  });
});

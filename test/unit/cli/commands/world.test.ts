import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-world-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('attune world --overwrite', () => {
  it('refuses to replace world files without --overwrite', async () => {
    const out = join(root, 'w');
    const argv = ['world', '--seed', '1', '--out', out, '--known', '4', '--taught', '2', '--unknown', '2'];
    assert.equal((await attune(argv)).status, 0);
    writeFileSync(join(out, 'corpus.txt'), 'edited');
    const again = await attune(argv);
    assert.equal(again.status, 1);
    assert.match(
      again.stderr,
      /^error: .*w already holds corpus\.txt, pretrain\.jsonl, .*world\.json \(pass --overwrite/,
    );
    assert.equal(readFileSync(join(out, 'corpus.txt'), 'utf8'), 'edited');
    assert.equal((await attune([...argv, '--overwrite'])).status, 0);
    assert.notEqual(readFileSync(join(out, 'corpus.txt'), 'utf8'), 'edited');
  });
});

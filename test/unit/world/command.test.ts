import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { captureIO } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';
import { WORLD_FILES } from '../../../src/world/index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-world-cli-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function lastLine(text: string): string {
  const lines = text.trimEnd().split('\n');
  return lines[lines.length - 1]!;
}

describe('attune world', () => {
  it('writes every file and prints {out, seed, counts} with --json', async () => {
    const out = join(tmp, 'w');
    const { io, stdout } = captureIO();
    assert.equal(await main(['world', '--seed', '5', '--out', out, '--json'], io), 0);
    const result = JSON.parse(lastLine(stdout()));
    assert.equal(result.out, out);
    assert.equal(result.seed, 5);
    assert.deepEqual(result.counts.people, { known: 40, taught: 30, unknown: 30 });
    for (const split of ['known', 'taught', 'unknown', 'ood']) assert.ok(result.counts.eval[split] >= 200);
    for (const f of WORLD_FILES) {
      assert.ok(existsSync(join(out, f)), f);
      assert.equal(result.files[f], readFileSync(join(out, f)).length, `${f} size`);
    }
    assert.match(stdout(), /^world \(seed 5\): 40 known, 30 taught, 30 unknown people/);
    assert.match(stdout(), /eval_unknown\.jsonl\s+210/);
    assert.equal(JSON.parse(readFileSync(join(out, 'world.json'), 'utf8')).options.seed, 5);
  });

  it('takes the people counts from flags', async () => {
    const out = join(tmp, 'small');
    const { io, stdout } = captureIO();
    const status = await main(
      ['world', '--seed', '1', '--out', out, '--known', '4', '--taught', '2', '--unknown', '2', '--json'],
      io,
    );
    assert.equal(status, 0);
    assert.deepEqual(JSON.parse(lastLine(stdout())).counts.people, { known: 4, taught: 2, unknown: 2 });
  });

  it('fails with a usage error for a missing --out, a bad seed or an odd people count', async () => {
    for (const argv of [
      ['world', '--seed', '1'],
      ['world', '--seed', 'x', '--out', join(tmp, 'x')],
      ['world', '--out', join(tmp, 'odd'), '--known', '3'],
    ]) {
      const { io, stderr } = captureIO();
      assert.equal(await main(argv, io), 2, argv.join(' '));
      assert.match(stderr(), /^error: /);
    }
    assert.ok(!existsSync(join(tmp, 'odd')), 'nothing is written on a usage error');
  });
});

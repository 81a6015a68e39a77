import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseOptions } from '../../../../src/cli/args.ts';
import { demoCommand, demoStartNote } from '../../../../src/cli/commands/demo.ts';
import { ConfigError } from '../../../../src/errors.ts';
import { checkDemoOutput, DEMO_EXPECTED_DURATION } from '../../../../src/world/demo.ts';
import { tempDir } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-demo-');
after(() => rmSync(root, { recursive: true, force: true }));

describe('attune demo', () => {
  it('runs the quick mode by default; --full is the long one; --quick is still accepted', () => {
    const parse = (argv: string[]) => parseOptions(argv, demoCommand.options, 'attune demo').values;
    assert.equal(parse([]).full, false);
    assert.equal(parse(['--quick']).quick, true);
    assert.equal(parse(['--full']).full, true);
    assert.match(demoCommand.description!, /The default \(quick\) mode takes\s+about 2 minutes/);
    assert.equal(
      demoStartNote(true),
      'demo: quick mode, expected about 2 minutes on 2 cores; --full runs the long one',
    );
    assert.match(demoStartNote(false), /^demo: full mode, expected about 4 minutes/);
  });

  it('refuses an --out that holds files without --overwrite, before any work', async () => {
    const out = join(root, 'used');
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'notes.txt'), 'mine');
    const r = await attune(['demo', '--out', out]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `error: ${out} already exists (pass --overwrite to replace the demo output in it, or choose another --out)\n`,
    );
    assert.equal(readFileSync(join(out, 'notes.txt'), 'utf8'), 'mine');
    const both = await attune(['demo', '--full', '--quick', '--out', join(root, 'x')]);
    assert.equal(both.status, 2);
  });

  it('checkDemoOutput: a missing or empty folder is fine, a file is not, --overwrite allows a used one', () => {
    checkDemoOutput(join(root, 'missing'), false);
    mkdirSync(join(root, 'empty'));
    checkDemoOutput(join(root, 'empty'), false);
    writeFileSync(join(root, 'file'), '');
    assert.throws(() => checkDemoOutput(join(root, 'file'), true), ConfigError);
    mkdirSync(join(root, 'full'));
    writeFileSync(join(root, 'full', 'metrics.json'), '{}');
    assert.throws(() => checkDemoOutput(join(root, 'full'), false), ConfigError);
    checkDemoOutput(join(root, 'full'), true);
  });

  it('the durations it announces are the measured ones the docs give', () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const docs = readFileSync(new URL('../../../../docs/demo.md', import.meta.url), 'utf8');
    for (const text of [readme, docs]) {
      assert.ok(text.includes(DEMO_EXPECTED_DURATION.quick), 'quick duration');
      assert.ok(text.includes(DEMO_EXPECTED_DURATION.full), 'full duration');
    }
  });
});

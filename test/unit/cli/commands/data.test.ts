// `attune data corrupt` and `attune data curate`: files, truth, report and --json summaries, and
// errors that leave no output behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { shippedWorldBaseDir } from '../../../../src/world/base.ts';
import { tempDir } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-data-');
after(() => rmSync(root, { recursive: true, force: true }));
const worldDir = join(root, 'w');
const noisy = join(root, 'noisy.jsonl');

describe('attune data corrupt / data curate', () => {
  it('writes a noisy set with its truth, then curates it with a report', async () => {
    const world = [
      'world',
      '--seed',
      '1',
      '--out',
      worldDir,
      '--known',
      '4',
      '--taught',
      '2',
      '--unknown',
      '2',
    ];
    assert.equal((await attune(world)).status, 0);
    const corrupt = await attune([
      'data',
      'corrupt',
      '--world',
      worldDir,
      '--out',
      noisy,
      '--fraction',
      '0.5',
      '--malformed',
      '0.15',
      '--json',
    ]);
    assert.equal(corrupt.status, 0, corrupt.stderr);
    assert.deepEqual(corrupt.json?.counts, { records: 14, clean: 5, corrupted: 7, malformed: 2 });
    assert.ok(existsSync(join(root, 'noisy.truth.jsonl')));
    const again = await attune(['data', 'corrupt', '--world', worldDir, '--out', noisy]);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /already exist \(pass --overwrite/);

    const model = shippedWorldBaseDir('small');
    const out = join(root, 'curated.jsonl');
    const report = join(root, 'report.json');
    const common = [
      'data',
      'curate',
      '--model',
      model,
      '--data',
      noisy,
      '--out',
      out,
      '--k',
      '2',
      '--reflection',
      'none',
    ];
    // malformed lines stop it by default, naming file and line, before any output exists
    const failed = await attune(common);
    assert.equal(failed.status, 1);
    assert.match(failed.stderr, /noisy\.jsonl:\d+: /);
    assert.equal(existsSync(out), false);

    const before = readFileSync(noisy, 'utf8');
    writeFileSync(out, 'old');
    const refused = await attune([...common, '--on-bad-record', 'skip']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /curated\.jsonl already exist \(pass --overwrite/);
    assert.equal(readFileSync(out, 'utf8'), 'old');
    const run = await attune([
      ...common,
      '--report',
      report,
      '--on-bad-record',
      'skip',
      '--overwrite',
      '--json',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(noisy, 'utf8'), before);
    const summary = run.json?.summary as Record<string, number>;
    assert.equal(summary.records, 14);
    assert.equal(summary.malformed, 2);
    assert.equal(summary.kept + summary.removed + summary.corrected, 14);
    const written = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(written.length, summary.kept + summary.corrected);
    const onDisk = JSON.parse(readFileSync(report, 'utf8'));
    assert.equal(onDisk.records.length, 14);
    for (const r of onDisk.records) assert.match(r.action, /^(keep|remove|correct)$/);
    assert.match(run.stderr, /curate: 12\/12/);
  });

  it('a record with an empty prompt is an error naming its line', async () => {
    const bad = join(root, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "Q: a\\nA:", "completion": " b"}\n{"prompt": "", "completion": " c"}\n');
    const run = await attune([
      'data',
      'curate',
      '--model',
      shippedWorldBaseDir('small'),
      '--data',
      bad,
      '--out',
      join(root, 'o.jsonl'),
    ]);
    assert.equal(run.status, 1);
    assert.match(run.stderr, /bad\.jsonl:2: the prompt is empty/);
  });
});

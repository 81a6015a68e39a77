import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { labelIsCorrect, uqMetricsCommand } from '../../../src/cli/commands/uq-metrics.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { main } from '../../../src/cli/main.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-uq-metrics-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function writeJsonl(name: string, lines: readonly (string | object)[]): string {
  const path = join(tmp, name);
  writeFileSync(path, `${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`);
  return path;
}

async function run(argv: string[]) {
  const { io, stdout, stderr } = captureIO();
  const status = await main(['uq', 'metrics', ...argv], io);
  const lines = stdout().trimEnd().split('\n');
  return { status, stdout: stdout(), stderr: stderr(), last: lines[lines.length - 1]! };
}

const KEYS = [
  'n',
  'bins',
  'score',
  'auroc',
  'aupr',
  'prr',
  'aurc',
  'auarc',
  'ece',
  'mce',
  'brier',
  'nll',
  'notes',
];

describe('attune uq metrics', () => {
  const predictions = writeJsonl('preds.jsonl', [
    { ok: true, p: 0.9, h: 0.1 },
    { ok: 'yes', p: 0.8, h: 0.3 },
    '',
    { ok: 'false', p: 0.3, h: 2.0 },
    { ok: 0, p: 0.6, h: 1.2 },
  ]);

  it('prints a table and, with --json, the metrics of confidences as the last line', async () => {
    const r = await run(['--input', predictions, '--label', 'ok', '--confidence', 'p', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.last);
    assert.deepEqual(Object.keys(json), KEYS);
    // Same numbers as in report.test.ts: wrong answers have the lowest confidence.
    assert.equal(json.n, 4);
    assert.equal(json.bins, 15);
    assert.equal(json.auroc, 1);
    assert.equal(json.aupr, 1);
    assert.equal(json.prr, 1);
    assert.ok(Math.abs(json.aurc - 5 / 24) < 1e-12);
    assert.ok(Math.abs(json.ece - 0.3) < 1e-12);
    assert.ok(Math.abs(json.brier - 0.125) < 1e-12);
    assert.deepEqual(json.notes, {});
    assert.match(r.stdout, /^metric\s+value\s+note$/m);
    assert.match(r.stdout, /^ece\s+0\.3$/m);
    assert.match(r.stdout, /4 predictions \(2 wrong\), confidence from "p", 15 equal-width bins/);
  });

  it('gives null calibration metrics with notes for --uncertainty, through run() directly', async () => {
    const { io, stdout } = captureIO();
    const args = parseOptions(
      ['--input', predictions, '--label', 'ok', '--uncertainty', 'h', '--bins', '5', '--json'],
      uqMetricsCommand.options,
      'attune uq metrics',
    );
    assert.equal(await uqMetricsCommand.run(args, io), 0);
    const lines = stdout().trimEnd().split('\n');
    const json = JSON.parse(lines[lines.length - 1]!);
    assert.deepEqual(Object.keys(json), KEYS);
    assert.equal(json.bins, 5);
    assert.equal(json.score, 'uncertainty');
    assert.equal(json.auroc, 1);
    for (const key of ['ece', 'mce', 'brier', 'nll']) {
      assert.equal(json[key], null);
      assert.match(json.notes[key], /needs confidences/);
    }
    assert.match(stdout(), /^ece\s+-\s+needs confidences/m);
  });

  it('reports one class only as null auroc with a reason', async () => {
    const path = writeJsonl('all-right.jsonl', [
      { ok: 1, p: 0.9 },
      { ok: 1, p: 0.4 },
    ]);
    const r = await run(['--input', path, '--label', 'ok', '--confidence', 'p', '--json']);
    const json = JSON.parse(r.last);
    assert.equal(json.auroc, null);
    assert.match(json.notes.auroc, /one class/);
    assert.equal(json.aupr, null);
    assert.equal(json.aurc, 0);
  });

  it('counts labels as correct by JavaScript truthiness, except "false" and "0"', () => {
    for (const v of [true, 1, 'yes', 'true', 'False', [], {}])
      assert.equal(labelIsCorrect(v), true, String(v));
    for (const v of [false, 0, '', null, 'false', '0', Number.NaN])
      assert.equal(labelIsCorrect(v), false, String(v));
  });

  it('prints all-null metrics for an empty file', async () => {
    const path = join(tmp, 'empty.jsonl');
    writeFileSync(path, '\n');
    const r = await run(['--input', path, '--label', 'ok', '--uncertainty', 'h', '--json']);
    assert.equal(r.status, 0);
    const json = JSON.parse(r.last);
    assert.equal(json.n, 0);
    assert.equal(json.auroc, null);
    assert.match(json.notes.aurc, /empty input/);
  });

  it('names file:line for bad JSON, a missing field or a non-numeric value', async () => {
    const cases: [(string | object)[], string[], RegExp][] = [
      [[{ ok: 1, p: 0.5 }, '{"ok": 1, "p": '], ['--confidence', 'p'], /:2: invalid JSON/],
      [
        [{ ok: 1, p: 0.5 }, '', { ok: 1 }],
        ['--confidence', 'p'],
        /:3: missing field "p" \(the record has: ok\)/,
      ],
      [[{ p: 0.5 }], ['--confidence', 'p'], /:1: missing field "ok"/],
      [
        [{ ok: 1, p: '0.5' }],
        ['--confidence', 'p'],
        /:1: field "p": expected a number, found a string \("0\.5"\)/,
      ],
      [[{ ok: 1, p: null }], ['--uncertainty', 'p'], /:1: field "p": expected a number, found null/],
      [
        [{ ok: 1, p: 1.5 }],
        ['--confidence', 'p'],
        /:1: field "p": expected a confidence in \[0, 1\], found 1\.5/,
      ],
      [[[1, 2]], ['--confidence', 'p'], /:1: expected a JSON object, found an array/],
    ];
    for (const [lines, flags, message] of cases) {
      const path = writeJsonl('bad.jsonl', lines);
      const r = await run(['--input', path, '--label', 'ok', ...flags]);
      assert.equal(r.status, 1);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1, r.stderr);
      assert.ok(r.stderr.startsWith(`error: ${path}:`), r.stderr);
      assert.match(r.stderr, message);
    }
    const missing = await run(['--input', join(tmp, 'nope.jsonl'), '--label', 'ok', '--confidence', 'p']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.jsonl: file not found/);
  });

  it('is a usage error (exit 2) without exactly one score field, a label or a valid --bins', async () => {
    const both = await run([
      '--input',
      predictions,
      '--label',
      'ok',
      '--confidence',
      'p',
      '--uncertainty',
      'h',
    ]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /exactly one of --uncertainty <field> and --confidence <field>/);
    assert.equal((await run(['--input', predictions, '--label', 'ok'])).status, 2);
    assert.equal((await run(['--input', predictions, '--confidence', 'p'])).status, 2);
    const bins = await run(['--input', predictions, '--label', 'ok', '--confidence', 'p', '--bins', '0']);
    assert.equal(bins.status, 2);
    assert.match(bins.stderr, /--bins: expected an integer >= 1, got "0"/);
  });
});

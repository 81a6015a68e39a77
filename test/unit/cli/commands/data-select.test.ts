// `attune data select`: the perplexity ranking of a known fact, a wrong answer and letter soup under
// the small world base, the selected file and scores file, the world's selection task, and errors
// that leave no output behind.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { shippedWorldBaseDir, worldOfRecipe } from '../../../../src/world/base.ts';
import { relationValue } from '../../../../src/world/index.ts';
import { tempDir } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-select-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = shippedWorldBaseDir('small');

describe('attune data select', () => {
  it('keeps a fact the base knows over a wrong answer and letter soup (perplexity)', async () => {
    // the small base was pretrained on the default world of seed 0: its known people's facts
    const recipe = JSON.parse(readFileSync(join(model, 'base.json'), 'utf8')).recipe;
    const world = worldOfRecipe(recipe);
    const person = world.people[0]!;
    const year = relationValue(person, 'birthYear');
    const wrong = String(Number(year) === 1999 ? 1950 : Number(year) + 1);
    const data = join(root, 'c.jsonl');
    const lines = [
      { prompt: `Q: What is the birth year of ${person.name}?\nA:`, completion: ` qzxv wplk` },
      { prompt: `Q: What is the birth year of ${person.name}?\nA:`, completion: ` ${year}` },
      { text: 'vbq zzkx mmrt plok wqxa' },
      { prompt: `Q: What is the birth year of ${person.name}?\nA:`, completion: ` ${wrong}` },
    ];
    writeFileSync(data, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    const before = readFileSync(data, 'utf8');
    const out = join(root, 's.jsonl');
    const r = await attune([
      'data',
      'select',
      '--model',
      model,
      '--data',
      data,
      '--out',
      out,
      '--method',
      'perplexity',
      '--count',
      '2',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(data, 'utf8'), before);
    const scores = readFileSync(`${out}.scores.jsonl`, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      scores.map((s) => s.line),
      [1, 2, 3, 4],
    );
    // the true year is the most likely completion, then the neighbouring wrong year
    assert.deepEqual(
      scores.map((s) => s.rank),
      [null, 1, null, 2],
    );
    assert.ok(scores[1].perplexity < scores[3].perplexity && scores[3].perplexity < scores[0].perplexity);
    for (const s of scores) assert.ok(Math.abs(s.score + Math.log(s.perplexity)) < 1e-9);
    assert.equal(readFileSync(out, 'utf8'), `${JSON.stringify(lines[1])}\n${JSON.stringify(lines[3])}\n`);
    assert.equal(r.json?.selected, 2);
  });

  it('distribution_shift keeps the copy of the target; mates measures every probe and a positive influence for it', async () => {
    const target = { prompt: 'Q: Where was Zinmik Visu born?\nA:', completion: ' Pellan' };
    const lines = [
      { text: 'vbq zzkx mmrt plok wqxa' },
      { text: 'The cities of Norland are Pellan and Ulmer.' },
      target,
      { prompt: 'Q: What is 7 plus 5?\nA:', completion: ' 12' },
    ];
    const data = join(root, 'ds.jsonl');
    const targetFile = join(root, 'target.jsonl');
    writeFileSync(data, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
    writeFileSync(targetFile, `${JSON.stringify(target)}\n`);
    const common = [
      'data',
      'select',
      '--model',
      model,
      '--data',
      data,
      '--target',
      targetFile,
      '--count',
      '1',
      '--json',
    ];
    const ds = await attune([
      ...common,
      '--method',
      'distribution_shift',
      '--out',
      join(root, 'ds-out.jsonl'),
    ]);
    assert.equal(ds.status, 0, ds.stderr);
    assert.equal(readFileSync(join(root, 'ds-out.jsonl'), 'utf8'), `${JSON.stringify(target)}\n`);
    const mates = await attune([...common, '--method', 'mates', '--out', join(root, 'm-out.jsonl')]);
    assert.equal(mates.status, 0, mates.stderr);
    assert.equal((mates.json!.method_summary as Record<string, number>).probes, 4);
    const scores = readFileSync(join(root, 'm-out.jsonl.scores.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const s of scores) assert.equal(typeof s.oracle_influence, 'number');
    assert.ok(
      scores[2].oracle_influence > 0,
      `a step on the target itself lowers its loss: ${scores[2].oracle_influence}`,
    );
  });

  it('rejects bad input with a clear reason and writes nothing', async () => {
    const out = join(root, 'bad-out.jsonl');
    const run = (file: string, extra: string[]) =>
      attune(['data', 'select', '--model', model, '--data', file, '--out', out, ...extra]);
    const empty = join(root, 'empty.jsonl');
    writeFileSync(empty, '\n');
    const ok = join(root, 'ok.jsonl');
    writeFileSync(ok, '{"text": "a b"}\n{"text": "c d"}\n');
    const noPrompt = join(root, 'np.jsonl');
    writeFileSync(noPrompt, '{"text": "a b"}\n{"prompt": " ", "completion": " x"}\n');
    const cases: [string, string[], RegExp][] = [
      [empty, ['--method', 'perplexity', '--fraction', '0.5'], /empty\.jsonl:1: no candidate records/],
      [noPrompt, ['--method', 'perplexity', '--fraction', '0.5'], /np\.jsonl:2: the prompt is empty/],
      [ok, ['--method', 'perplexity', '--fraction', '1.5'], /--fraction: expected a number in \(0, 1\]/],
      [ok, ['--method', 'perplexity', '--count', '3'], /--count 3 is more than the pool of 2/],
      [ok, ['--method', 'mates', '--count', '1'], /--method mates needs --target/],
      [ok, ['--method', 'perplexity'], /exactly one of --fraction and --count/],
      [ok, ['--method', 'nope', '--count', '1'], /nope/],
    ];
    for (const [file, extra, pattern] of cases) {
      const r = await run(file, extra);
      assert.notEqual(r.status, 0, `${extra.join(' ')} should fail`);
      assert.match(r.stderr, pattern);
      assert.ok(!existsSync(out) && !existsSync(`${out}.scores.jsonl`));
    }
  });

  it('world select writes a seeded task with every kind of candidate', async () => {
    const worldDir = join(root, 'w');
    assert.equal(
      (
        await attune([
          'world',
          '--seed',
          '2',
          '--out',
          worldDir,
          '--known',
          '4',
          '--taught',
          '6',
          '--unknown',
          '2',
        ])
      ).status,
      0,
    );
    const task = join(root, 'task');
    const r = await attune(['world', 'select', '--world', worldDir, '--out', task, '--json']);
    assert.equal(r.status, 0, r.stderr);
    // 2 of 6 taught people x 7 relations x 3 wordings = 42 target, 84 off-target, 21 general, 11 noise
    assert.deepEqual(r.json?.counts, { target: 42, off_target: 84, general: 21, noise: 11 });
    assert.equal(r.json?.eval, 14);
    const truth = readFileSync(join(task, 'candidates.truth.jsonl'), 'utf8').trim().split('\n');
    assert.equal(
      truth.length,
      readFileSync(join(task, 'candidates.jsonl'), 'utf8').trim().split('\n').length,
    );
    const again = join(root, 'task2');
    await attune(['world', 'select', '--world', worldDir, '--out', again]);
    assert.equal(
      readFileSync(join(again, 'candidates.jsonl'), 'utf8'),
      readFileSync(join(task, 'candidates.jsonl'), 'utf8'),
    );
  });
});

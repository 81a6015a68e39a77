import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { formatEvalSummary } from '../../../../src/cli/commands/eval.ts';
import { summarizePredictions } from '../../../../src/uq/index.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-eval-');
after(() => rmSync(root, { recursive: true, force: true }));
const model = writeTinyModel(join(root, 'model'));
const records = [
  { prompt: 'ab', answer: 'zz' },
  { prompt: 'cd', answer: 'yy' },
];

describe('attune eval', () => {
  it('refuses to replace predictions.jsonl without --overwrite, before generating anything', async () => {
    const dir = join(root, 'overwrite');
    const data = writeJsonl(join(tempDirIn(dir), 'qa.jsonl'), records);
    const argv = ['eval', '--model', model, '--data', data, '--max-new-tokens', '2', '--json'];
    const first = await attune(argv);
    assert.equal(first.status, 0, first.stderr);
    const path = join(dir, 'predictions.jsonl');
    assert.equal(first.json!.predictions, path);
    writeFileSync(path, 'my own file\n');
    // a model folder that does not exist: the refusal comes before the model is loaded
    const again = await attune(['eval', '--model', join(root, 'absent'), '--data', data]);
    assert.equal(again.status, 1);
    assert.equal(again.stderr, `error: ${path} already exists (pass --overwrite to replace it)\n`);
    assert.equal(readFileSync(path, 'utf8'), 'my own file\n');
    const replaced = await attune([...argv, '--overwrite']);
    assert.equal(replaced.status, 0, replaced.stderr);
    assert.equal(readFileSync(path, 'utf8').trimEnd().split('\n').length, 2);
    const elsewhere = await attune([...argv, '--out', join(dir, 'other')]);
    assert.equal(elsewhere.status, 0, elsewhere.stderr);
    assert.ok(existsSync(join(dir, 'other', 'predictions.jsonl')));
  });

  it('shows why a metric is null (every answer wrong: one class only)', async () => {
    const data = writeJsonl(join(tempDirIn(join(root, 'null')), 'qa.jsonl'), records);
    const r = await attune(['eval', '--model', model, '--data', data, '--max-new-tokens', '2', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json!.accuracy, 0);
    const notes = r.json!.notes as Record<string, string>;
    const reason = notes['msp.auroc'];
    assert.equal(typeof reason, 'string');
    const row = r.stdout.split('\n').find((l) => l.startsWith('msp '));
    assert.ok(row, r.stdout);
    // every answer wrong: AUROC and PRR are undefined (AUPR is 1: all are positives)
    assert.match(row, /^msp +- +1 +- +[\d.]+ +auroc: .+; prr: .+$/);
    assert.ok(row.includes(reason!), row);
    assert.match(r.stdout, /^score +auroc +aupr +prr +aurc +note$/m);
  });

  it('tells a record with a completion instead of an answer the eval format', async () => {
    const data = writeJsonl(join(tempDirIn(join(root, 'format')), 'train.jsonl'), [
      { prompt: 'a', completion: 'b' },
    ]);
    const r = await attune(['eval', '--model', model, '--data', data]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr,
      `error: ${data}:1: missing field 'answer' (eval records are {prompt, answer}); found 'completion', which is for training data\n`,
    );
  });

  it('renders {messages} records with --chat-template when the model has none', async () => {
    const data = writeJsonl(join(tempDirIn(join(root, 'chat')), 'qa.jsonl'), [
      { messages: [{ role: 'user', content: 'hi' }], answer: 'x' },
    ]);
    const bare = await attune(['eval', '--model', model, '--data', data, '--max-new-tokens', '1']);
    assert.equal(bare.status, 2);
    assert.match(
      bare.stderr,
      /has \{messages\} records but: the tokenizer of .* has no chat template; pass one with --chat-template <file>/,
    );
    const template = join(root, 'chat.jinja');
    writeFileSync(
      template,
      '{% for m in messages %}[{{ m.content }}]{% endfor %}{% if add_generation_prompt %}>{% endif %}',
    );
    const r = await attune([
      'eval',
      '--model',
      model,
      '--data',
      data,
      '--max-new-tokens',
      '1',
      '--chat-template',
      template,
      '--overwrite',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const line = JSON.parse(readFileSync(join(root, 'chat', 'predictions.jsonl'), 'utf8').trim());
    assert.equal(line.prompt, '[hi]>');
  });

  it('--batch gives the answers of one at a time; --samples adds the sampling scores', async () => {
    const data = writeJsonl(join(tempDirIn(join(root, 'samples')), 'qa.jsonl'), [
      ...records,
      { prompt: 'abcd', answer: 'x' },
    ]);
    const base = ['eval', '--model', model, '--data', data, '--max-new-tokens', '3', '--overwrite', '--json'];
    const read = () =>
      readFileSync(join(root, 'samples', 'predictions.jsonl'), 'utf8')
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, number> & { answer: string });
    assert.equal((await attune(base)).status, 0);
    const single = read();
    const batched = await attune([...base, '--batch', '3']);
    assert.equal(batched.status, 0, batched.stderr);
    assert.deepEqual(
      read().map((p) => p.answer),
      single.map((p) => p.answer),
    );
    assert.ok(!('semantic_entropy' in single[0]!), 'no sampling scores without --samples');
    for (const p of single) assert.ok(p.renyi_divergence! <= 0 && p.fisher_rao! <= 0 && p.fisher_rao! >= -1);
    const sampled = await attune([...base, '--samples', '4', '--temperature', '2', '--cluster', 'rougeL']);
    assert.equal(sampled.status, 0, sampled.stderr);
    const preds = read();
    for (const name of [
      'semantic_entropy',
      'num_semantic_sets',
      'lexical_similarity',
      'eig_val_laplacian',
      'deg_mat',
      'eccentricity',
    ]) {
      assert.ok(name in (sampled.json!.scores as object), name);
      for (const p of preds) assert.ok(Number.isFinite(p[name]), `${name}: ${p[name]}`);
    }
    for (const p of preds) assert.ok(p.num_semantic_sets! >= 1 && p.num_semantic_sets! <= 4);
    const missing = await attune([...base, '--scores', 'msp,semantic_entropy']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /semantic_entropy need sampled answers: add --samples N/);
  });

  it('formatEvalSummary prints "-" with the reason, and plain numbers without notes', () => {
    const p = (correct: boolean, u: number) => ({
      prompt: 'q',
      reference: 'a',
      answer: correct ? 'a' : 'b',
      correct,
      scores: { msp: u },
      confidence: 1 - u,
      logprobs: [],
      extra: {},
    });
    const mixed = formatEvalSummary(summarizePredictions([p(true, 0.1), p(false, 0.9)]), 'exact');
    assert.match(mixed, /^msp +1 +1 +1 +[\d.]+$/m);
    assert.match(mixed, /^confidence: ECE [\d.]+ \(15 bins\), MCE [\d.]+, Brier [\d.]+, NLL [\d.]+$/m);
    const allRight = formatEvalSummary(summarizePredictions([p(true, 0.1), p(true, 0.2)]), 'exact');
    assert.match(allRight, /^accuracy 1\.0000 on 2 records \(exact match\)$/m);
    assert.match(allRight, /^msp +- +.*auroc(, aupr)?: .+$/m);
  });
});

/** `dir`, created fresh, for one test's data file (predictions.jsonl lands next to it). */
function tempDirIn(dir: string): string {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Head folders (save -> load), `attune uq fit-head` then `eval --head`: the scores end to end, and refusals. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { parseOptions } from '../../../src/cli/args.ts';
import { evalCommand } from '../../../src/cli/commands/eval.ts';
import { uqFitHeadCommand } from '../../../src/cli/commands/uq-fit-head.ts';
import { captureIO } from '../../../src/cli/io.ts';
import { ConfigError, FormatError, UsageError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  answerInternals,
  fitHead,
  HEAD_CONFIG_FILE,
  type HeadFile,
  headScore,
  loadHeadFile,
  predict,
  readEvalRecords,
  saveHeadFile,
} from '../../../src/uq/index.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-heads-');
after(() => rmSync(root, { recursive: true, force: true }));

async function run(command: typeof evalCommand | typeof uqFitHeadCommand, argv: string[]) {
  const { io, stdout } = captureIO();
  const args = parseOptions(argv, command.options as never, `attune ${command.name}`);
  const code = await command.run(args as never, io);
  return { code, json: JSON.parse(stdout().trim().split('\n').at(-1)!) };
}

it('a head folder round-trips exactly (f64) with its provenance; bad files are refused by field', () => {
  const examples = Array.from({ length: 8 }, (_, i) => ({
    features: [Math.sin(i), Math.cos(3 * i), i / 7],
    correct: i % 2 === 0,
    confidence: 0.3 + i / 20,
  }));
  for (const kind of ['evidential', 'deup', 'bayescap'] as const) {
    const head = fitHead(kind, examples, { steps: 20, lr: 0.05 });
    const file: HeadFile = {
      type: 'uq-head',
      version: 1,
      head,
      fittedOn: {
        method: kind,
        score: 'hidden_mean',
        model: null,
        adapter: null,
        data: { path: 'x.jsonl', sha256: 'ab' },
        n: 8,
      },
    };
    const dir = join(root, `rt-${kind}`);
    saveHeadFile(dir, file);
    const back = loadHeadFile(dir);
    assert.equal(back.head.kind, kind);
    assert.deepEqual(back.head.weight, head.weight);
    assert.deepEqual(back.head.bias, head.bias);
    assert.deepEqual(back.head.featureMean, head.featureMean);
    assert.deepEqual(back.head.featureStd, head.featureStd);
    assert.deepEqual(back.fittedOn, file.fittedOn);
    assert.equal(headScore(back.head, [0.1, 0.2, 0.3], 0.5), headScore(head, [0.1, 0.2, 0.3], 0.5));
    assert.throws(
      () => saveHeadFile(dir, file),
      (e: Error) => e instanceof ConfigError && /already holds a head/.test(e.message),
    );
  }
  const dir = join(root, 'rt-deup');
  const config = JSON.parse(readFileSync(join(dir, HEAD_CONFIG_FILE), 'utf8'));
  writeFileSync(join(dir, HEAD_CONFIG_FILE), JSON.stringify({ ...config, kind: 'nope' }));
  assert.throws(
    () => loadHeadFile(dir),
    (e: Error) =>
      e instanceof FormatError && /kind: expected one of evidential, deup, bayescap/.test(e.message),
  );
  writeFileSync(join(dir, HEAD_CONFIG_FILE), JSON.stringify({ ...config, hidden_size: 4 }));
  assert.throws(
    () => loadHeadFile(dir),
    (e: Error) =>
      e instanceof FormatError && /tensor 'feature_mean': expected 4 values, found 3/.test(e.message),
  );
  assert.throws(
    () => loadHeadFile(join(root, 'none')),
    (e: Error) => e instanceof FormatError && /attune uq fit-head/.test(e.message),
  );
});

it('uq fit-head then eval --head: each score equals the head applied to the answer hidden state; another model is refused', async () => {
  const a = writeTinyModel(join(root, 'a'), { seed: 1, hidden: 16 });
  const b = writeTinyModel(join(root, 'b'), { seed: 2, hidden: 16 });
  const held = writeJsonl(
    join(root, 'held.jsonl'),
    Array.from({ length: 8 }, (_, i) => ({ prompt: `Q${i}:`, answer: 'x' })),
  );
  const qa = writeJsonl(
    join(root, 'qa.jsonl'),
    Array.from({ length: 4 }, (_, i) => ({ prompt: `Question ${i + 3}:`, answer: 'x' })),
  );
  const dirs: string[] = [];
  for (const kind of ['evidential', 'deup', 'bayescap']) {
    const out = join(root, `head-${kind}`);
    const fit = await run(uqFitHeadCommand, [
      '--model',
      a,
      '--kind',
      kind,
      '--data',
      held,
      '--max-new-tokens',
      '3',
      '--steps',
      '50',
      '--out',
      out,
      '--json',
    ]);
    assert.equal(fit.code, 0);
    assert.equal(fit.json.kind, kind);
    assert.equal(fit.json.hidden_size, 16);
    assert.equal(fit.json.n + fit.json.empty, 8);
    assert.equal(fit.json.fitted_on.model.path, a);
    dirs.push(out);
  }
  const evaluated = await run(evalCommand, [
    '--model',
    a,
    '--data',
    qa,
    '--extra',
    'all',
    ...dirs.flatMap((d) => ['--head', d]),
    '--max-new-tokens',
    '3',
    '--out',
    join(root, 'eval'),
    '--json',
  ]);
  assert.equal(evaluated.code, 0);
  for (const name of ['evidential_vacuity', 'deup', 'bayescap'])
    assert.ok(name in evaluated.json.scores, name);
  const rows = readFileSync(join(root, 'eval', 'predictions.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  // the same answers again, scored by the library: mean hidden state of prompt + answer through each head
  const { model, tokenizer } = loadModel(a);
  const ids: { promptIds: readonly number[]; answerIds: readonly number[] }[] = [];
  const preds = predict(model, tokenizer!, readEvalRecords(qa), {
    maxNewTokens: 3,
    onAnswer: (i, p) => {
      ids[i] = p;
    },
  });
  const heads = dirs.map((d) => loadHeadFile(d).head);
  let checked = 0;
  rows.forEach((row, i) => {
    const { promptIds, answerIds } = ids[i]!;
    assert.equal(row.answer, preds[i]!.answer);
    if (answerIds.length === 0) return;
    checked++;
    const h = answerInternals(model, promptIds, answerIds).meanHidden;
    const conf = Math.exp(preds[i]!.logprobs.reduce((s, v) => s + v, 0) / preds[i]!.logprobs.length);
    for (const [k, name] of ['evidential_vacuity', 'deup', 'bayescap'].entries())
      assert.ok(
        Math.abs(row[name] - headScore(heads[k]!, h, conf)) < 1e-9,
        `${name} of answer ${i}: ${row[name]} vs ${headScore(heads[k]!, h, conf)}`,
      );
    assert.ok(row.evidential_vacuity > 0 && row.evidential_vacuity <= 1);
  });
  assert.ok(checked >= 2, `answers checked: ${checked}`);
  await assert.rejects(
    run(evalCommand, [
      '--model',
      b,
      '--data',
      qa,
      '--extra',
      'deup',
      '--head',
      dirs[1]!,
      '--out',
      join(root, 'e2'),
    ]),
    (e: Error) => e instanceof ConfigError && /fitted on the model at/.test(e.message),
  );
  await assert.rejects(
    run(evalCommand, ['--model', a, '--data', qa, '--extra', 'deup', '--out', join(root, 'e3')]),
    (e: Error) => e instanceof UsageError && /deup needs a fitted deup head: add --head DIR/.test(e.message),
  );
  await assert.rejects(
    run(evalCommand, [
      '--model',
      a,
      '--data',
      qa,
      '--head',
      dirs[1]!,
      '--head',
      dirs[1]!,
      '--out',
      join(root, 'e4'),
    ]),
    (e: Error) => e instanceof UsageError && /both deup heads/.test(e.message),
  );
});

/**
 * The uq_head tuner: a head trained by `attune train` equals the one `uq fit-head` fits on the same
 * graded answers (same objective, same Adam), resumes exactly, is read by `eval --head`, and bad
 * input is refused before anything is written.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { defaultSpecs } from '../../../src/bench/methods.ts';
import { FormatError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { fineTuningMethodNames, loadAdapter, tunerNames } from '../../../src/peft/index.ts';
import { train, validateTrainConfig } from '../../../src/train/index.ts';
import { fitHead, headExamplesOf, loadHeadFile } from '../../../src/uq/index.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-head-tuner-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { seed: 3, hidden: 16 });
const questions = [
  ...FACTS,
  { prompt: 'Ed lives in ', completion: 'Bern.' },
  { prompt: 'Fa lives in ', completion: 'Riga.' },
];
writeJsonl(join(root, 'train.jsonl'), FACTS);
writeJsonl(join(root, 'held.jsonl'), questions);
// a LoRA that has learnt some facts, so the graded answers are a mix of right and wrong
const lora = train(
  tinyConfig(root, { train: { steps: 40, lr: 3e-2 }, output_dir: join(root, 'lora') }),
).adapterDir;

/** A uq_head run of `kind` on the held-out questions (Adam as uq fit-head: no clipping, no decay). */
function headConfig(kind: string, out: string, steps = 30) {
  return validateTrainConfig(
    {
      model: join(root, 'model'),
      data: { train: join(root, 'held.jsonl'), max_length: 32 },
      method: { name: 'uq_head', kind, adapter: lora, max_new_tokens: 6, stop: ['.'], metric: 'contains' },
      train: { steps, lr: 0.05, max_grad_norm: 0, batch_size: 2, seed: 0 },
      optimizer: { name: 'adamw', weight_decay: 0 },
      output_dir: out,
    },
    'test config',
  );
}

it('a head trained by attune train equals uq fit-head on the same graded answers, for every kind', () => {
  const { model, tokenizer } = loadModel(join(root, 'model'));
  loadAdapter(model, lora).mergeAndUnload();
  const records = questions.map((q) => ({ prompt: q.prompt, answer: q.completion }));
  const { examples } = headExamplesOf(model, tokenizer!, records, {
    metric: 'contains',
    maxNewTokens: 6,
    stop: ['.'],
  });
  const correct = examples.filter((e) => e.correct).length;
  assert.ok(examples.length >= 2, `answers: ${examples.length}`);
  for (const kind of ['evidential', 'deup', 'bayescap'] as const) {
    const result = train(headConfig(kind, join(root, `head-${kind}`)));
    const { head, fittedOn } = loadHeadFile(result.adapterDir);
    const expected = fitHead(kind, examples, { steps: 30, lr: 0.05 });
    assert.equal(head.kind, kind);
    assert.equal(fittedOn.n, examples.length);
    assert.equal(fittedOn.adapter?.path, lora);
    assert.equal(fittedOn.model?.path, join(root, 'model'));
    assert.deepEqual(
      Array.from(head.featureMean, (v) => v.toFixed(5)),
      Array.from(expected.featureMean, (v) => v.toFixed(5)),
    );
    for (let k = 0; k < head.weight.length; k++)
      assert.ok(
        Math.abs(head.weight[k]! - expected.weight[k]!) < 2e-3,
        `${kind} weight ${k}: ${head.weight[k]} vs ${expected.weight[k]} (${correct} of ${examples.length} right)`,
      );
    for (let k = 0; k < head.bias.length; k++)
      assert.ok(Math.abs(head.bias[k]! - expected.bias[k]!) < 2e-3, `${kind} bias ${k}`);
    assert.ok(Math.abs(head.loss - expected.loss) < 1e-3, `${kind} loss ${head.loss} vs ${expected.loss}`);
    assert.ok(
      head.weight.some((w) => w !== 0),
      `${kind}: the head moved`,
    );
  }
});

it('a uq_head run stopped mid-way resumes to exactly the uninterrupted head', () => {
  const full = train(headConfig('evidential', join(root, 'full'), 12));
  const cut = headConfig('evidential', join(root, 'cut'), 12);
  assert.throws(() => train({ ...cut, train: { ...cut.train, save_every: 5 } }, { haltAfterStep: 5 }));
  train(cut, { resume: true });
  const a = loadHeadFile(full.adapterDir).head;
  const b = loadHeadFile(join(root, 'cut', 'adapter')).head;
  assert.deepEqual(b.weight, a.weight);
  assert.deepEqual(b.bias, a.bias);
});

it('attune train head.yaml trains a head that eval --head reads; without its adapter eval refuses it', async () => {
  const yaml = join(root, 'head.yaml');
  writeFileSync(
    yaml,
    `model: model
data: { train: held.jsonl, max_length: 32 }
method: { name: uq_head, kind: deup, adapter: lora/adapter, max_new_tokens: 6, stop: ["."], metric: contains }
train: { steps: 20, lr: 5.0e-2, batch_size: 2 }
output_dir: cli-head
`,
  );
  const trained = await attune(['train', yaml, '--json']);
  assert.equal(trained.status, 0, trained.stderr);
  const dir = join(root, 'cli-head', 'adapter');
  const logged = readFileSync(join(root, 'cli-head', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n');
  const last = JSON.parse(logged.at(-1)!);
  assert.equal(last.head_examples + last.head_empty, 6);
  assert.ok(last.loss > 0 && last.tokens === 0, `logged ${logged.at(-1)}`);
  assert.equal(loadHeadFile(dir).head.kind, 'deup');
  const data = writeJsonl(
    join(root, 'qa.jsonl'),
    questions.map((q) => ({ prompt: q.prompt, answer: q.completion })),
  );
  const common = ['--data', data, '--extra', 'deup', '--head', dir, '--max-new-tokens', '6', '--json'];
  const ok = await attune([
    'eval',
    '--model',
    join(root, 'model'),
    '--adapter',
    lora,
    ...common,
    '--out',
    join(root, 'e1'),
  ]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.ok('deup' in (ok.json!.scores as Record<string, unknown>));
  const refused = await attune([
    'eval',
    '--model',
    join(root, 'model'),
    ...common,
    '--out',
    join(root, 'e2'),
  ]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /adapter/);
});

it('bad uq_head input is refused before the run directory is created', () => {
  const out = join(root, 'bad');
  const config = headConfig('deup', out);
  const missing = join(root, 'no-such-adapter');
  assert.throws(
    () => train({ ...config, method: { ...config.method, adapter: missing } }),
    (e: Error) =>
      e instanceof FormatError && e.message.includes(missing) && /adapter_config.json/.test(e.message),
  );
  assert.equal(existsSync(out), false);
  assert.throws(
    () => headConfig('nope', out),
    (e: Error) => /method.kind/.test(e.message) && /evidential/.test(e.message),
  );
});

it('benches leave uq_head out of the default fine-tuning methods (it trains no LM)', () => {
  assert.ok(tunerNames().includes('uq_head'));
  assert.ok(!fineTuningMethodNames().includes('uq_head'));
  assert.ok(fineTuningMethodNames().includes('lora'));
  assert.ok(!defaultSpecs().some((s) => s.method === 'uq_head'));
});

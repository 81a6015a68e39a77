import './one-thread.ts';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { aggregateRuns, measureRun } from '../../../src/bench/methods.ts';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { loadSweepConfig } from '../../../src/sweep/config.ts';
import { runSweep, type SweepResult } from '../../../src/sweep/sweep.ts';
import { trialPaths } from '../../../src/sweep/trial.ts';
import { predict, readEvalRecords } from '../../../src/uq/index.ts';
import { accuracyOf, paraphraseQuestions, predictWorld } from '../../../src/world/index.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-sweep-world-');
after(() => rmSync(root, { recursive: true, force: true }));
const modelDir = writeTinyModel(join(root, 'model'));
writeJsonl(join(root, 'train.jsonl'), FACTS);
writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
writeFileSync(
  join(root, 'train.yaml'),
  `model: model
data: { train: train.jsonl, eval: eval.jsonl, max_length: 32 }
method: { name: lora, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj] }
train: { steps: 4, batch_size: 2, lr: 1.0e-2 }
`,
);

// "known" facts the base knows: its own greedy answers (so the base's known accuracy is not 0),
// and one it does not
const base = loadModel(modelDir);
const candidates = ['Eve lives in ', 'Fay lives in ', 'Gus lives in ', 'Hal lives in ', 'Ivy lives in '];
const answers = predict(
  base.model,
  base.tokenizer!,
  candidates.map((prompt) => ({ prompt, answer: '-' })),
  { stop: ['\n'], maxNewTokens: 24, eosTokenIds: base.eosTokenIds },
)
  .map((p, i) => ({ prompt: candidates[i]!, answer: p.answer.trim() }))
  .filter((a) => a.answer !== '')
  .slice(0, 2);
const mixedRecords = [
  { prompt: 'Ada lives in ', answer: 'Oslo.', split: 'taught', paraphrase: 'Where does Ada live? ' },
  { prompt: 'Bo lives in ', answer: 'Lima.', split: 'taught', paraphrase: 'Where does Bo live? ' },
  // taught, asked in a wording the base answers this way (so a trial's paraphrase accuracy can be > 0)
  {
    prompt: 'Lu lives in ',
    answer: answers[0]?.answer ?? '-',
    split: 'taught',
    paraphrase: answers[0]?.prompt,
  },
  ...answers.map((a) => ({ ...a, split: 'known' })),
  { prompt: 'Jo lives in ', answer: 'Nowhere-at-all.', split: 'known' },
  { prompt: 'Kim lives in ', answer: 'Quito.', split: 'unknown', answerable: false },
];
const oodRecords = [
  { prompt: 'What is 7 plus 5? ', answer: '12', split: 'ood' },
  { prompt: 'What is 9 minus 4? ', answer: '5', split: 'ood' },
];
writeJsonl(join(root, 'mixed.jsonl'), mixedRecords);
writeJsonl(join(root, 'ood.jsonl'), oodRecords);

describe('attune sweep: the bench metrics of eval_world', () => {
  it('records retention, ood_auroc_<score> and accuracy_paraphrase with the bench functions; the base is answered once', async () => {
    assert.equal(answers.length, 2, 'the tiny base answers at least two candidate prompts');
    const path = join(root, 'sweep.yaml');
    writeFileSync(
      path,
      `base: train.yaml
search: { grid: { train.lr: [1.0e-3, 3.0e-2] } }
objective: [{ metric: retention, goal: max }, { metric: ood_auroc_mean_entropy, goal: max }]
eval_world: [mixed.jsonl, ood.jsonl]
executor: { name: local, workers: 2 }
out: runs/world
`,
    );
    const sweep = loadSweepConfig(path);
    const notes: string[] = [];
    const first = await runSweep(sweep, { onNote: (t) => notes.push(t) });
    // the base answered the known questions once, in this process, into one cached file
    assert.equal(notes.length, 1, notes.join('\n'));
    const cached = readdirSync(sweep.out).filter((f) => f.startsWith('base-known-'));
    assert.equal(cached.length, 1);
    const baseKnownValue = JSON.parse(readFileSync(join(sweep.out, cached[0]!), 'utf8')).known_accuracy;
    // the bench's base measurement: the known questions answered by the base as bench methods loads it
    const known = readEvalRecords(join(root, 'mixed.jsonl')).filter((r) => r.split === 'known');
    const baseKnown = accuracyOf(
      predictWorld(base.model, base.tokenizer!, base.eosTokenIds, { mixed: known, ood: [] }).mixed,
    );
    assert.equal(baseKnownValue, baseKnown);
    assert.equal(baseKnown, 2 / 3);
    // not all trivial: a trial that kept the base's known facts, one that paraphrases a taught fact
    assert.ok(first.trials.some((t) => t.metrics!.retention! > 0));
    assert.ok(first.trials.some((t) => t.metrics!.accuracy_paraphrase! > 0));
    for (const t of first.trials) {
      assert.equal(t.status, 'done', t.error);
      // the bench's run measurement of the trained adapter, on the same questions
      const loaded = loadModel(modelDir);
      loadAdapter(loaded.model, join(trialPaths(sweep.out, t.id).run, 'adapter'));
      const mixed = readEvalRecords(join(root, 'mixed.jsonl'));
      const ask = (records: typeof mixed, ood: typeof mixed = []) =>
        predictWorld(loaded.model, loaded.tokenizer!, loaded.eosTokenIds, { mixed: records, ood });
      const answered = ask(mixed, readEvalRecords(join(root, 'ood.jsonl')));
      const paraphrased = ask(paraphraseQuestions(mixed)).mixed;
      assert.equal(paraphrased.length, 3);
      const cost = { trainable_params: 0, adapter_bytes: 0, step_s: 0, peak_rss_mb: null };
      const run = measureRun(
        { method: 'lora', loss: 'sft', seed: 0 },
        answered.mixed,
        answered.ood,
        paraphrased,
        cost,
      );
      const row = aggregateRuns([run], baseKnown, 'mean_entropy');
      const m = t.metrics as unknown as Record<string, number | undefined>;
      assert.equal(m.retention, row.retention.mean ?? undefined);
      assert.equal(m.retention, accuracyOf(answered.mixed, 'known')! / baseKnown!);
      assert.equal(m.accuracy_paraphrase, run.paraphrase_accuracy);
      assert.equal(m.accuracy_ood, accuracyOf(answered.ood));
      assert.equal(m.ece, run.ece ?? undefined);
      assert.equal(m.brier, run.brier ?? undefined);
      assert.ok(Object.keys(run.scores).length > 0);
      for (const [name, s] of Object.entries(run.scores)) {
        assert.equal(m[`ood_auroc_${name}`], s.ood_auroc ?? undefined, name);
        assert.equal(m[`wrong_auroc_${name}`], s.wrong_auroc ?? undefined, name);
      }
      assert.equal(typeof m.ood_auroc_mean_entropy, 'number');
    }
    // a rerun of a trial reads the cached base (nothing answered again) and measures the same
    rmSync(trialPaths(sweep.out, first.trials[1]!.id).result);
    const again = await runSweep(sweep, { onNote: (t) => notes.push(t) });
    assert.equal(notes.length, 1);
    assert.deepEqual(
      again.trials.map((t) => t.ran),
      ['skipped', 'started'],
    );
    const strip = (r: SweepResult) => r.trials.map(({ ran: _, ...t }) => t);
    assert.deepEqual(strip(again), strip(first));
  });

  it('names the field: a metric without eval_world, retention of a random initialisation, a bad list', () => {
    const write = (name: string, body: string) => {
      writeFileSync(join(root, name), body);
      return join(root, name);
    };
    const head = 'base: train.yaml\nsearch: { grid: { train.lr: [1.0e-3] } }\nout: runs/bad\n';
    assert.throws(
      () => loadSweepConfig(write('no-world.yaml', `${head}objective: { metric: retention }\n`)),
      /objective\.metric 'retention': expected one of .* need eval_world/,
    );
    assert.throws(
      () =>
        loadSweepConfig(
          write('empty-world.yaml', `${head}objective: { metric: accuracy }\neval_world: []\n`),
        ),
      /empty-world\.yaml: field 'eval_world': Too small/,
    );
    assert.throws(
      () =>
        loadSweepConfig(
          write('num-world.yaml', `${head}objective: { metric: accuracy }\neval_world: [mixed.jsonl, 3]\n`),
        ),
      /field 'eval_world': expected a world eval file or a non-empty list of them, found \["mixed.jsonl",3\]/,
    );
  });

  it('retention needs a base model directory: a random initialisation is an error before anything is written', async () => {
    writeFileSync(
      join(root, 'scratch.yaml'),
      readFileSync(join(root, 'train.yaml'), 'utf8').replace(
        'model: model',
        'model: { config: model/config.json, tokenizer: model }',
      ),
    );
    writeFileSync(
      join(root, 'scratch-sweep.yaml'),
      `base: scratch.yaml
search: { grid: { train.lr: [1.0e-3] } }
objective: { metric: retention, goal: max }
eval_world: mixed.jsonl
out: runs/scratch
`,
    );
    const sweep = loadSweepConfig(join(root, 'scratch-sweep.yaml'));
    await assert.rejects(
      runSweep(sweep),
      /objective\.metric 'retention': expected every trial's model to be a model directory/,
    );
    assert.throws(() => readdirSync(sweep.out));
  });
});

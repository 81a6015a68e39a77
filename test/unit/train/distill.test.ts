import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadDataset } from '../../../src/data/index.ts';
import { ConfigError } from '../../../src/errors.ts';
import { Tokenizer, writeSafetensors } from '../../../src/io/index.ts';
import { checkSameVocabulary, loadModel } from '../../../src/models/index.ts';
import { fromArray, noGrad, scope } from '../../../src/tensor/index.ts';
import { distill, loadDistillConfig } from '../../../src/train/distill.ts';
import {
  buildTeacherCache,
  openTeacherCache,
  tokenizerFingerprint,
} from '../../../src/train/teacher-cache.ts';
import { train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-distill-');
after(() => rmSync(root, { recursive: true, force: true }));
const teacherDir = writeTinyModel(join(root, 'teacher'), { seed: 7, hidden: 48 });
const studentDir = writeTinyModel(join(root, 'student'), { seed: 1 });
const trainFile = writeJsonl(join(root, 'train.jsonl'), FACTS);
const otherFile = writeJsonl(
  join(root, 'other.jsonl'),
  FACTS.map((f) => ({ ...f, completion: f.completion.toUpperCase() })),
);

const header = {
  teacher_model: teacherDir,
  teacher_model_hash: 't',
  adapter: null,
  adapter_hash: null,
  data_file: trainFile,
  data_hash: 'd',
  data_options: {},
  tokenizer_fingerprint: '',
};

describe('teacher cache', () => {
  const { model: teacher, tokenizer } = loadModel(teacherDir);
  const examples = loadDataset(trainFile, tokenizer!, { maxLength: 32, report: () => {} }).examples;
  const path = join(root, 'cache.safetensors');
  const fp = tokenizerFingerprint(tokenizer!);
  buildTeacherCache({
    teacher,
    examples,
    k: 4,
    path,
    header: { ...header, tokenizer_fingerprint: fp },
    chunk: 3,
  });

  it("round-trips the teacher's top-k log-probs at every supervised position", () => {
    const cache = openTeacherCache(path);
    assert.equal(cache.k, 4);
    assert.equal(cache.header.examples, examples.length);
    let rows = 0;
    noGrad(() => {
      for (const [e, ex] of examples.entries())
        scope(() => {
          const T = ex.inputIds.length;
          const logits = teacher
            .logits(teacher.forwardHidden(fromArray(Int32Array.from(ex.inputIds), [1, T], { dtype: 'i32' })))
            .floatData();
          for (let t = 1; t < T; t++) {
            if (ex.labels[t] === -100) {
              assert.equal(cache.rowOf(e, t), -1);
              continue;
            }
            const r = cache.rowOf(e, t);
            assert.ok(r >= 0, `example ${e} position ${t} has a row`);
            rows++;
            assert.equal(cache.targets[r], ex.labels[t]);
            const z = Array.from(logits.subarray((t - 1) * 259, t * 259));
            const m = Math.max(...z);
            const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
            const order = z.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
            for (let j = 0; j < 4; j++) {
              assert.equal(cache.ids[r * 4 + j], order[j]![1], `row ${r} id ${j}`);
              assert.ok(Math.abs(cache.logprobs[r * 4 + j]! - (order[j]![0] - lse)) < 1e-5);
            }
          }
        });
    });
    assert.equal(rows, cache.header.tokens);
  });

  it('is accepted for its own data and refused for other data or another vocabulary', () => {
    const cache = openTeacherCache(path);
    cache.verify({ examples, vocabSize: 259, tokenizer: tokenizer! });
    const other = loadDataset(otherFile, tokenizer!, { maxLength: 32, report: () => {} }).examples;
    assert.throws(
      () => cache.verify({ examples: other, vocabSize: 259, tokenizer: tokenizer!, trainFile: otherFile }),
      /example 0 \(.*other\.jsonl:1\) position \d+: gold token \d+ in .*other\.jsonl but \d+ .*other data/,
    );
    assert.throws(
      () => cache.verify({ examples: examples.slice(1), vocabSize: 259, tokenizer: tokenizer! }),
      /4 examples\) but the training data has 3/,
    );
    const renamed = {
      vocabSize: 259,
      origin: 'renamed',
      idToToken: (id: number) => (id === 65 ? 'X' : tokenizer!.idToToken(id)),
    };
    assert.throws(
      () => cache.verify({ examples, vocabSize: 259, tokenizer: renamed }),
      /another tokenizer than the student's \(renamed\)/,
    );
    assert.throws(() => cache.verify({ examples, vocabSize: 300, tokenizer: tokenizer! }), /vocab_size 259/);
  });

  it('refuses a file that is not a cache or has the wrong shapes', () => {
    const bad = join(root, 'bad.safetensors');
    writeSafetensors(bad, { ids: fromArray([1, 2], [2], { dtype: 'i32' }) });
    assert.throws(() => openTeacherCache(bad), /not a teacher cache/);
    const meta = {
      format: 'attune-teacher-cache',
      attune_teacher_cache: JSON.stringify({ version: 1, k: 2, vocab_size: 9, examples: 1, tokens: 1 }),
    };
    writeSafetensors(
      bad,
      {
        ids: fromArray([1, 2, 3], [1, 3], { dtype: 'i32' }),
        logprobs: fromArray([-1, -2], [1, 2]),
        positions: fromArray([1], [1], { dtype: 'i32' }),
        targets: fromArray([1], [1], { dtype: 'i32' }),
        offsets: fromArray([0, 1], [2], { dtype: 'i32' }),
      },
      meta,
    );
    assert.throws(() => openTeacherCache(bad), /tensor 'ids': expected I32 \[1, 2\], found I32 \[1, 3\]/);
  });

  it('checks that teacher and student share the vocabulary, naming both (the shared check of models/)', () => {
    const t = { name: 'teacher T', vocabSize: 259, tokenizer: tokenizer! };
    checkSameVocabulary(t, { name: 'student S', vocabSize: 259, tokenizer: Tokenizer.fromDir(studentDir) });
    // the teacher as distill passes it: its loaded model, whose config gives the LM-head size
    checkSameVocabulary(
      { name: 'teacher T', model: loadModel(teacherDir).model, tokenizer: tokenizer! },
      { name: 'student S', vocabSize: 259, tokenizer: tokenizer! },
    );
    assert.throws(
      () => checkSameVocabulary(t, { ...t, name: 'student S', vocabSize: 300 }),
      (e: unknown) =>
        e instanceof ConfigError &&
        /teacher T and student S must share one vocabulary: vocab_size 259 vs 300/.test(e.message),
    );
    const renamed = {
      vocabSize: 259,
      idToToken: (id: number) => (id === 65 ? 'X' : tokenizer!.idToToken(id)),
    };
    assert.throws(
      () => checkSameVocabulary(t, { name: 'student S', vocabSize: 259, tokenizer: renamed }),
      /teacher T and student S must share one tokenizer: token id 65 is "A" vs "X"/,
    );
  });
});

describe('attune distill', () => {
  const yaml = (name: string, data = trainFile, extra = '') =>
    writeFileSync(
      join(root, `${name}.yaml`),
      `model: student
data: {train: ${data}, max_length: 32}
method: {name: lora, r: 4, lora_alpha: 8, target_modules: [q_proj, v_proj]}
train: {steps: 12, batch_size: 4, lr: 0.02, seed: 0, log_every: 1}
loss: {name: first, ce_weight: 0.1, normalization: linear}
teacher: {model: teacher, k: 3}
output_dir: run-${name}
${extra}`,
    );

  it('builds the cache, trains the student toward the teacher, and reuses the cache', async () => {
    yaml('a');
    const config = loadDistillConfig(join(root, 'a.yaml'));
    assert.equal(config.train.loss.name, 'first');
    assert.equal(config.cachePath, join(root, 'run-a.teacher-top3.safetensors'));
    const events: string[] = [];
    const r = await distill(config, {
      onDistillEvent: (e) => events.push(e.type === 'cache' ? e.status : e.type),
    });
    assert.equal(r.cache.reused, false);
    assert.ok(events.includes('building') && events.includes('cache-done'));
    assert.ok(existsSync(join(root, 'run-a', 'adapter', 'adapter_model.safetensors')));
    const metrics = readFileSync(join(root, 'run-a', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kl: number; nll: number });
    assert.equal(metrics.length, 12);
    assert.ok(metrics.at(-1)!.kl < 0.8 * metrics[0]!.kl, `kl ${metrics[0]!.kl} -> ${metrics.at(-1)!.kl}`);
    const again = await distill(loadDistillConfig(join(root, 'a.yaml')), { overwrite: true });
    assert.equal(again.cache.reused, true);
  });

  it('rebuilds a cache built from other data and refuses it for plain training', async () => {
    yaml('b', otherFile);
    const config = loadDistillConfig(join(root, 'b.yaml'), [
      `teacher.cache=${join(root, 'run-a.teacher-top3.safetensors')}`,
    ]);
    // the first loss on that cache, without distill's rebuild: refused before any output
    assert.throws(() => train(config.train), /teacher cache .*run-a\.teacher-top3\.safetensors.*other data/);
    assert.equal(existsSync(join(root, 'run-b')), false);
    const events: { status?: string; reason?: string }[] = [];
    const r = await distill(config, { onDistillEvent: (e) => events.push(e as never) });
    assert.equal(r.cache.reused, false);
    assert.match(events[0]!.reason!, /another data file/);
  });

  it('runs from the CLI with --json and errors clearly on a bad teacher section', async () => {
    yaml('c');
    const run = await attune(['distill', join(root, 'c.yaml'), '--set', 'train.steps=2', '--json']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal((run.json!.cache as { tokens: number }).tokens > 0, true);
    assert.equal(run.json!.steps, 2);
    const bad = await attune(['distill', join(root, 'c.yaml'), '--set', 'teacher.kk=3']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /teacher.*kk/);
    const help = await attune(['distill', '--help']);
    assert.match(help.stdout, /teacher: \{model/);
  });
});

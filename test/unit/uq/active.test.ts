// Active learning (`attune active`, STAR): the dynamic-mix weights per round by hand, top-U
// selection through the loop, budget and pool errors, the JSONL oracle and pool readers, resume, and
// a small end-to-end run on the small world base (STAR with MC dropout, lora_B decay).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError, DataError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import { loadAdapter } from '../../../src/peft/index.ts';
import { train as trainRun } from '../../../src/train/trainer.ts';
import {
  type ActiveTraining,
  activeStrategies,
  LabelsOracle,
  minMaxNormalise,
  readLabelsFile,
  readPoolFile,
  registerStrategy,
  runActiveWith,
  type ScoringModel,
  starLambda,
  starMix,
  topKIndices,
  validateActiveConfig,
} from '../../../src/uq/index.ts';
import { openWorldBase, shippedWorldBaseDir } from '../../../src/world/base.ts';
import { type Relation, relationValue } from '../../../src/world/generate.ts';
import { activeOracle, activePool } from '../../../src/world/index.ts';
import { writeWorld } from '../../../src/world/write.ts';

const work = mkdtempSync(join(tmpdir(), 'attune-active-'));
after(() => rmSync(work, { recursive: true, force: true }));

const close = (a: ArrayLike<number>, b: number[]) => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i]! - b[i]!) < 1e-12, `[${i}] ${a[i]} vs ${b[i]}`);
};

describe('STAR dynamic mix', () => {
  it('lambda = 0.1 (iter + 1), capped at 1', () => {
    close([0, 1, 4, 9, 10, 20].map(starLambda), [0.1, 0.2, 0.5, 1, 1, 1]);
  });

  it('min-max normalises each uncertainty over the candidates, then mixes (hand-computed)', () => {
    const base = [1, 3, 2, 3];
    const adapted = [0, 10, 5, 0];
    // base~ = [0, 1, .5, 1], adapted~ = [0, 1, .5, 0]
    close(starMix(base, adapted, 0), [0, 1, 0.5, 0.9]); // lambda 0.1
    close(starMix(base, adapted, 2), [0, 1, 0.5, 0.7]); // lambda 0.3
    close(starMix(base, adapted, 9), [0, 1, 0.5, 0]); // lambda 1: adapted only
  });

  it('all-equal uncertainties normalise to 0 (no information), not NaN', () => {
    close(minMaxNormalise([2, 2, 2]), [0, 0, 0]);
    close(starMix([5, 5], [1, 3], 0), [0, 0.1]);
  });

  it('top-k picks the largest scores, ties by pool order', () => {
    assert.deepEqual(topKIndices([0.5, 0.9, 0.9, 0.1], 2), [1, 2]);
    assert.deepEqual(topKIndices([0.3, 0.3, 0.3], 2), [0, 1]);
    assert.deepEqual(topKIndices([0.1, 0.2, 0.9], 1), [2]);
  });
});

// a strategy whose scores are fixed per id: the loop must query its top per_round
const FIXED: Record<string, number> = { a: 0.2, b: 0.9, c: 0.1, d: 0.7, e: 0.9, f: 0.3 };
if (!activeStrategies.has('test-fixed'))
  registerStrategy({
    name: 'test-fixed',
    description: 'fixed scores by id (test)',
    options: z.object({}),
    scores: (ctx) => Float64Array.from(ctx.candidates, (q) => FIXED[q.id]!),
  });

const pool = Object.keys(FIXED).map((id) => ({ id, prompt: `Q: ${id}?\nA:` }));
const labels = new Map(pool.map((q) => [q.id, `ans-${q.id}`]));
const trainRaw = (out: string) => ({
  model: join(work, 'nomodel'),
  method: 'lora',
  train: { steps: 1, batch_size: 1, lr: 1e-3 },
  out,
  pool: { file: join(work, 'unused.jsonl') },
  oracle: { name: 'jsonl', file: join(work, 'unused.jsonl') },
});

/** A trainer that trains nothing: writes a marker adapter holding the training data it got. */
function fakeTrain(r: ActiveTraining) {
  const dir = join(r.config.output_dir, 'adapter');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'train.jsonl'), readFileSync(r.config.data.train as string));
  return { adapterDir: dir, finalLoss: r.round };
}
const noModel = { loadModel: (): ScoringModel => assert.fail('the fixed strategy loads no model') };

describe('the active loop (fixed-score strategy, no training)', () => {
  const cfg = (out: string, over: Record<string, unknown> = {}) =>
    validateActiveConfig({ ...trainRaw(join(work, out)), strategy: 'test-fixed', ...over }, 'test', work);

  it('round 0 labels seed_labels at random; each round queries the top-U ids; counts oracle calls', () => {
    const c = cfg('fixed', { seed_labels: 0, rounds: 2, per_round: 2 });
    const oracle = new LabelsOracle(labels);
    const rounds = runActiveWith(c.train, c.spec, pool, oracle, fakeTrain, noModel);
    assert.deepEqual(
      rounds.map((r) => [r.round, r.labels, r.new_labels, r.oracle_calls]),
      [
        [1, 2, 2, 2],
        [2, 4, 2, 2],
      ],
    );
    assert.equal(oracle.calls, 4);
    const got = readFileSync(join(c.train.output_dir, 'round-2', 'labels.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    // b and e tie at 0.9 (b first in pool order), then d 0.7, f 0.3
    assert.deepEqual(
      got.map((l) => [l.id, l.round, l.answer]),
      [
        ['b', 1, 'ans-b'],
        ['e', 1, 'ans-e'],
        ['d', 2, 'ans-d'],
        ['f', 2, 'ans-f'],
      ],
    );
    // round 2 trained on all four labels, answers as completions
    const trained = readFileSync(join(c.train.output_dir, 'round-2', 'adapter', 'train.jsonl'), 'utf8');
    assert.equal(trained.trim().split('\n').length, 4);
    assert.match(trained, /"completion":" ans-f"/);
    assert.ok(existsSync(join(c.train.output_dir, 'round-2', 'done.json')));
  });

  it('a re-run skips finished rounds (no oracle call) and continues with more rounds identically', () => {
    const full = cfg('resume-full', { seed_labels: 2, rounds: 2, per_round: 1 });
    const fullRounds = runActiveWith(
      full.train,
      full.spec,
      pool,
      new LabelsOracle(labels),
      fakeTrain,
      noModel,
    );
    const part = cfg('resume-part', { seed_labels: 2, rounds: 1, per_round: 1 });
    runActiveWith(part.train, part.spec, pool, new LabelsOracle(labels), fakeTrain, noModel);
    const more = cfg('resume-part', { seed_labels: 2, rounds: 2, per_round: 1 });
    const oracle = new LabelsOracle(labels);
    const skipped: number[] = [];
    const resumed = runActiveWith(more.train, more.spec, pool, oracle, fakeTrain, {
      ...noModel,
      onEvent: (e) => {
        if (e.type === 'skipped') skipped.push(e.round);
      },
    });
    assert.deepEqual(skipped, [0, 1]);
    assert.equal(oracle.calls, 1);
    const strip = (rs: typeof resumed) => rs.map(({ adapter: _a, ...r }) => r);
    assert.deepEqual(strip(resumed), strip(fullRounds));
    const file = (c: typeof full) =>
      readFileSync(join(c.train.output_dir, 'round-2', 'labels.jsonl'), 'utf8');
    assert.equal(file(more), file(full));
  });

  it('refuses an out folder written with other settings unless overwrite', () => {
    const a = cfg('other', { seed_labels: 1, rounds: 1, per_round: 1 });
    runActiveWith(a.train, a.spec, pool, new LabelsOracle(labels), fakeTrain, noModel);
    const b = cfg('other', { seed_labels: 2, rounds: 1, per_round: 1 });
    assert.throws(
      () => runActiveWith(b.train, b.spec, pool, new LabelsOracle(labels), fakeTrain, noModel),
      /exists and was not written by an active run with these settings/,
    );
    runActiveWith(b.train, b.spec, pool, new LabelsOracle(labels), fakeTrain, {
      ...noModel,
      overwrite: true,
    });
  });

  it('a pool smaller than the budget is an error with the numbers, before any output', () => {
    const c = cfg('budget', { seed_labels: 2, rounds: 3, per_round: 2 });
    assert.throws(
      () => runActiveWith(c.train, c.spec, pool, new LabelsOracle(labels), fakeTrain, noModel),
      (e: Error) =>
        e instanceof ConfigError &&
        /the pool has 6 questions, fewer than the label budget 8 \(seed_labels 2 \+ rounds 3 x per_round 2\)/.test(
          e.message,
        ),
    );
    assert.ok(!existsSync(c.train.output_dir));
  });

  it('an unknown strategy is a config error naming the known ones', () => {
    assert.throws(() => cfg('x', { strategy: 'stra' }), /unknown active-learning strategy 'stra'.*star/);
  });
});

describe('pool and labels files', () => {
  it('reads {id?, prompt} and {id, answer}; an empty prompt is an error at file:line', () => {
    const p = join(work, 'pool.jsonl');
    writeFileSync(p, '{"id":"x","prompt":"Q: a?\\nA:"}\n\n{"prompt":"Q: b?\\nA:"}\n');
    assert.deepEqual(readPoolFile(p), [
      { id: 'x', prompt: 'Q: a?\nA:' },
      { id: '3', prompt: 'Q: b?\nA:' },
    ]);
    writeFileSync(p, '{"id":"x","prompt":"Q: a?"}\n{"id":"y","prompt":"  "}\n');
    assert.throws(
      () => readPoolFile(p),
      (e: Error) => e instanceof DataError && e.message.includes(`${p}:2`) && /prompt/.test(e.message),
    );
    const l = join(work, 'labels.jsonl');
    writeFileSync(l, '{"id":"x","answer":" Oslo "}\n{"id":"y","answer":"Lima"}\n');
    const oracle = new LabelsOracle(readLabelsFile(l));
    assert.equal(oracle.label({ id: 'x' }), 'Oslo');
    assert.throws(() => oracle.label({ id: 'z' }), /no label for question 'z'/);
    assert.equal(oracle.calls, 1);
    writeFileSync(l, '{"id":"x","answer":"a"}\n{"id":"x","answer":"b"}\n');
    assert.throws(
      () => readLabelsFile(l),
      (e: Error) => e instanceof DataError && e.message.includes(`${l}:2`),
    );
  });
});

describe('attune active on the small world base (STAR, MC dropout, lora_B decay)', () => {
  const baseDir = shippedWorldBaseDir('small');
  const { world } = openWorldBase(baseDir);
  const worldDir = join(work, 'world');
  writeWorld(world, worldDir);
  const all = activePool({ world: worldDir, seed: 1 });
  const poolFile = join(work, 'world-pool.jsonl');
  writeFileSync(
    poolFile,
    all
      .slice(0, 24)
      .map((q) => `${JSON.stringify(q)}\n`)
      .join(''),
  );
  const load = (adapterDir: string | null): ScoringModel => {
    const m = loadModel(baseDir);
    if (adapterDir) loadAdapter(m.model, adapterDir);
    m.model.eval();
    return { model: m.model, tokenizer: m.tokenizer!, eosTokenIds: m.eosTokenIds };
  };
  const train = (r: ActiveTraining) => {
    const res = trainRun(r.config, { overwrite: true });
    return { adapterDir: res.adapterDir, finalLoss: res.finalLoss };
  };

  it('labels, trains and scores each round; the world oracle counts one call per label', () => {
    const c = validateActiveConfig(
      {
        model: baseDir,
        method: { name: 'lora', r: 4, lora_dropout: 0.1, lora_b_weight_decay: 0.5 },
        optimizer: { name: 'adamw', weight_decay: 0 },
        train: { steps: 3, batch_size: 4, lr: 5e-3 },
        data: { max_length: 48 },
        pool: { file: poolFile },
        oracle: { name: 'world', world: worldDir },
        strategy: 'star',
        seed_labels: 4,
        rounds: 2,
        per_round: 4,
        mc_dropout: { passes: 3, p: 0.1 },
        max_new_tokens: 6,
        out: join(work, 'star'),
      },
      'test',
      work,
    );
    const oracle = activeOracle(c.oracle);
    const rounds = runActiveWith(c.train, c.spec, activePool(c.pool), oracle, train, { loadModel: load });
    assert.deepEqual(
      rounds.map((r) => r.labels),
      [4, 8, 12],
    );
    assert.equal(oracle.calls, 12);
    const got = readFileSync(join(c.train.output_dir, 'round-2', 'labels.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(new Set(got.map((l) => l.id)).size, 12);
    for (const l of got) {
      const [name, relation] = (l.id as string).split('|');
      const person = world.people.find((p) => p.name === name)!;
      assert.equal(l.answer, relationValue(person, relation as Relation));
    }
    // STAR scores are mixes of two min-max normalised uncertainties: in [0, 1]
    for (const l of got.filter((x) => x.round > 0)) assert.ok(l.score >= 0 && l.score <= 1, String(l.score));
    assert.ok(existsSync(join(c.train.output_dir, 'round-2', 'adapter', 'adapter_model.safetensors')));
  });
});

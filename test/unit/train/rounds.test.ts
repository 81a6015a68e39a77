import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { DataError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  buildPairs,
  loadRoundsConfig,
  makeReward,
  pairConfidence,
  type RewardFn,
  type RoundsSpec,
  readRoundPrompts,
  runRounds,
} from '../../../src/train/rounds/index.ts';
import '../../../src/uq/upo-judge.ts';
import { tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { attune } from '../cli/commands/helpers.ts';

const root = tempDir('attune-rounds-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
const promptsFile = writeJsonl(join(root, 'prompts.jsonl'), [
  { prompt: 'Ada lives in ', answer: 'Oslo.' },
  { prompt: 'Bo lives in ', answer: 'Lima.' },
  { prompt: 'Cy lives in ', answer: 'Rome.' },
]);
const prompts = readRoundPrompts(promptsFile);
/** A rule reward for the random model: the count of vowels in the sample. */
const vowels: RewardFn = (_p, samples) =>
  samples.map((s) => ({ reward: (s.response.match(/[aeiou]/gi) ?? []).length + s.response.length / 100 }));
const spec = (over: Partial<RoundsSpec> = {}): RoundsSpec => ({
  kind: 'on_policy',
  rounds: 2,
  samples: 4,
  temperature: 1,
  max_new_tokens: 6,
  seed: 3,
  upo_threshold: 0.8,
  list_threshold: 0,
  list_top_fraction: 1,
  ...over,
});
const dpoConfig = (out: string) =>
  tinyConfig(root, {
    data: { train: promptsFile, max_length: 32 },
    loss: { name: 'dpo', beta: 0.5 },
    train: { steps: 3, batch_size: 2, lr: 1e-2, seed: 0 },
    output_dir: join(root, out),
  });
const weights = (dir: string) => {
  const { model } = loadModel(dir);
  return [...model.namedParameters()].map(([, p]) => Array.from(p.data as Float32Array));
};

describe('self-improvement rounds', () => {
  it('on_policy: two rounds, each pairs the graded samples and merges the tuned adapter; resume reproduces', async () => {
    const full = await runRounds(dpoConfig('full'), spec(), prompts, { reward: vowels });
    assert.deepEqual(
      full.map((r) => r.round),
      [1, 2],
    );
    const pairs = readFileSync(join(root, 'full', 'round-1', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.ok(pairs.length >= 1);
    for (const p of pairs) assert.ok(p.chosen_reward > p.rejected_reward);
    // the round-2 policy differs from round 1's (it was tuned again)
    const w1 = weights(full[0]!.policy);
    const w2 = weights(full[1]!.policy);
    assert.notDeepEqual(w1, w2);
    // one round, then resume to two: the same policies
    await runRounds(dpoConfig('split'), spec({ rounds: 1 }), prompts, { reward: vowels });
    const events: string[] = [];
    const resumed = await runRounds(dpoConfig('split'), spec(), prompts, {
      reward: vowels,
      resume: true,
      onEvent: (e) => {
        if (e.type !== 'train') events.push(`${e.type}:${'round' in e ? e.round : ''}`);
      },
    });
    assert.ok(events.includes('skipped:1'));
    assert.equal(resumed.length, 2);
    const r2 = weights(resumed[1]!.policy);
    r2.forEach((t, i) => {
      t.forEach((v, j) => {
        assert.ok(Math.abs(v - w2[i]![j]!) < 1e-6, `tensor ${i}[${j}]`);
      });
    });
    assert.equal(resumed[1]!.final_loss, full[1]!.final_loss);
    // an existing output_dir without --resume / --overwrite is refused
    await assert.rejects(
      runRounds(dpoConfig('split'), spec(), prompts, { reward: vowels }),
      /exists; pass --resume/,
    );
  });

  it('upo: only pairs whose judge margins agree across MC-dropout passes are trained on', async () => {
    const judge = makeReward({ name: 'judge', passes: 4, rate: 0.3 });
    const all = await runRounds(
      dpoConfig('upo0'),
      spec({ kind: 'upo', rounds: 1, upo_threshold: 0 }),
      prompts,
      { reward: judge },
    );
    assert.equal(all[0]!.kept, all[0]!.candidates);
    const some = await runRounds(
      dpoConfig('upo9'),
      spec({ kind: 'upo', rounds: 1, upo_threshold: 0.9 }),
      prompts,
      { reward: judge },
    );
    const read = (f: string) =>
      readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    const samples = read(join(root, 'upo9', 'round-1', 'samples.jsonl'));
    for (const s of samples) assert.equal(s.passes.length, 4);
    // recompute each built pair's confidence from the per-pass scores: kept iff >= 0.9
    const passes = new Map(
      samples.map((s: { prompt: string; response: string; passes: number[] }) => [
        `${s.prompt}|${s.response}`,
        s.passes,
      ]),
    );
    const built = buildPairs(samples);
    const expected = built.filter((p) => {
      const c = passes.get(`${p.prompt}|${p.chosen}`)!;
      const r = passes.get(`${p.prompt}|${p.rejected}`)!;
      return pairConfidence(c.map((v, t) => v - r[t]!)) >= 0.9;
    });
    assert.ok(expected.length < built.length, 'the filter dropped some pair');
    assert.deepEqual(
      read(join(root, 'upo9', 'round-1', 'train.jsonl')).map((p: { chosen: string }) => p.chosen),
      expected.map((p) => p.chosen),
    );
    assert.equal(some[0]!.kept, expected.length);
  });

  it("upo_mode 'weight': every pair is kept with its judge confidence as its dpo weight", async () => {
    const judge = makeReward({ name: 'judge', passes: 4, rate: 0.3 });
    const out = await runRounds(
      dpoConfig('upow'),
      spec({ kind: 'upo', rounds: 1, upo_threshold: 0.9, upo_mode: 'weight' }),
      prompts,
      { reward: judge },
    );
    const read = (f: string) =>
      readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
    const samples = read(join(root, 'upow', 'round-1', 'samples.jsonl'));
    const passes = new Map(
      samples.map((s: { prompt: string; response: string; passes: number[] }) => [
        `${s.prompt}|${s.response}`,
        s.passes,
      ]),
    );
    const expected = buildPairs(samples)
      .map((p) => {
        const c = passes.get(`${p.prompt}|${p.chosen}`)!;
        const r = passes.get(`${p.prompt}|${p.rejected}`)!;
        return { chosen: p.chosen, weight: pairConfidence(c.map((v, t) => v - r[t]!)) };
      })
      .filter((p) => p.weight > 0);
    const rows = read(join(root, 'upow', 'round-1', 'train.jsonl'));
    assert.equal(rows.length, expected.length);
    assert.ok(
      expected.some((p) => p.weight < 0.9),
      'a pair the filter would drop is kept, down-weighted',
    );
    rows.forEach((row: { chosen: string; weight: number }, i: number) => {
      assert.equal(row.chosen, expected[i]!.chosen);
      assert.ok(Math.abs(row.weight - expected[i]!.weight) < 1e-12, `${row.weight}`);
    });
    assert.equal(out[0]!.kept, expected.length);
    assert.ok(Number.isFinite(out[0]!.final_loss));
  });

  it('list: greedy pseudo-labels, the confident fraction plus the labelled data', async () => {
    const labelled = writeJsonl(join(root, 'labelled.jsonl'), [
      { prompt: 'Di lives in ', completion: 'Kyiv.' },
    ]);
    const config = tinyConfig(root, {
      data: { train: promptsFile, max_length: 32 },
      train: { steps: 2, batch_size: 2, lr: 1e-2, seed: 0 },
      output_dir: join(root, 'list'),
    });
    const out = await runRounds(config, spec({ kind: 'list', rounds: 1, list_top_fraction: 0.5 }), prompts, {
      labelled,
    });
    const labels = readFileSync(join(root, 'list', 'round-1', 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const rows = readFileSync(join(root, 'list', 'round-1', 'train.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const n = Math.ceil(labels.length * 0.5);
    assert.equal(out[0]!.kept, n);
    assert.equal(rows.length, 1 + n);
    assert.deepEqual(rows[0], { prompt: 'Di lives in ', completion: 'Kyiv.' });
    const best = Math.max(...labels.map((l: { confidence: number }) => l.confidence));
    assert.ok(
      rows
        .slice(1)
        .some(
          (r: { completion: string }) =>
            labels.find((l: { completion: string; confidence: number }) => l.completion === r.completion)
              ?.confidence === best,
        ),
    );
  });

  it('bad input: prompt lines, rounds config, reward names', () => {
    const bad = join(root, 'bad.jsonl');
    writeFileSync(bad, '{"prompt": "ok"}\n{"prompt": 3}\n');
    assert.throws(
      () => readRoundPrompts(bad),
      (e: unknown) => e instanceof DataError && /bad\.jsonl:2: field 'prompt'/.test(e.message),
    );
    writeFileSync(bad, '{"prompt": "ok"}\nnot json\n');
    assert.throws(() => readRoundPrompts(bad), /bad\.jsonl:2: expected a JSON object/);
    assert.throws(
      () => makeReward({ name: 'nope' }),
      /rounds\.reward\.name: expected one of .*'rule'.*found 'nope'/,
    );
    assert.throws(() => makeReward({ name: 'rule', x: 1 }), /unknown option\(s\) x/);
    const yaml = join(root, 'r.yaml');
    writeFileSync(
      yaml,
      [
        'model: model',
        'method: lora',
        'loss: ce',
        'train: {steps: 2}',
        'output_dir: out',
        'rounds: {kind: on_policy, prompts: prompts.jsonl, reward: {name: rule}}',
        '',
      ].join('\n'),
    );
    assert.throws(
      () => loadRoundsConfig(yaml),
      /loss: rounds\.kind 'on_policy' trains on pairs with loss 'dpo', found 'ce'/,
    );
    assert.throws(
      () => loadRoundsConfig(yaml, ['loss=dpo', 'rounds.kind=upo']),
      /upo needs the MC-dropout 'judge' reward/,
    );
    assert.throws(() => loadRoundsConfig(yaml, ['rounds.samples=0']), /rounds.*samples/);
    const ok = loadRoundsConfig(yaml, ['loss=dpo']);
    assert.equal(ok.prompts, join(root, 'prompts.jsonl'));
    assert.equal(ok.spec.samples, 4);
    // the rule reward needs gold answers
    const rule = makeReward({ name: 'rule' });
    assert.deepEqual(
      rule(null as never, [
        { item: prompts[0]!, response: ' oslo' },
        { item: prompts[0]!, response: ' Lima' },
      ]).map((g) => g.reward),
      [1, 0],
    );
    assert.throws(
      () => rule(null as never, [{ item: { prompt: 'x', line: 7 }, response: 'y' }]),
      /:7: reward 'rule' needs an 'answer'/,
    );
  });

  it('runs from the CLI with --json; --resume skips the finished rounds; bad config is a clear error', async () => {
    const yaml = join(root, 'cli.yaml');
    writeFileSync(
      yaml,
      [
        'model: model',
        'data: {max_length: 32}',
        'method: {name: lora, r: 4, lora_alpha: 8}',
        'loss: {name: dpo, beta: 0.5}',
        'train: {steps: 2, batch_size: 2, lr: 0.01}',
        'output_dir: cli-out',
        'rounds: {kind: on_policy, prompts: prompts.jsonl, rounds: 1, samples: 3, max_new_tokens: 5, reward: {name: judge, passes: 2}}',
        '',
      ].join('\n'),
    );
    const run = await attune(['rounds', yaml, '--json']);
    assert.equal(run.status, 0, run.stderr);
    const rounds = run.json!.rounds as { round: number; kept: number }[];
    assert.equal(rounds.length, 1);
    assert.ok(rounds[0]!.kept >= 1);
    assert.match(run.stderr, /round 1\/1: sampling 3 prompts/);
    const again = await attune(['rounds', yaml, '--resume', '--set', 'rounds.rounds=2', '--json']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /round 1 already finished/);
    assert.equal((again.json!.rounds as unknown[]).length, 2);
    const bad = await attune(['rounds', yaml, '--set', 'rounds.kind=sometimes']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /rounds.*kind/);
    const help = await attune(['rounds', '--help']);
    assert.match(help.stdout, /judge \(an LM judge/);
  });
});

/** The round-kind registry is an extension point: a kind registered here runs through the rounds, its config and docs. */
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { roundsCommand } from '../../../src/cli/commands/rounds.ts';
import { renderConfigDocs } from '../../../src/train/config-docs.ts';
import {
  loadRoundsConfig,
  type RoundsSpec,
  readRoundPrompts,
  registerRoundKind,
  roundKinds,
  runRounds,
} from '../../../src/train/rounds/index.ts';
import { tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

declare module '../../../src/train/rounds/rounds.ts' {
  interface RoundsSpec {
    /** gold_echo: how many times each gold answer is trained on per round. */
    gold_copies?: number;
  }
}

const root = tempDir('attune-round-kinds-');
const registered: string[] = [];
after(() => {
  for (const name of registered) roundKinds.unregister(name);
  rmSync(root, { recursive: true, force: true });
});
writeTinyModel(join(root, 'model'), { hidden: 32 });
const promptsFile = writeJsonl(join(root, 'prompts.jsonl'), [
  { prompt: 'Ada lives in ', answer: 'Oslo.' },
  { prompt: 'Bo lives in ', answer: 'Lima.' },
  { prompt: 'Cy lives in' },
]);
const prompts = readRoundPrompts(promptsFile);

// a kind that needs no model output: each round trains on the prompts' gold answers, gold_copies times each
registerRoundKind({
  name: 'gold_echo',
  description: 'the gold answers of the prompts, gold_copies times each, loss ce',
  options: z.object({
    gold_copies: z.number().int().positive().default(1).describe('gold_echo: copies of each gold answer'),
  }),
  trainsOn: 'records',
  rowsName: 'gold answers',
  needsReward: false,
  start(run) {
    const copies = run.spec.gold_copies ?? 1;
    const gold = run.prompts.filter((p) => p.answer !== undefined);
    return ({ round, emit }) => {
      emit({ type: 'sampled', round, samples: gold.length });
      const rows = gold.flatMap((p) =>
        Array.from({ length: copies }, () => ({ prompt: p.prompt, completion: ` ${p.answer}` })),
      );
      return {
        samples: gold.map((p) => ({ prompt: p.prompt, answer: p.answer, round })),
        candidates: gold.length,
        rows,
        meanScore: 1,
        emptyReason: 'no prompt has a gold answer',
      };
    };
  },
});
registered.push('gold_echo');

const spec = (over: Partial<RoundsSpec> = {}): RoundsSpec => ({
  kind: 'gold_echo',
  rounds: 2,
  samples: 1,
  temperature: 1,
  max_new_tokens: 4,
  seed: 0,
  ...over,
});
const config = (out: string) =>
  tinyConfig(root, {
    data: { train: promptsFile, max_length: 32 },
    train: { steps: 2, batch_size: 2, lr: 1e-2, seed: 0 },
    output_dir: join(root, out),
  });
const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

describe('round kinds registered outside the built-ins', () => {
  it('a kind registered in the test runs through the rounds: its rows are trained on and merged, round by round', async () => {
    const events: string[] = [];
    const out = await runRounds(config('echo'), spec({ gold_copies: 2 }), prompts, {
      onEvent: (e) => {
        if (e.type === 'sampled' || e.type === 'round-done')
          events.push(`${e.type}:${'round' in e ? e.round : e.summary.round}`);
      },
    });
    assert.deepEqual(events, ['sampled:1', 'round-done:1', 'sampled:2', 'round-done:2']);
    assert.deepEqual(
      out.map((s) => [s.round, s.samples, s.candidates, s.kept, s.mean_score]),
      [
        [1, 2, 2, 4, 1],
        [2, 2, 2, 4, 1],
      ],
    );
    for (const s of out) assert.ok(Number.isFinite(s.final_loss));
    assert.deepEqual(lines(join(root, 'echo', 'round-2', 'train.jsonl')), [
      { prompt: 'Ada lives in ', completion: ' Oslo.' },
      { prompt: 'Ada lives in ', completion: ' Oslo.' },
      { prompt: 'Bo lives in ', completion: ' Lima.' },
      { prompt: 'Bo lives in ', completion: ' Lima.' },
    ]);
    assert.deepEqual(
      lines(join(root, 'echo', 'round-1', 'samples.jsonl')).map((s) => s.round),
      [1, 1],
    );
    const state = JSON.parse(readFileSync(join(root, 'echo', 'rounds.json'), 'utf8'));
    assert.equal(state.kind, 'gold_echo');
    // round 2 started from round 1's merged policy
    assert.equal(out[1]!.policy, join(root, 'echo', 'round-2', 'policy'));
  });

  it("an empty round is the kind's reason; no reward is needed since the kind says so", async () => {
    const noGold = readRoundPrompts(writeJsonl(join(root, 'nogold.jsonl'), [{ prompt: 'x' }]));
    await assert.rejects(
      runRounds(config('empty'), spec({ rounds: 1 }), noGold),
      /rounds: round 1: no prompt has a gold answer/,
    );
    await assert.rejects(
      runRounds(config('unknown'), spec({ kind: 'gold_ecko' }), prompts),
      /rounds\.kind: unknown round kind 'gold_ecko' .*did you mean 'gold_echo'/,
    );
  });

  it('its options are fields of rounds: in YAML, validated by its schema; its trainsOn checks the loss', () => {
    const yaml = join(root, 'echo.yaml');
    writeFileSync(
      yaml,
      [
        'model: model',
        'method: lora',
        'loss: ce',
        'train: {steps: 2}',
        'output_dir: out',
        'rounds: {kind: gold_echo, prompts: prompts.jsonl, gold_copies: 3}',
        '',
      ].join('\n'),
    );
    const loaded = loadRoundsConfig(yaml);
    assert.equal(loaded.spec.kind, 'gold_echo');
    assert.equal(loaded.spec.gold_copies, 3);
    assert.equal(loaded.reward, null);
    // the built-ins' options are still filled in (a flat section: every kind's options validate)
    assert.equal(loaded.spec.upo_threshold, 0.8);
    assert.throws(() => loadRoundsConfig(yaml, ['rounds.gold_copies=0']), /rounds: field 'gold_copies'/);
    assert.throws(
      () => loadRoundsConfig(yaml, ['loss=dpo']),
      /loss: rounds\.kind 'gold_echo' trains on gold answers \(e\.g\. 'ce'\), found the preference-pair loss 'dpo'/,
    );
    assert.throws(
      () => loadRoundsConfig(yaml, ['rounds.kind=gold']),
      /rounds: field 'kind': unknown round kind 'gold' \(known: .*gold_echo/,
    );
  });

  it('a kind option reusing a common field or another kind option is refused, naming both', () => {
    const yaml = join(root, 'clash.yaml');
    writeFileSync(
      yaml,
      'model: model\nloss: ce\ntrain: {steps: 2}\noutput_dir: out\nrounds: {kind: list, prompts: prompts.jsonl}\n',
    );
    const clash = (name: string, option: string, expected: RegExp) => {
      registerRoundKind({
        name,
        description: 'clashes',
        options: z.object({ [option]: z.number().default(1) }),
        trainsOn: 'records',
        needsReward: false,
        start: () => () => {
          throw new Error('never runs');
        },
      });
      try {
        assert.throws(() => loadRoundsConfig(yaml), expected);
      } finally {
        roundKinds.unregister(name);
      }
    };
    clash(
      'clash_a',
      'upo_threshold',
      /round kind 'clash_a': option 'upo_threshold' is already an option of kind 'upo'/,
    );
    clash('clash_b', 'samples', /round kind 'clash_b': option 'samples' is already a common rounds field/);
    clash('clash_c', 'labelled', /round kind 'clash_c': option 'labelled' is already a common rounds field/);
    assert.equal(loadRoundsConfig(yaml).spec.kind, 'list');
  });

  it('the generated config reference and --help list it with its options', () => {
    const docs = renderConfigDocs();
    assert.match(docs, /### `rounds\.kind: gold_echo`/);
    assert.match(docs, /\| `gold_copies` \| number \| `1` \| gold_echo: copies of each gold answer \|/);
    assert.match(roundsCommand.description ?? '', /gold_echo: the gold answers of the prompts/);
    assert.match(roundsCommand.description ?? '', /gold_copies: 1/);
  });
});

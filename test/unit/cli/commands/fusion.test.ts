/**
 * `attune generate` and `attune eval` with --strong / --weak-base / --weak-tuned: weight 0 decodes the
 * strong model alone, a fusion whose weak base is the strong model with weight 1 decodes the expert
 * alone (so eval's answers and scores come from the fused distribution), dynamic weights are reported
 * per token, and bad flag combinations or vocabularies are one-line errors.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { createModel, llamaConfigJson, saveModel } from '../../../../src/models/index.ts';
import { tempDir, writeJsonl, writeTinyModel } from '../../../helpers/tiny-run.ts';
import { attune } from './helpers.ts';

const root = tempDir('attune-cli-fusion-');
after(() => rmSync(root, { recursive: true, force: true }));
const strong = writeTinyModel(join(root, 'strong'), { seed: 1, hidden: 48 });
const base = writeTinyModel(join(root, 'base'), { seed: 2 });
const tuned = writeTinyModel(join(root, 'tuned'), { seed: 3 });
const prompt = ['--prompt', 'ab', '--max-new-tokens', '6', '--json'];

describe('attune generate --strong', () => {
  it('--fusion-weights 0 generates exactly what the strong model generates', async () => {
    const alone = await attune(['generate', '--model', strong, ...prompt]);
    const fused = await attune([
      'generate',
      '--strong',
      strong,
      '--weak-base',
      base,
      '--weak-tuned',
      tuned,
      '--fusion-weights',
      '0',
      ...prompt,
    ]);
    assert.equal(fused.status, 0, fused.stderr);
    assert.deepEqual(fused.json!.generated_ids, alone.json!.generated_ids);
    assert.ok(Math.abs((fused.json!.confidence as number) - (alone.json!.confidence as number)) < 1e-5);
  });

  it('weak base = strong with weight 1 generates what the expert generates', async () => {
    const alone = await attune(['generate', '--model', tuned, ...prompt]);
    const fused = await attune([
      'generate',
      '--strong',
      strong,
      '--weak-base',
      strong,
      '--weak-tuned',
      tuned,
      '--fusion-weights',
      '1',
      ...prompt,
    ]);
    assert.equal(fused.status, 0, fused.stderr);
    assert.deepEqual(fused.json!.generated_ids, alone.json!.generated_ids);
  });

  it('dynamic weights: one weight vector per generated token, on the grid [0, 2]', async () => {
    const r = await attune([
      'generate',
      '--strong',
      strong,
      '--weak-base',
      base,
      '--weak-tuned',
      tuned,
      '--weak-tuned',
      `${tuned}`,
      ...prompt,
    ]);
    assert.equal(r.status, 0, r.stderr);
    const fusion = r.json!.fusion as { weights: string; token_weights: number[][] };
    assert.equal(fusion.weights, 'dynamic');
    assert.equal(fusion.token_weights.length, (r.json!.generated_ids as number[]).length);
    for (const w of fusion.token_weights) {
      assert.equal(w.length, 2);
      for (const x of w) assert.ok(x >= 0 && x <= 2 + 1e-9 && Math.abs(x * 10 - Math.round(x * 10)) < 1e-6);
    }
  });

  it('bad combinations and vocabularies are one-line errors', async () => {
    const cases: [string[], RegExp][] = [
      [['--strong', strong, '--weak-base', base], /fusion needs at least one --weak-tuned/],
      [
        ['--model', strong, '--strong', strong, '--weak-base', base, '--weak-tuned', tuned],
        /--strong replaces --model/,
      ],
      [
        [
          '--strong',
          strong,
          '--weak-base',
          base,
          '--weak-base',
          base,
          '--weak-base',
          base,
          '--weak-tuned',
          tuned,
          '--weak-tuned',
          tuned,
        ],
        /one --weak-base for every expert or one per --weak-tuned \(2\), got 3/,
      ],
      [
        ['--strong', strong, '--weak-base', base, '--weak-tuned', tuned, '--fusion-weights', '1,2'],
        /one weight per --weak-tuned \(1\), got 2/,
      ],
      [
        ['--strong', `${strong}:`, '--weak-base', base, '--weak-tuned', tuned],
        /--strong: expected MODEL_DIR or MODEL_DIR:ADAPTER_DIR/,
      ],
    ];
    for (const [flags, message] of cases) {
      const r = await attune(['generate', ...flags, '--prompt', 'x']);
      assert.equal(r.status, 2, flags.join(' '));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split('\n').length, 1);
    }
    const other = join(root, 'other-vocab');
    saveModel(
      createModel(
        llamaConfigJson({
          vocabSize: 300,
          hiddenSize: 32,
          intermediateSize: 64,
          numLayers: 1,
          numHeads: 4,
          numKvHeads: 2,
        }),
        { seed: 4 },
      ),
      other,
    );
    const r = await attune([
      'generate',
      '--strong',
      strong,
      '--weak-base',
      base,
      '--weak-tuned',
      other,
      '--prompt',
      'x',
    ]);
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /--strong .*strong and --weak-tuned .*other-vocab must share one vocabulary: vocab_size 259 vs 300/,
    );
  });
});

describe('attune eval --strong', () => {
  const data = writeJsonl(join(root, 'qa.jsonl'), [
    { prompt: 'ab', answer: 'x' },
    { prompt: 'cd', answer: 'y' },
    { prompt: 'ef', answer: 'z' },
  ]);
  const common = ['--data', data, '--max-new-tokens', '4', '--overwrite', '--json'];
  const predictions = (dir: string) =>
    readFileSync(join(dir, 'predictions.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { answer: string; confidence: number; mean_entropy: number });

  it('answers and scores come from the fused distribution (base = strong, w = 1: the expert alone)', async () => {
    const alone = await attune(['eval', '--model', tuned, '--out', join(root, 'e-alone'), ...common]);
    assert.equal(alone.status, 0, alone.stderr);
    const fused = await attune([
      'eval',
      '--strong',
      strong,
      '--weak-base',
      strong,
      '--weak-tuned',
      tuned,
      '--fusion-weights',
      '1',
      '--out',
      join(root, 'e-fused'),
      ...common,
    ]);
    assert.equal(fused.status, 0, fused.stderr);
    const a = predictions(join(root, 'e-alone'));
    const f = predictions(join(root, 'e-fused'));
    a.forEach((p, i) => {
      assert.equal(f[i]!.answer, p.answer);
      assert.ok(Math.abs(f[i]!.confidence - p.confidence) < 1e-4);
      assert.ok(Math.abs(f[i]!.mean_entropy - p.mean_entropy) < 1e-3);
    });
    assert.deepEqual((fused.json!.fusion as { mean_weights: number[] }).mean_weights, [1]);
  });

  it('--mc-dropout does not apply to a fusion', async () => {
    const r = await attune([
      'eval',
      '--strong',
      strong,
      '--weak-base',
      base,
      '--weak-tuned',
      tuned,
      '--mc-dropout',
      '3',
      ...common,
    ]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--mc-dropout .* does not apply to a fusion/);
  });
});

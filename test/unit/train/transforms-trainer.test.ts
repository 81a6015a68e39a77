import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, tinyConfig, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-transforms-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

const losses = (dir: string) =>
  readFileSync(join(root, dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).loss as number);

describe('trainer with data.transforms', () => {
  const cfg = (dir: string, transforms: unknown[]) =>
    tinyConfig(root, {
      data: { transforms },
      train: { steps: 6, batch_size: 2, lr: 1e-2, save_every: 2, seed: 3 },
      output_dir: join(root, dir),
    });

  it('masked_thought changes training, and a resumed run reproduces the uninterrupted one exactly', () => {
    const mt = [{ name: 'masked_thought', ratio: 0.5 }];
    train(cfg('plain', []));
    const full = train(cfg('full', mt));
    assert.notDeepEqual(losses('full'), losses('plain'));
    const killed = cfg('killed', mt);
    assert.throws(() => train(killed, { haltAfterStep: 3 }), TrainingHalted);
    const resumed = train(killed, { resume: true });
    assert.deepEqual(losses('killed'), losses('full'));
    for (const [name, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(name)!.data, t.data, name);
  });

  it('token_weight with weight 2 doubles the ce loss; a loss that ignores weights is refused', () => {
    train(cfg('w1', []));
    train(cfg('w2', [{ name: 'token_weight', weight: 2, leading_tokens: 0 }]));
    assert.ok(Math.abs(losses('w2')[0]! - 2 * losses('w1')[0]!) < 1e-5);
    const bad = tinyConfig(root, {
      data: { transforms: [{ name: 'token_weight' }] },
      loss: 'ua-clm',
      output_dir: join(root, 'bad'),
    });
    assert.throws(
      () => train(bad),
      /'token_weight' sets per-token loss weights, but loss 'ua-clm' does not apply them/,
    );
  });

  it("records' weight fields reach the loss: weight 2 doubles ce, combined with a transform they multiply", () => {
    const weighted = join(root, 'weighted.jsonl');
    writeJsonl(
      weighted,
      FACTS.map((f) => ({ ...f, weight: 2 })),
    );
    train(cfg('d1', []));
    const dataCfg = (dir: string, transforms: unknown[]) =>
      tinyConfig(root, {
        data: { train: weighted, transforms },
        train: { steps: 6, batch_size: 2, lr: 1e-2, save_every: 2, seed: 3 },
        output_dir: join(root, dir),
      });
    train(dataCfg('d2', []));
    train(dataCfg('d4', [{ name: 'token_weight', weight: 2, leading_tokens: 0 }]));
    assert.ok(Math.abs(losses('d2')[0]! - 2 * losses('d1')[0]!) < 1e-5);
    assert.ok(Math.abs(losses('d4')[0]! - 4 * losses('d1')[0]!) < 1e-5);
    const bad = tinyConfig(root, {
      data: { train: weighted },
      loss: 'ua-clm',
      output_dir: join(root, 'bad2'),
    });
    assert.throws(
      () => train(bad),
      /weighted\.jsonl:1 sets loss weights \(weight \/ token_weights \/ a message weight\), but loss 'ua-clm' does not apply them/,
    );
  });
});

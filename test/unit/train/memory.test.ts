import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backward, fromArray, pool, Rng, scope } from '../../../src/tensor/index.ts';
import { AdamW, clipGradNorm } from '../../../src/train/optim/index.ts';
import { lrAt } from '../../../src/train/schedule.ts';
import { TinyTransformer } from '../nn/tiny-transformer.ts';

describe('training memory', () => {
  it('200 steps of a 2-layer transformer run in flat memory (pool exact, RSS < +10%)', () => {
    const B = 2;
    const T = 8;
    const vocab = 13;
    const model = new TinyTransformer({
      vocab,
      dim: 16,
      heads: 2,
      layers: 2,
      hidden: 32,
      maxPos: T,
      seed: 1,
      dropout: 0.1,
    });
    const params = model.trainableParameters();
    const opt = new AdamW(params, { lr: 1e-3 });
    const rng = new Rng(2);
    const schedule = { schedule: 'cosine' as const, warmupSteps: 10, totalSteps: 200, baseLr: 1e-3 };
    const live: number[] = [];
    const rss: number[] = [];
    const losses: number[] = [];
    for (let step = 1; step <= 200; step++) {
      const tokens = Array.from({ length: B * (T + 1) }, () => rng.int(vocab));
      const loss = scope(() => {
        const rows = Array.from({ length: B }, (_, b) => tokens.slice(b * (T + 1), (b + 1) * (T + 1)));
        const ids = fromArray(
          rows.map((r) => r.slice(0, T)),
          undefined,
          { dtype: 'i32' },
        );
        const labels = fromArray(
          rows.map((r) => r.slice(1)),
          undefined,
          { dtype: 'i32' },
        );
        const l = model.loss(ids, labels);
        backward(l);
        clipGradNorm(params, 1);
        opt.setLr(lrAt(step - 1, schedule));
        opt.step();
        opt.zeroGrad();
        return l.item();
      });
      losses.push(loss);
      live[step] = pool.snapshot().liveBytes;
      rss[step] = process.memoryUsage().rss;
    }
    assert.ok(losses.every(Number.isFinite));
    assert.equal(live[200], live[20], `pool liveBytes at step 20 (${live[20]}) and step 200 (${live[200]})`);
    const growth = (rss[200]! - rss[50]!) / rss[50]!;
    assert.ok(
      growth < 0.1,
      `RSS grew ${(growth * 100).toFixed(1)}% from step 50 (${rss[50]}) to 200 (${rss[200]})`,
    );
    assert.ok(model.model.layers.at(0).dropout.offset > 0, 'dropout was active');
  });
});

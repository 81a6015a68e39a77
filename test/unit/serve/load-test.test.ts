/** The bench serve load test: bounded in count, rows per concurrency level, nearest-rank quantiles. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nearestRank, runLoadTest } from '../../../src/serve/index.ts';
import { shippedWorldBaseDir } from '../../../src/world/base.ts';

describe('serve load test', () => {
  it('nearest-rank quantiles', () => {
    const v = [5, 1, 4, 2, 3];
    assert.equal(nearestRank(v, 0.5), 3);
    assert.equal(nearestRank(v, 0.99), 5);
    assert.equal(nearestRank(v, 0), 1);
    assert.ok(Number.isNaN(nearestRank([], 0.5)));
  });

  it('sends at most --requests per level and reports one row per level', async () => {
    const rows = await runLoadTest({
      modelDir: shippedWorldBaseDir('small'),
      requests: 5,
      concurrency: [1, 3],
      seconds: 60,
      maxTokens: 4,
      maxBatch: 8,
    });
    assert.deepEqual(
      rows.map((r) => [r.concurrency, r.requests, r.errors]),
      [
        [1, 5, 0],
        [3, 5, 0],
      ],
    );
    assert.equal(rows[0]!.max_batch_seen, 1);
    assert.ok(rows[1]!.max_batch_seen <= 3);
    for (const r of rows) assert.ok(r.p50_ms <= r.p99_ms && r.requests_per_s > 0 && r.tokens_per_s > 0);
  });
});

import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { checkRedisClient, redisConnection, trialJobId } from '../../../src/sweep/bullmq-executor.ts';
import { loadSweepConfig } from '../../../src/sweep/config.ts';
import { runSweep } from '../../../src/sweep/sweep.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-sweep-bullmq-unit-');
after(() => rmSync(root, { recursive: true, force: true }));

function hasRedisClient(): boolean {
  try {
    checkRedisClient();
    return true;
  } catch {
    return false;
  }
}

describe('bullmq executor parts', () => {
  it('reads redis:// URLs into connection options and names a bad one', () => {
    assert.deepEqual(redisConnection('redis://127.0.0.1:6390/2'), {
      host: '127.0.0.1',
      port: 6390,
      db: 2,
      maxRetriesPerRequest: null,
    });
    assert.equal(redisConnection('redis://queue-host').port, 6379);
    assert.equal(redisConnection('redis://:s%40cret@h:1').password, 's@cret');
    assert.throws(
      () => redisConnection('http://h:6379'),
      /executor\.url: expected redis:\/\/host:port, found 'http:\/\/h:6379'/,
    );
    assert.throws(() => redisConnection('h:6379', '--queue'), /--queue: expected redis:\/\/host:port/);
    assert.throws(() => redisConnection('redis://h:1/x'), /not a database number/);
  });

  it('a job id is the trial id, prefixed by its folder, without the colon BullMQ forbids', () => {
    const id = trialJobId('/srv/attune/sweep1', 't-0123456789');
    assert.match(id, /^[0-9a-f]{8}-t-0123456789$/);
    assert.equal(trialJobId('/srv/attune/sweep1', 't-0123456789'), id);
    assert.notEqual(trialJobId('/srv/attune/sweep2', 't-0123456789'), id);
  });

  it('refuses a bad Redis URL, or a missing Redis client, before writing anything', async () => {
    writeTinyModel(join(root, 'model'));
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    writeFileSync(
      join(root, 'train.yaml'),
      'model: model\ndata: { train: train.jsonl, eval: train.jsonl }\ntrain: { steps: 2 }\n',
    );
    const sweepWith = (url: string) => {
      const path = join(root, 'sweep.yaml');
      writeFileSync(
        path,
        `base: train.yaml\nsearch: { grid: { train.lr: [0.01] } }\nobjective: { metric: eval_loss }\nexecutor: { name: bullmq, url: "${url}", artifacts: shared }\nout: out\n`,
      );
      return loadSweepConfig(path);
    };
    const missing = /executor bullmq: BullMQ needs the 'ioredis' package .*: npm install ioredis/;
    await assert.rejects(runSweep(sweepWith('tcp://h:1')), hasRedisClient() ? /executor\.url/ : missing);
    assert.ok(!existsSync(join(root, 'out')) && !existsSync(join(root, 'shared')));
  });
});

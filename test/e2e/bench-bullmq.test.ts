// `attune bench methods` units on the bullmq executor with real parts: Redis (Debian's
// redis-server), two `attune worker` processes pulling the units of a tiny bench (lora + ce over two
// seeds, the ComPEFT row derived from it, the masked_thought experiment). Every unit is done by
// exactly one worker, once, and the aggregated JSON equals the in-process bench's (timings aside).
import '../unit/sweep/one-thread.ts';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { type MethodsBenchOptions, runMethodsBench } from '../../src/bench/methods.ts';
import { benchUnits, runMethodsBenchOn } from '../../src/bench/units.ts';
import { benchExecutor } from '../../src/cli/bench-executor.ts';
import { redisConnection, TRIAL_QUEUE, trialJobId } from '../../src/sweep/bullmq-executor.ts';
import { worldFinetuneFile } from '../../src/world/demo.ts';
import { generateWorld, writeWorld } from '../../src/world/index.ts';
import { redisSkipReason, startTestRedis } from '../helpers/redis.ts';
import { tempDir, writeTinyModel } from '../helpers/tiny-run.ts';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const root = tempDir('attune-bench-bullmq-');
after(() => rmSync(root, { recursive: true, force: true }));

const skip = redisSkipReason();

function startWorker(url: string): { child: ChildProcess; log: () => string } {
  const child = spawn(process.execPath, [bin, 'worker', '--queue', url], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: process.env,
  });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString('utf8');
  });
  return { child, log: () => log };
}

/** The result without what depends on where and when a run ran (seconds per step, peak RSS). */
function withoutTimings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimings);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'step_s' && k !== 'peak_rss_mb')
      .map(([k, v]) => [k, withoutTimings(v)]),
  );
}

describe('attune bench methods on bullmq', { skip: skip ?? false }, () => {
  it('two workers run every unit exactly once; the JSON is the in-process one', async () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 3, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });
    const options = (out: string): MethodsBenchOptions => ({
      base,
      worldDir,
      trainFile: worldFinetuneFile(worldDir),
      out: join(root, out),
      specs: [{ method: 'lora', loss: 'ce' }],
      seeds: [0, 1],
      budget: {
        steps: 2,
        batchSize: 2,
        lr: 1e-2,
        fullLr: 1e-3,
        warmupSteps: 0,
        maxLength: 64,
        evalPerSplit: 2,
      },
      experiments: ['masked_thought'],
      threads: 1,
    });
    const redis = await startTestRedis();
    const workers = [startWorker(redis.url), startWorker(redis.url)];
    try {
      // a queue left over from another run of this test would hold finished jobs of other folders
      const queue = new Queue(TRIAL_QUEUE, { connection: redisConnection(redis.url) });
      await queue.obliterate({ force: true });
      await queue.close();
      // folders of one path length: the ComPEFT row's adapter_bytes counts its file's header, which
      // names the source adapter's path
      const inProcess = runMethodsBench(options('inline'));
      // both workers pull before the first unit is queued, so each gets some
      for (let i = 0; i < 600 && !workers.every((w) => w.log().includes('worker: pulling')); i++)
        await new Promise((r) => setTimeout(r, 100));
      const o = options('shared');
      const queued: string[] = [];
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        runMethodsBenchOn(
          o,
          benchExecutor(
            o,
            { name: 'bullmq', url: redis.url, threadsPerUnit: 1 },
            { onStart: (u) => queued.push(u.id) },
          ),
        ),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`the bench did not finish:\n${workers.map((w) => w.log()).join('\n---\n')}`)),
            240_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      const units = benchUnits(o);
      assert.deepEqual(queued.sort(), units.map((u) => u.id).sort());
      const logs = workers.map((w) => w.log()).join('\n');
      for (const u of units) {
        const jobId = trialJobId(o.out, u.id);
        const done = logs.match(new RegExp(`worker: ${jobId} done`, 'g')) ?? [];
        assert.equal(done.length, 1, `${u.id} reported done ${done.length} times:\n${logs}`);
        assert.match(logs, new RegExp(`worker: ${jobId} started ${u.label.replace(/[+()]/g, '\\$&')}`));
      }
      assert.ok(
        workers.every((w) => /worker: \S+ started/.test(w.log())),
        `both workers ran units:\n${logs}`,
      );
      assert.deepEqual(withoutTimings(result), withoutTimings(inProcess));
    } finally {
      for (const w of workers)
        if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGINT');
      await Promise.all(
        workers.map((w) =>
          w.child.exitCode !== null || w.child.signalCode !== null
            ? null
            : new Promise((r) => w.child.once('exit', r)),
        ),
      );
      await redis.stop();
    }
  });
});

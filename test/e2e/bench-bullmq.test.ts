// `attune bench methods` units on the bullmq executor with real parts: Redis (Debian's
// redis-server), two `attune worker` processes pulling the units of a tiny bench (lora + ce over two
// seeds, the ComPEFT row derived from it, the masked_thought experiment). Every unit is done by
// exactly one worker, once, and the aggregated JSON equals the in-process bench's (timings aside).
// One worker is killed (SIGKILL) as it starts a unit: its unit process goes with it (no orphan races
// the retry) and the other worker runs that unit from the start once BullMQ's (shortened) lock expires.
import '../unit/sweep/one-thread.ts';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { type MethodsBenchOptions, runMethodsBench } from '../../src/bench/methods.ts';
import { benchUnitDone, benchUnits, runMethodsBenchOn } from '../../src/bench/units.ts';
import { benchExecutor } from '../../src/cli/bench-executor.ts';
import { redisConnection, TRIAL_QUEUE, trialJobId } from '../../src/sweep/bullmq-executor.ts';
import { generateWorld, writeWorld } from '../../src/world/index.ts';
import { redisSkipReason, startTestRedis } from '../helpers/redis.ts';
import { tinyBenchOptions } from '../helpers/tiny-bench.ts';
import { tempDir, writeTinyModel } from '../helpers/tiny-run.ts';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const root = tempDir('attune-bench-bullmq-');
after(() => rmSync(root, { recursive: true, force: true }));

const skip = redisSkipReason();

function startWorker(url: string): { child: ChildProcess; log: () => string } {
  const child = spawn(
    process.execPath,
    [bin, 'worker', '--queue', url, '--lock-duration', '2000', '--stalled-interval', '1000'],
    { stdio: ['ignore', 'ignore', 'pipe'], env: process.env },
  );
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString('utf8');
  });
  return { child, log: () => log };
}

/** The processes whose command line names `text` (Linux /proc). */
function processesNaming(text: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(text);
      } catch {
        return false;
      }
    });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  it('two workers run every unit exactly once, one killed mid-unit; the JSON is the in-process one', async () => {
    const worldDir = join(root, 'world');
    writeWorld(
      generateWorld({ seed: 3, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
      worldDir,
    );
    const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });
    const options = (out: string): MethodsBenchOptions =>
      tinyBenchOptions(base, worldDir, root, out, { threads: 1 });
    const redis = await startTestRedis();
    const workers = [startWorker(redis.url), startWorker(redis.url)];
    // a failed assertion stops the bench's wait, so nothing keeps this process alive
    const stop = new AbortController();
    let running: Promise<unknown> | undefined;
    try {
      // a queue left over from another run of this test would hold finished jobs of other folders
      const queue = new Queue(TRIAL_QUEUE, { connection: redisConnection(redis.url) });
      await queue.obliterate({ force: true });
      await queue.close();
      // folders of other path lengths: nothing in the JSON depends on where it was written
      const inProcess = runMethodsBench(options('in-process'));
      // both workers pull before the first unit is queued
      for (let i = 0; i < 600 && !workers.every((w) => w.log().includes('worker: pulling')); i++)
        await sleep(100);
      const o = options('shared');
      const units = benchUnits(o);
      const queued: string[] = [];
      running = runMethodsBenchOn(
        o,
        benchExecutor(
          o,
          { name: 'bullmq', url: redis.url, threadsPerUnit: 1 },
          { onStart: (u) => queued.push(u.id), signal: stop.signal },
        ),
      );
      // kill worker 0 as soon as it starts a unit
      let killed: string | undefined;
      for (let i = 0; i < 6000 && killed === undefined; i++) {
        const jobId = /worker: (\S+) started/.exec(workers[0]!.log())?.[1];
        killed = units.find((u) => trialJobId(o.out, u.id) === jobId)?.id;
        if (!killed) await sleep(10);
      }
      assert.ok(killed, `worker 0 never started a unit:\n${workers[0]!.log()}`);
      // the unit's process (its payload names the unit) runs; then its worker dies
      let unitProcesses: string[] = [];
      for (let i = 0; i < 500 && unitProcesses.length === 0; i++) {
        unitProcesses = processesNaming(killed);
        if (unitProcesses.length === 0) await sleep(10);
      }
      assert.ok(unitProcesses.length > 0, 'the unit runs in its own process');
      workers[0]!.child.kill('SIGKILL');
      assert.equal(benchUnitDone(o, killed), false, 'killed before its unit finished');
      const alive = () => unitProcesses.filter((p) => existsSync(`/proc/${p}`));
      for (let i = 0; i < 100 && alive().length > 0; i++) await sleep(50);
      assert.deepEqual(alive(), [], "the killed worker's unit process is gone with it");
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`the bench did not finish:\n${workers.map((w) => w.log()).join('\n---\n')}`)),
            240_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));
      assert.deepEqual(queued.sort(), units.map((u) => u.id).sort());
      const logs = workers.map((w) => w.log()).join('\n');
      for (const u of units) {
        const jobId = trialJobId(o.out, u.id);
        const done = logs.match(new RegExp(`worker: ${jobId} done`, 'g')) ?? [];
        assert.equal(done.length, 1, `${u.id} reported done ${done.length} times:\n${logs}`);
        assert.match(logs, new RegExp(`worker: ${jobId} started ${u.label.replace(/[+()]/g, '\\$&')}`));
      }
      assert.match(
        workers[1]!.log(),
        new RegExp(`worker: ${trialJobId(o.out, killed)} done`),
        'the other worker ran the killed unit',
      );
      assert.deepEqual(withoutTimings(result), withoutTimings(inProcess));
    } finally {
      stop.abort();
      await running?.catch(() => {});
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

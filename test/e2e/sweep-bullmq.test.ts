// `attune sweep` on the bullmq executor with real parts: Redis (Debian's redis-server), two
// `attune worker` processes, a 6-trial sweep; one worker is killed (SIGKILL) mid-trial, after its
// trial's first checkpoint. All 6 trials end done exactly once, the killed one resumed by the other
// worker from its checkpoint, and every result equals the local executor's. BullMQ's lock and
// stall intervals are shortened (--lock-duration, --stalled-interval) so the retry comes in seconds.
// With eval_world, the world metrics too, retention included (the base answered by the sweep process).
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { loadModel } from '../../src/models/index.ts';
import { redisConnection, TRIAL_QUEUE } from '../../src/sweep/bullmq-executor.ts';
import { loadSweepConfig } from '../../src/sweep/config.ts';
import { runSweep } from '../../src/sweep/sweep.ts';
import { trialPaths } from '../../src/sweep/trial.ts';
import { predict } from '../../src/uq/index.ts';
import { redisSkipReason, startTestRedis } from '../helpers/redis.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../helpers/tiny-run.ts';

const bin = fileURLToPath(new URL('../../bin/attune.js', import.meta.url));
const root = tempDir('attune-sweep-bullmq-');
after(() => rmSync(root, { recursive: true, force: true }));

const skip = redisSkipReason();

/** A worker process and everything it printed so far. */
interface WorkerProcess {
  child: ChildProcess;
  log: () => string;
}

function startWorker(url: string, extra: string[] = []): WorkerProcess {
  const child = spawn(
    process.execPath,
    [bin, 'worker', '--queue', url, '--lock-duration', '2000', '--stalled-interval', '1000', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'], env: process.env },
  );
  let log = '';
  child.stderr!.on('data', (c: Buffer) => {
    log += c.toString('utf8');
  });
  return { child, log: () => log };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Stop the workers that still run (SIGINT) and wait until each has exited. */
async function stopWorkers(workers: readonly WorkerProcess[]): Promise<void> {
  for (const w of workers)
    if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGINT');
  await Promise.all(
    workers.map((w) =>
      w.child.exitCode !== null || w.child.signalCode !== null
        ? null
        : new Promise((r) => w.child.once('exit', r)),
    ),
  );
}

describe('attune sweep on bullmq', { skip: skip ?? false }, () => {
  it('two workers finish a 6-trial sweep; a worker killed mid-trial loses nothing and counts nothing twice', async () => {
    writeTinyModel(join(root, 'model'), { hidden: 64 });
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
    writeFileSync(
      join(root, 'train.yaml'),
      `model: model
data: { train: train.jsonl, eval: eval.jsonl, max_length: 32 }
method: { name: lora, r: 4, lora_alpha: 8, target_modules: all-linear }
train: { steps: 120, batch_size: 2, lr: 1.0e-3, save_every: 20, keep_last: 1 }
output_dir: ignored
`,
    );
    // world questions; the "known" ones are facts the base knows (its own greedy answers), so
    // every trial has a retention
    const base = loadModel(join(root, 'model'));
    const prompts = ['Eve lives in ', 'Fay lives in ', 'Gus lives in ', 'Hal lives in '];
    const known = predict(
      base.model,
      base.tokenizer!,
      prompts.map((prompt) => ({ prompt, answer: '-' })),
      { stop: ['\n'], maxNewTokens: 24, eosTokenIds: base.eosTokenIds },
    ).flatMap((p, i) => (p.answer.trim() === '' ? [] : [{ prompt: prompts[i]!, answer: p.answer.trim() }]));
    assert.ok(known.length > 0, 'the tiny base answers some prompt');
    writeJsonl(join(root, 'world.jsonl'), [
      { prompt: 'Ada lives in ', answer: 'Oslo.', split: 'taught', paraphrase: 'Where does Ada live? ' },
      ...known.map((k) => ({ ...k, split: 'known' })),
      { prompt: 'What is 7 plus 5? ', answer: '12', split: 'ood' },
    ]);
    const redis = await startTestRedis();
    const workers: WorkerProcess[] = [];
    try {
      // a queue left over from another run of this test would hold finished jobs of other folders
      const queue = new Queue(TRIAL_QUEUE, { connection: redisConnection(redis.url) });
      await queue.obliterate({ force: true });
      await queue.close();
      const grid = `base: train.yaml
search: { grid: { train.lr: [1.0e-3, 3.0e-3, 1.0e-2], method.r: [2, 4] } }
seeds: [1]
objective: { metric: eval_loss, goal: min }
eval_world: world.jsonl
threads_per_trial: 1
`;
      writeFileSync(join(root, 'local.yaml'), `${grid}executor: { name: local, workers: 2 }\nout: local\n`);
      writeFileSync(
        join(root, 'queue.yaml'),
        `${grid}executor: { name: bullmq, url: "${redis.url}", artifacts: shared }\nout: queue\n`,
      );
      const local = await runSweep(loadSweepConfig(join(root, 'local.yaml')));
      assert.ok(local.trials.every((t) => t.status === 'done'));

      workers.push(startWorker(redis.url), startWorker(redis.url));
      const sweep = loadSweepConfig(join(root, 'queue.yaml'));
      const running = runSweep(sweep);
      // kill worker 0 once the trial it runs has a checkpoint and no result yet
      let killed: string | null = null;
      for (let i = 0; i < 6000 && killed === null; i++) {
        const started = [...workers[0]!.log().matchAll(/worker: \S+-(t-[0-9a-f]{10}) started/g)].map(
          (m) => m[1]!,
        );
        const current = started.at(-1);
        if (current) {
          const p = trialPaths(join(root, 'shared'), current);
          if (existsSync(join(p.run, 'checkpoints', 'latest')) && !existsSync(p.result)) {
            workers[0]!.child.kill('SIGKILL');
            killed = current;
          }
        }
        await sleep(10);
      }
      assert.ok(killed, `worker 0 never had a checkpointed trial to kill:\n${workers[0]!.log()}`);
      let timer: NodeJS.Timeout | undefined;
      const result = await Promise.race([
        running,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(new Error(`the sweep did not finish:\n${workers.map((w) => w.log()).join('\n---\n')}`)),
            300_000,
          );
        }),
      ]).finally(() => clearTimeout(timer));

      // all 6 done, each reported done by exactly one worker, never twice
      assert.deepEqual(
        result.trials.map((t) => t.status),
        Array(6).fill('done'),
      );
      const logs = workers.map((w) => w.log()).join('\n');
      for (const t of result.trials) {
        const done = logs.match(new RegExp(`worker: \\S+-${t.id} done`, 'g')) ?? [];
        assert.equal(done.length, 1, `${t.id} reported done ${done.length} times:\n${logs}`);
      }
      assert.doesNotMatch(workers[0]!.log(), new RegExp(`${killed} done`));
      // the killed trial was picked up by the other worker and resumed from its checkpoint
      assert.match(workers[1]!.log(), new RegExp(`${killed} resumed`));
      const resumed = JSON.parse(readFileSync(trialPaths(join(root, 'shared'), killed).result, 'utf8'));
      assert.ok(resumed.resumed_from_step >= 20, `resumed from step ${resumed.resumed_from_step}`);
      // the base was answered by the sweep process, into its out folder, not by a worker
      assert.equal(readdirSync(join(root, 'queue')).filter((f) => f.startsWith('base-known-')).length, 1);
      assert.ok(!readdirSync(join(root, 'shared')).some((f) => f.startsWith('base-known-')));
      for (const t of result.trials) {
        assert.equal(typeof t.metrics!.retention, 'number', t.id);
        assert.equal(typeof t.metrics!.accuracy_paraphrase, 'number', t.id);
      }
      // where a trial ran changes nothing: the local executor's numbers, bit for bit
      assert.deepEqual(
        result.trials.map((t) => [t.id, t.metrics]),
        local.trials.map((t) => [t.id, t.metrics]),
      );
    } finally {
      await stopWorkers(workers);
      await redis.stop();
    }
  });

  it("a plug-in method's trials run on a worker started with the sweep's imports; one without fails them, naming it", async () => {
    const plugin = fileURLToPath(new URL('../plugins/norms-tuner.ts', import.meta.url));
    writeTinyModel(join(root, 'model'), { hidden: 64 });
    writeJsonl(join(root, 'train.jsonl'), FACTS);
    writeJsonl(join(root, 'eval.jsonl'), FACTS.slice(0, 2));
    writeFileSync(
      join(root, 'norms.yaml'),
      `model: model
data: { train: train.jsonl, eval: eval.jsonl, max_length: 32 }
method: { name: norms-only }
train: { steps: 2, batch_size: 2, lr: 1.0e-2 }
output_dir: ignored
`,
    );
    const redis = await startTestRedis();
    const workers: WorkerProcess[] = [];
    try {
      const queue = new Queue(TRIAL_QUEUE, { connection: redisConnection(redis.url) });
      await queue.obliterate({ force: true });
      await queue.close();
      const grid = `base: norms.yaml
search: { grid: { method.include_final: [false, true] } }
objective: { metric: eval_loss }
imports: [${JSON.stringify(plugin)}]
`;
      writeFileSync(
        join(root, 'norms-local.yaml'),
        `${grid}executor: { name: local, workers: 2 }\nout: norms-local\n`,
      );
      writeFileSync(
        join(root, 'norms-queue.yaml'),
        `${grid}executor: { name: bullmq, url: "${redis.url}", artifacts: norms-shared }\nout: norms-queue\n`,
      );
      const local = await runSweep(loadSweepConfig(join(root, 'norms-local.yaml')));
      assert.ok(local.trials.every((t) => t.status === 'done'));
      const sweep = loadSweepConfig(join(root, 'norms-queue.yaml'));

      workers.push(startWorker(redis.url));
      for (let i = 0; i < 600 && !workers[0]!.log().includes('worker: pulling'); i++) await sleep(100);
      const refused = await runSweep(sweep);
      for (const t of refused.trials) {
        assert.equal(t.status, 'failed');
        assert.match(
          t.error!,
          new RegExp(
            `needs the plug-in module\\(s\\) ${plugin}, which this worker was not started with: attune worker --queue \\S+ --import ${plugin}`,
          ),
        );
      }
      await stopWorkers(workers);

      workers.push(startWorker(redis.url, ['--import', plugin]));
      const result = await runSweep(sweep);
      assert.deepEqual(
        result.trials.map((t) => [t.id, t.status, t.metrics]),
        local.trials.map((t) => [t.id, t.status, t.metrics]),
        "the local executor's numbers",
      );
    } finally {
      await stopWorkers(workers);
      await redis.stop();
    }
  });
});

// bench methods as units (src/bench/units.ts) on the local executor: the units and their ids, and
// a bench run as 2 worker processes giving the in-process JSON (timings aside).
import '../sweep/one-thread.ts';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type MethodsBenchOptions, runMethodsBench } from '../../../src/bench/methods.ts';
import { benchUnitDone, benchUnits, runMethodsBenchOn } from '../../../src/bench/units.ts';
import { benchExecutor } from '../../../src/cli/bench-executor.ts';
import { loadPlugins, resolvePlugins } from '../../../src/config/plugins.ts';
import { generateWorld, writeWorld } from '../../../src/world/index.ts';
import { tinyBenchOptions } from '../../helpers/tiny-bench.ts';
import { tempDir, writeTinyModel } from '../../helpers/tiny-run.ts';

const root = tempDir('attune-bench-units-');
after(() => rmSync(root, { recursive: true, force: true }));

const worldDir = join(root, 'world');
writeWorld(
  generateWorld({ seed: 3, knownPeople: 4, taughtPeople: 4, unknownPeople: 4, biographiesPerPerson: 1 }),
  worldDir,
);
const base = writeTinyModel(join(root, 'base'), { hidden: 16, layers: 1 });

/** A tiny bench: 2 steps per run, 2 questions per split. */
function options(out: string, partial: Partial<MethodsBenchOptions> = {}): MethodsBenchOptions {
  return tinyBenchOptions(base, worldDir, root, out, partial);
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

describe('bench methods: units', () => {
  it('are the base, each run, the runs experiments reach, each derived row and each experiment, with stable ids', () => {
    const o = options('out-plan', { specs: [{ method: 'full', loss: 'ce' }] });
    const units = benchUnits(o);
    const key = units[0]!.id.slice('base-'.length);
    assert.match(key, /^[0-9a-f]{12}$/);
    assert.deepEqual(
      units.map((u) => [u.id, u.kind, u.wave]),
      [
        [`base-${key}`, 'base', 0],
        [`run-full-ce-seed0-${key}`, 'run', 0],
        [`run-full-ce-seed1-${key}`, 'run', 0],
        // masked_thought reaches lora + ce (ctx.methodRun), which no method row trains here
        [`train-lora-ce-seed0-${key}`, 'train', 0],
        [`train-lora-ce-seed1-${key}`, 'train', 0],
        [`derived-soup_full_-ce-${key}`, 'derived', 1],
        [`experiment-masked_thought-${key}`, 'experiment', 1],
      ],
    );
    assert.ok(
      units.every((u) => !u.id.includes(':')),
      'BullMQ job ids may not hold a colon',
    );
    assert.deepEqual(benchUnits(o), units, 'the same settings give the same units');
    const other = benchUnits({ ...o, budget: { ...o.budget, steps: 3 } });
    assert.notEqual(other[0]!.id, units[0]!.id, 'another budget: other folders, other ids');
    // a method row the experiment reaches is not trained twice
    const withLora = benchUnits({
      ...o,
      specs: [
        { method: 'full', loss: 'ce' },
        { method: 'lora', loss: 'ce' },
      ],
    });
    assert.equal(withLora.filter((u) => u.kind === 'train').length, 0);
    assert.equal(benchUnitDone(o, units[1]!.id), false);
    assert.throws(() => benchUnitDone(o, 'run-nope'), /bench unit 'run-nope': expected a unit of this bench/);
    assert.ok(!existsSync(o.out), 'listing the units writes nothing');
  });

  it('on the local executor with 2 workers give the in-process JSON, timings aside; a rerun runs nothing', async () => {
    // folders of other path lengths: nothing in the JSON depends on where it was written
    const inProcess = runMethodsBench(options('inline'));
    const o = options('out-pooled');
    const started: string[] = [];
    const notes: string[] = [];
    const executor = benchExecutor(
      o,
      { name: 'local', workers: 2, threadsPerUnit: 1 },
      { onStart: (u) => started.push(u.id) },
    );
    const distributed = await runMethodsBenchOn({ ...o, threads: 1, onNote: (n) => notes.push(n) }, executor);
    assert.deepEqual(
      distributed.results.map((r) => [r.method, r.loss, r.seeds]),
      [
        ['lora', 'ce', 2],
        ['compeft(lora)', 'ce', 2],
        ['lora-sft', 'ce', 2],
        ['lora-sft', 'ce+masked_thought', 2],
      ],
    );
    assert.deepEqual(withoutTimings(distributed), withoutTimings(inProcess));
    assert.deepEqual(
      started.sort(),
      benchUnits(o)
        .map((u) => u.id)
        .sort(),
      'each unit ran once',
    );
    assert.deepEqual(
      notes.filter((n) => n.startsWith('wave')),
      ['wave 0: 3 units, 0 done before, 3 to run', 'wave 1: 2 units, 0 done before, 2 to run'],
    );
    // the aggregation ran no unit itself: every result was there
    assert.ok(notes.some((n) => n.startsWith('reusing the masked_thought rows')));
    const again: string[] = [];
    const rerun = await runMethodsBenchOn(
      { ...o, threads: 1 },
      benchExecutor(
        o,
        { name: 'local', workers: 2, threadsPerUnit: 1 },
        { onStart: (u) => again.push(u.id) },
      ),
    );
    assert.deepEqual(again, [], 'a rerun finds every unit done');
    assert.deepEqual(rerun.results, distributed.results);
  });

  it('a tuner registered only in a plug-in runs in the unit processes that import it (--import)', async () => {
    const plugin = fileURLToPath(new URL('../../plugins/norms-tuner.ts', import.meta.url));
    // as `attune bench methods --import FILE` does: this process imports it, the units are told to
    await loadPlugins(resolvePlugins([plugin], root, '--import'), '--import');
    const o = options('out-plugin', {
      specs: [{ method: 'norms-only', loss: 'ce' }],
      seeds: [0],
      experiments: [],
    });
    const without = benchExecutor(o, { name: 'local', workers: 2, threadsPerUnit: 1 });
    await assert.rejects(
      runMethodsBenchOn({ ...o, threads: 1 }, without),
      /norms-only \+ ce, seed 0 .*failed: .*unknown fine-tuning method 'norms-only'/,
    );
    const withPlugin = benchExecutor(o, { name: 'local', workers: 2, threadsPerUnit: 1, plugins: [plugin] });
    const result = await runMethodsBenchOn({ ...o, threads: 1 }, withPlugin);
    assert.deepEqual(
      result.results.map((r) => [r.method, r.loss, r.seeds]),
      [['norms-only', 'ce', 1]],
    );
    assert.ok(result.results[0]!.trainable_params > 0);
  });

  it('a unit that fails stops the bench before the next wave, naming it', async () => {
    const o = options('out-failing', { experiments: [] });
    await assert.rejects(
      runMethodsBenchOn(o, {
        run: async (units) => units.map((u) => ({ id: u.id, status: 'failed', error: 'disk full' })),
      }),
      /bench methods: 3 of 3 units of wave 0 did not finish: base: known-fact accuracy \(base-[0-9a-f]+\): failed: disk full; .*rerun to continue/,
    );
  });
});

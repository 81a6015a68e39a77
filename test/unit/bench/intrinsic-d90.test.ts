/** The intrinsic_d90 experiment's d90 rule: the smallest d whose mean taught accuracy reaches 90% of full's. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type ExperimentContext, experiments } from '../../../src/bench/experiment.ts';
import { d90 } from '../../../src/bench/experiments/intrinsic-d90.ts';

describe('bench experiment intrinsic_d90', () => {
  it('d90 is the smallest d at or above 90% of full (any row order); null when none or full is 0 / unknown', () => {
    const rows = [
      { d: 10000, taught: 0.5 },
      { d: 100, taught: 0.2 },
      { d: 1000, taught: 0.45 },
    ];
    assert.equal(d90(0.5, rows), 1000, '0.45 = 90% of 0.5 counts');
    assert.equal(d90(0.4, rows), 1000);
    assert.equal(d90(0.2, rows), 100);
    assert.equal(d90(0.6, rows), null, '0.5 < 0.54');
    assert.equal(d90(0, rows), null);
    assert.equal(d90(null, rows), null);
    assert.equal(d90(0.5, [{ d: 100, taught: null }]), null);
    assert.equal(d90(0.5, rows, 0.4), 100, 'another fraction (0.2 >= 0.4 * 0.5)');
  });

  it('run: rows with each seed ratio to its own full run, the note with d90 of the means and per seed', () => {
    // seed 0: full 1.0, d100 0.5, d1000 0.95, d10000 1.0, d30000 1.0; seed 1: full 0.8, 0.1, 0.5, 0.75, 0.8
    const taught: Record<string, number[]> = {
      full: [1, 0.8],
      'intrinsic_dim-d100': [0.5, 0.1],
      'intrinsic_dim-d1000': [0.95, 0.5],
      'intrinsic_dim-d10000': [1, 0.75],
      'intrinsic_dim-d30000': [1, 0.8],
    };
    const run = { modelDir: 'm', adapterDir: 'a', cost: {} };
    const notes: string[] = [];
    const ctx = {
      seeds: [0, 1],
      methodRun: () => run,
      train: () => run,
      evaluate: (row: { method: string }, seed: number) => ({ taught_accuracy: taught[row.method]![seed]! }),
      note: (text: string) => notes.push(text),
    } as unknown as ExperimentContext;
    const e = experiments().find((x) => x.name === 'intrinsic_d90')!;
    const rows = e.run(ctx) as { taught_accuracy: number; extra?: Record<string, number | null> }[][];
    assert.equal(rows.length, 5);
    assert.deepEqual(
      rows[3]!.map((r) => r.extra!.taught_ratio_to_full),
      [1, 0.75 / 0.8],
    );
    assert.deepEqual(
      rows[2]!.map((r) => r.extra!.reaches_d90),
      [1, 0],
    );
    // means: full 0.9, d100 0.3, d1000 0.725, d10000 0.875 >= 0.81
    assert.equal(notes.length, 1);
    assert.match(notes[0]!, /d90 = 10000; per seed \(0, 1\): 1000, 10000$/);
  });

  it('is registered, not run by default, with its reason', () => {
    const e = experiments().find((x) => x.name === 'intrinsic_d90');
    assert.ok(e);
    assert.equal(e.byDefault, false);
    assert.ok(e.heavy && e.heavy.length > 0);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { lrAt, lrFactor, type ScheduleOptions } from '../../../src/train/schedule.ts';

function close(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: expected ${expected}, found ${actual}`);
}

describe('learning-rate schedules (HF transformers semantics)', () => {
  const base = { warmupSteps: 10, totalSteps: 110, baseLr: 2e-4 };

  it('constant with warmup', () => {
    const o: ScheduleOptions = { ...base, schedule: 'constant' };
    close(lrAt(0, o), 0, 'step 0');
    close(lrAt(5, o), 1e-4, 'step 5');
    close(lrAt(10, o), 2e-4, 'step 10');
    close(lrAt(5000, o), 2e-4, 'step 5000');
    close(lrAt(0, { ...o, warmupSteps: 0 }), 2e-4, 'no warmup');
  });

  it('linear with warmup', () => {
    const o: ScheduleOptions = { ...base, schedule: 'linear' };
    close(lrFactor(0, o), 0, 'step 0');
    close(lrFactor(1, o), 0.1, 'step 1');
    close(lrFactor(10, o), 1, 'step 10');
    close(lrFactor(60, o), 0.5, 'step 60');
    close(lrFactor(109, o), 0.01, 'step 109');
    close(lrFactor(110, o), 0, 'step 110');
    close(lrFactor(500, o), 0, 'after the end');
    close(lrFactor(110, { ...o, minLrRatio: 0.1 }), 0.1, 'floor');
    close(lrFactor(60, { ...o, minLrRatio: 0.1 }), 0.55, 'half way with floor');
  });

  it('cosine with warmup', () => {
    const o: ScheduleOptions = { ...base, schedule: 'cosine' };
    close(lrFactor(5, o), 0.5, 'warmup');
    close(lrFactor(10, o), 1, 'peak');
    close(lrFactor(35, o), 0.5 * (1 + Math.cos(Math.PI / 4)), 'quarter');
    close(lrFactor(60, o), 0.5, 'half');
    close(lrFactor(110, o), 0, 'end');
    close(lrFactor(200, o), 0, 'held after the end');
    close(lrFactor(5, { ...o, minLrRatio: 0.1 }), 0.5, 'warmup ignores the floor');
    close(lrFactor(60, { ...o, minLrRatio: 0.1 }), 0.55, 'half with floor');
    close(lrFactor(110, { ...o, minLrRatio: 0.1 }), 0.1, 'floor');
    close(lrAt(60, o), 1e-4, 'lrAt');
    close(lrFactor(0, { ...o, warmupSteps: 0 }), 1, 'no warmup starts at the peak');
  });

  it('rejects incomplete or invalid options', () => {
    assert.throws(() => lrAt(3, { schedule: 'linear', baseLr: 1 }), ConfigError);
    assert.throws(
      () => lrAt(3, { schedule: 'cosine', baseLr: 1, totalSteps: 10, minLrRatio: 2 }),
      /minLrRatio/,
    );
    assert.throws(() => lrAt(-1, { schedule: 'constant', baseLr: 1 }), /step must be a non-negative integer/);
    assert.throws(() => lrAt(1, { schedule: 'step' as 'constant', baseLr: 1 }), /schedule must be/);
  });
});

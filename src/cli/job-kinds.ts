/**
 * Every job kind the executors run, registered once (importing this module): sweep trials and
 * bench units. `attune worker` imports it, so one worker pulls every kind from the queue.
 */
import { BENCH_UNIT_MODULE, type BenchUnitPayload } from '../bench/unit-job.ts';
import { benchUnitDone, benchUnitFiles } from '../bench/units.ts';
import { type JobKind, registerJobKind } from '../sweep/jobs.ts';
import '../sweep/trial-job.ts';

/** The job kind of `attune bench methods` units (bench/units.ts). */
export const benchUnitJobKind: JobKind = {
  name: 'bench-unit',
  module: BENCH_UNIT_MODULE,
  // a unit has no checkpoint: one not done starts over
  state: (p) =>
    benchUnitDone((p as BenchUnitPayload).options, (p as BenchUnitPayload).unit) ? 'done' : 'pending',
  describe: (p) => (p as BenchUnitPayload).label,
  summary: (p) => {
    const { options, unit } = p as BenchUnitPayload;
    return `kept in ${benchUnitFiles(options, unit)[0]}`;
  },
};
registerJobKind(benchUnitJobKind);

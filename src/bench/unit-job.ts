/**
 * The job-process module of a bench unit (units.ts): `runJob({options, unit})` runs the unit in
 * this process. It does not honour a stop signal (its work is synchronous and it writes its results
 * atomically, last): the job process ends at once and a rerun starts the unit over.
 */
import { type BenchJobOptions, runBenchUnit } from './units.ts';

/** What a bench unit's job carries. */
export interface BenchUnitPayload {
  options: BenchJobOptions;
  unit: string;
  /** The unit's label, for a worker's log. */
  label: string;
}

/** This module's URL: the module a bench unit's job process runs (see the sweep's jobs.ts). */
export const BENCH_UNIT_MODULE = import.meta.url;

/** Run the unit of `payload` (see runBenchUnit). */
export async function runJob(payload: unknown): Promise<void> {
  const { options, unit } = payload as BenchUnitPayload;
  runBenchUnit(options, unit);
}

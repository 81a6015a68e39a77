/** Sweeps: many training runs from one file, on an executor (see docs/sweeps.md). */
export { loadSweepConfig, type Objective, type SweepConfig, TRIAL_METRICS, validateSweep } from './config.ts';
export { runLocal, type TrialOutcome } from './local-executor.ts';
export { bestTrial, dominates, frontObjectives, paretoFront } from './pareto.ts';
export { sweepReportHtml } from './report.ts';
export { canonicalJson, expandTrials, gridPoints, randomPoints, type TrialSpec, trialId } from './space.ts';
export { type RunSweepOptions, runSweep, type SweepResult, type SweepTrial } from './sweep.ts';
export {
  loadBaseConfig,
  readTrialResult,
  runTrial,
  type TrialMetrics,
  type TrialResult,
  trialConfig,
  trialPaths,
  trialState,
  writeTrialConfig,
} from './trial.ts';

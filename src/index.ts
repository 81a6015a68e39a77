/**
 * Attune's public API: `import { ... } from 'attune'` (each layer also has its own entry point,
 * `attune/<layer>`, see docs/library.md). Nothing inside src/ imports this file.
 *
 * Every layer's index is re-exported whole. A name that two layers export would be ambiguous, and
 * silently missing, under `export *`; the explicit exports below pick one for each:
 * - IGNORE_INDEX (-100) is the same constant in tensor/ and data/: tensor/'s;
 * - the general JSONL record types (TextRecord, PromptCompletionRecord) are data/'s, the general
 *   eval records (EvalRecord, readEvalRecords) uq/'s; the benchmark world's narrower ones get a
 *   World prefix (WorldTextRecord, readWorldEvalRecords, ...).
 * The main entry points also have short names: `evaluate` (= summarizePredictions) and `merge`
 * (= runMerge). test/unit/index.test.ts checks that every layer export is reachable from here.
 */

export * from './analysis/index.ts';
export { type BackendInfo, backendInfo, type Kernels, kernels, setBackend } from './backend/index.ts';
export * from './config/index.ts';
export type { PromptCompletionRecord, TextRecord } from './data/index.ts';
export * from './data/index.ts';
export * from './errors.ts';
export * from './io/index.ts';
export * from './merge/index.ts';
/** Run a validated merge config (`validateMergeConfig` / `loadMergeConfig`) into `options.out`. */
export { runMerge as merge } from './merge/index.ts';
export * from './models/index.ts';
export * from './nn/index.ts';
export * from './peft/index.ts';
export * from './serve/index.ts';
export * from './tensor/index.ts';
export { IGNORE_INDEX } from './tensor/index.ts';
export * from './train/index.ts';
export * from './uq/index.ts';
/** Summarise graded predictions (from `predict`): accuracy, per score AUROC/AUPR/PRR/AURC, ECE. */
export { type EvalRecord, readEvalRecords, summarizePredictions as evaluate } from './uq/index.ts';
export * from './world/index.ts';
export {
  type EvalRecord as WorldEvalRecord,
  type PromptCompletionRecord as WorldPromptCompletionRecord,
  readEvalRecords as readWorldEvalRecords,
  type TextRecord as WorldTextRecord,
} from './world/index.ts';

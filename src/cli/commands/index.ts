/** Every `attune` command, in the order `attune --help` lists them. */
import type { Command } from '../command.ts';
import { activeCommand } from './active.ts';
import { analyzeIntrudersCommand } from './analyze-intruders.ts';
import { benchGemmCommand } from './bench-gemm.ts';
import { benchGenerateCommand } from './bench-generate.ts';
import { benchKernelsCommand } from './bench-kernels.ts';
import { benchMergeCommand } from './bench-merge.ts';
import { benchMethodsCommand } from './bench-methods.ts';
import { benchServeCommand } from './bench-serve.ts';
import { benchTrainCommand } from './bench-train.ts';
import { calibrateConformalCommand } from './calibrate-conformal.ts';
import { calibrateFitCommand } from './calibrate-fit.ts';
import { cascadeCommand } from './cascade.ts';
import { compressCommand } from './compress.ts';
import { dataCorruptCommand } from './data-corrupt.ts';
import { dataCurateCommand } from './data-curate.ts';
import { dataSelectCommand } from './data-select.ts';
import { decompressCommand } from './decompress.ts';
import { demoCommand } from './demo.ts';
import { distillCommand } from './distill.ts';
import { doctorCommand } from './doctor.ts';
import { evalCommand } from './eval.ts';
import { exploreCommand } from './explore.ts';
import { exportCommand } from './export.ts';
import { generateCommand } from './generate.ts';
import { inspectCommand } from './inspect.ts';
import { mergeCommand } from './merge.ts';
import { portCommand } from './port.ts';
import { roundsCommand } from './rounds.ts';
import { scoreCommand } from './score.ts';
import { serveCommand } from './serve.ts';
import { sweepCommand } from './sweep.ts';
import { trainCommand } from './train.ts';
import { uqFitDensityCommand } from './uq-fit-density.ts';
import { uqFitHeadCommand } from './uq-fit-head.ts';
import { uqMetricsCommand } from './uq-metrics.ts';
import { workerCommand } from './worker.ts';
import { worldCommand } from './world.ts';
import { worldPretrainCommand } from './world-pretrain.ts';
import { worldSelectCommand } from './world-select.ts';

/** The command registry. A new command is one file in this folder plus one line here. */
export const commands: readonly Command[] = [
  demoCommand,
  doctorCommand,
  inspectCommand,
  generateCommand,
  serveCommand,
  scoreCommand,
  evalCommand,
  exploreCommand,
  uqMetricsCommand,
  uqFitDensityCommand,
  uqFitHeadCommand,
  calibrateFitCommand,
  calibrateConformalCommand,
  cascadeCommand,
  trainCommand,
  distillCommand,
  roundsCommand,
  activeCommand,
  sweepCommand,
  workerCommand,
  exportCommand,
  compressCommand,
  decompressCommand,
  portCommand,
  analyzeIntrudersCommand,
  mergeCommand,
  worldCommand,
  worldPretrainCommand,
  worldSelectCommand,
  dataCorruptCommand,
  dataCurateCommand,
  dataSelectCommand,
  benchGemmCommand,
  benchKernelsCommand,
  benchTrainCommand,
  benchGenerateCommand,
  benchMergeCommand,
  benchMethodsCommand,
  benchServeCommand,
] as readonly Command[];

/** Every `attune` command, in the order `attune --help` lists them. */
import type { Command } from '../command.ts';
import { analyzeIntrudersCommand } from './analyze-intruders.ts';
import { benchGemmCommand } from './bench-gemm.ts';
import { benchKernelsCommand } from './bench-kernels.ts';
import { benchMergeCommand } from './bench-merge.ts';
import { benchMethodsCommand } from './bench-methods.ts';
import { benchTrainCommand } from './bench-train.ts';
import { calibrateConformalCommand } from './calibrate-conformal.ts';
import { calibrateFitCommand } from './calibrate-fit.ts';
import { cascadeCommand } from './cascade.ts';
import { compressCommand } from './compress.ts';
import { decompressCommand } from './decompress.ts';
import { demoCommand } from './demo.ts';
import { doctorCommand } from './doctor.ts';
import { evalCommand } from './eval.ts';
import { exploreCommand } from './explore.ts';
import { exportCommand } from './export.ts';
import { generateCommand } from './generate.ts';
import { inspectCommand } from './inspect.ts';
import { mergeCommand } from './merge.ts';
import { portCommand } from './port.ts';
import { scoreCommand } from './score.ts';
import { trainCommand } from './train.ts';
import { uqMetricsCommand } from './uq-metrics.ts';
import { worldCommand } from './world.ts';
import { worldPretrainCommand } from './world-pretrain.ts';

/** The command registry. A new command is one file in this folder plus one line here. */
export const commands: readonly Command[] = [
  demoCommand,
  doctorCommand,
  inspectCommand,
  generateCommand,
  scoreCommand,
  evalCommand,
  exploreCommand,
  uqMetricsCommand,
  calibrateFitCommand,
  calibrateConformalCommand,
  cascadeCommand,
  trainCommand,
  exportCommand,
  compressCommand,
  decompressCommand,
  portCommand,
  analyzeIntrudersCommand,
  mergeCommand,
  worldCommand,
  worldPretrainCommand,
  benchGemmCommand,
  benchKernelsCommand,
  benchTrainCommand,
  benchMergeCommand,
  benchMethodsCommand,
] as readonly Command[];

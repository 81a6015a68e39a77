/** `attune bench gemm`: matrix-multiply throughput per backend. */
import type { BenchEnvelope } from '../../bench/envelope.ts';
import { jsonOption } from '../args.ts';
import {
  BENCH_OUTPUT_NOTE,
  benchOptions,
  benchSettings,
  importBench,
  nativeLoadError,
  printBench,
} from '../bench.ts';
import { defineCommand } from '../command.ts';

/** Signature of src/bench/gemm.ts's runGemmBench. */
export type RunGemmBench = (options: {
  sizes?: number[];
  backends?: ('js' | 'native')[];
  threads?: number;
  seconds?: number;
}) => Promise<BenchEnvelope>;

const options = {
  sizes: {
    type: 'integer',
    list: true,
    min: 1,
    valueName: '<n,n,...>',
    defaultText: "the harness's sizes",
    description: 'Square matrix sizes n (n x n times n x n), comma-separated',
  },
  ...benchOptions,
  json: jsonOption,
} as const;

/** `attune bench gemm [--sizes ...] [--backend ...] [--threads N] [--seconds S] [--json]`. */
export const benchGemmCommand = defineCommand({
  name: 'bench gemm',
  summary: 'Time f32 matrix multiply (GFLOP/s) on the js and native backends',
  description: `Times C = A x B for square f32 matrices of each size on each chosen backend and prints
a table; with --json the last stdout line is the bench envelope
{bench, backend, threads, cpu, results: [...]}. Compare numbers from one machine and one session.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: ['attune bench gemm', 'attune bench gemm --sizes 512,1024 --backend native --threads 2 --json'],
  async run(args, io) {
    const flags = args.values;
    const sizes = args.values.sizes;
    const runGemmBench = await importBench<RunGemmBench>('gemm.ts', 'runGemmBench');
    const settings = benchSettings(flags, nativeLoadError(), io);
    io.note(`bench gemm: timing ${settings.backends.join(' and ')} ...`);
    return printBench(io, args.values.json, () => runGemmBench({ ...settings, ...(sizes ? { sizes } : {}) }));
  },
});

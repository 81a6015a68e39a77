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
  precision?: 'f32' | 'bf16';
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
  precision: {
    type: 'choice',
    choices: ['f32', 'bf16'],
    default: 'f32',
    description:
      'Compute precision: f32 (sgemm) or bf16 (gemmBf16: bf16 inputs, f32 accumulation; each row names the path, ATTUNE_BF16_PATH=amx|avx512bf16|fallback picks one)',
  },
  ...benchOptions,
  json: jsonOption,
} as const;

/** `attune bench gemm [--sizes ...] [--backend ...] [--threads N] [--seconds S] [--json]`. */
export const benchGemmCommand = defineCommand({
  name: 'bench gemm',
  summary: 'Time f32 or bf16 matrix multiply (GFLOP/s) on the js and native backends',
  description: `Times C = A x B for square f32 matrices of each size on each chosen backend (with
--precision bf16, the inputs rounded to bf16 and products accumulated in f32) and prints
a table; with --json the last stdout line is the bench envelope
{bench, backend, threads, cpu, results: [...]}. Compare numbers from one machine and one session.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: [
    'attune bench gemm',
    'attune bench gemm --sizes 512,1024 --backend native --threads 2 --json',
    'attune bench gemm --sizes 1024 --backend native --precision bf16 --json',
  ],
  async run(args, io) {
    const flags = args.values;
    const sizes = args.values.sizes;
    const runGemmBench = await importBench<RunGemmBench>('gemm.ts', 'runGemmBench');
    const settings = benchSettings(flags, nativeLoadError(), io);
    const precision = flags.precision;
    io.note(`bench gemm: timing ${settings.backends.join(' and ')} at ${precision} ...`);
    return printBench(io, args.values.json, () =>
      runGemmBench({ ...settings, precision, ...(sizes ? { sizes } : {}) }),
    );
  },
});

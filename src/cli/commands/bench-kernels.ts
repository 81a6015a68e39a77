/** `attune bench kernels`: throughput of the main kernels per backend. */
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

/** Signature of src/bench/kernels.ts's runKernelsBench. */
export type RunKernelsBench = (options: {
  backends?: ('js' | 'native')[];
  threads?: number;
  seconds?: number;
}) => Promise<BenchEnvelope>;

const options = { ...benchOptions, json: jsonOption } as const;

/** `attune bench kernels [--backend ...] [--threads N] [--seconds S] [--json]`. */
export const benchKernelsCommand = defineCommand({
  name: 'bench kernels',
  summary: 'Time the main kernels (elementwise, softmax, norms, attention, LM head, ...) per backend',
  description: `Times each kernel of the backend interface at training-like shapes on each chosen
backend and prints a table; with --json the last stdout line is the bench envelope
{bench, backend, threads, cpu, results: [...]}.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: ['attune bench kernels', 'attune bench kernels --backend both --json'],
  async run(args, io) {
    const flags = args.values;
    const runKernelsBench = await importBench<RunKernelsBench>('kernels.ts', 'runKernelsBench');
    const settings = benchSettings(flags, nativeLoadError(), io);
    io.note(`bench kernels: timing ${settings.backends.join(' and ')} ...`);
    return printBench(io, args.values.json, () => runKernelsBench(settings));
  },
});

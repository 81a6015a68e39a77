/** `attune bench merge`: time streaming merges and report their memory against the streaming bound. */
import { MERGE_BENCH_METHODS, MERGE_PRESETS, runMergeBench } from '../../bench/merge.ts';
import { jsonOption } from '../args.ts';
import { BENCH_OUTPUT_NOTE, printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';

const options = {
  preset: {
    type: 'choice',
    choices: [...(Object.keys(MERGE_PRESETS) as (keyof typeof MERGE_PRESETS)[]), 'all'],
    description: 'model shape',
    default: 'all',
  },
  methods: {
    type: 'choice',
    list: true,
    choices: MERGE_BENCH_METHODS,
    description: 'methods to time',
    defaultText: 'all of them',
    valueName: '<m,m,...>',
  },
  json: jsonOption,
} as const;

/** `attune bench merge [--preset tiny|medium|all] [--methods ...] [--json]`. */
export const benchMergeCommand = defineCommand({
  name: 'bench merge',
  summary: 'Time streaming merges of random checkpoints; peak memory vs (inputs + 1) x largest tensor',
  description: `Writes random Llama-shaped checkpoints (a base and three "fine-tuned" copies) to a temp dir,
merges them with each method and reports seconds, the peak bytes of tensor data held, the largest
tensor, the bound (inputs + 1) x largest, and the process's peak RSS (a whole-process high-water
mark). --json prints the bench envelope as the last stdout line.

${BENCH_OUTPUT_NOTE}`,
  options,
  examples: ['attune bench merge --json', 'attune bench merge --preset medium --methods ties,dare_ties'],
  async run(args, io) {
    const v = args.values;
    const { preset, methods } = v;
    io.note(`bench merge: ${preset} ...`);
    return printBench(io, v.json, () =>
      runMergeBench({ presets: preset === 'all' ? undefined : [preset], ...(methods ? { methods } : {}) }),
    );
  },
});

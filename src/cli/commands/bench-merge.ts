/** `attune bench merge`: time streaming merges and report their memory against the streaming bound. */
import { MERGE_BENCH_METHODS, MERGE_PRESETS, runMergeBench } from '../../bench/merge.ts';
import { UsageError } from '../../errors.ts';
import { jsonOption, parseChoice } from '../args.ts';
import { printBench } from '../bench.ts';
import { defineCommand } from '../command.ts';

const options = {
  preset: {
    type: 'string',
    description: `model shape: ${Object.keys(MERGE_PRESETS).join(', ')} or all`,
    default: 'all',
    valueName: '<name>',
  },
  methods: {
    type: 'string',
    description: `comma-separated methods (${MERGE_BENCH_METHODS.join(', ')})`,
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
mark). --json prints the bench envelope as the last stdout line.`,
  options,
  examples: ['attune bench merge --json', 'attune bench merge --preset medium --methods ties,dare_ties'],
  async run(args, io) {
    const v = args.values;
    const preset = parseChoice('--preset', v.preset, [...Object.keys(MERGE_PRESETS), 'all'] as (
      | 'tiny'
      | 'medium'
      | 'all'
    )[]);
    let methods: (typeof MERGE_BENCH_METHODS)[number][] | undefined;
    if (v.methods !== undefined) {
      const list = v.methods.split(',').map((m) => m.trim());
      if (list.some((m) => m === ''))
        throw new UsageError(`option --methods expects comma-separated names, found '${v.methods}'`);
      methods = list.map((m) => parseChoice('--methods', m, MERGE_BENCH_METHODS));
    }
    io.note(`bench merge: ${preset} ...`);
    return printBench(io, v.json, () =>
      runMergeBench({ presets: preset === 'all' ? undefined : [preset], ...(methods ? { methods } : {}) }),
    );
  },
});

/** `attune demo`: fine-tune, evaluate and report on the built-in benchmark world. */
import { resolve } from 'node:path';
import { UsageError } from '../../errors.ts';
import { checkDemoOutput, DEMO_EXPECTED_DURATION, runDemo } from '../../world/demo.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { type Progress, progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  full: {
    type: 'boolean',
    description: `the long demo: three seeds, every question (${DEMO_EXPECTED_DURATION.full} on 2 cores)`,
  },
  quick: {
    type: 'boolean',
    description: `the default mode (${DEMO_EXPECTED_DURATION.quick} on 2 cores); accepted for old scripts`,
  },
  out: { type: 'path', description: 'output directory', default: 'attune-demo', valueName: '<dir>' },
  overwrite: { type: 'boolean', description: 'write into an --out that already holds files' },
  seed: {
    type: 'integer',
    min: 0,
    description: 'seed of the first fine-tuning run (further seeds count up from it)',
    default: 0,
  },
  base: {
    type: 'string',
    description: 'world base: small, large, or a folder from attune world pretrain',
    default: 'small',
    valueName: '<size|dir>',
  },
  json: jsonOption,
} as const;

/** The line the demo prints first: its mode and how long it is expected to take. */
export function demoStartNote(quick: boolean): string {
  const duration = quick ? DEMO_EXPECTED_DURATION.quick : DEMO_EXPECTED_DURATION.full;
  return `demo: ${quick ? 'quick' : 'full'} mode, expected ${duration} on 2 cores${quick ? '; --full runs the long one' : ''}`;
}

/** `attune demo [--full] [--out DIR] [--overwrite] [--seed S] [--json]`. */
export const demoCommand = defineCommand({
  name: 'demo',
  summary:
    'Fine-tune a tiny model on a synthetic world and show that it learned and knows when it does not know',
  description: `Opens the shipped small world base (a Llama pretrained once on the benchmark world, in
world-bases/small; nothing is pretrained or downloaded), writes its world, fine-tunes it with
LoRA + ce and LoRA + ua-clm on the taught facts (once per seed: 2 seeds quick, 3 full), evaluates the
base and every fine-tune on known, taught and unknown people and on out-of-domain questions, prints
a comparison table (mean ± std over seeds) and writes DIR/metrics.json and DIR/report.html.
The default (quick) mode takes ${DEMO_EXPECTED_DURATION.quick} on 2 cores, --full ${DEMO_EXPECTED_DURATION.full}.
An --out that already holds files is refused unless --overwrite.`,
  options,
  examples: [
    'attune demo',
    'attune demo --full --out demo-full',
    'attune demo --out demo-run --seed 1 --json',
  ],
  async run(args, io) {
    const v = args.values;
    if (v.full && v.quick) throw new UsageError('demo: give --full or --quick (the default), not both');
    const quick = !v.full;
    const out = resolve(v.out);
    checkDemoOutput(out, v.overwrite);
    const seed = v.seed;
    io.note(demoStartNote(quick));
    let bar: Progress | null = null;
    const started = Date.now();
    const result = runDemo({
      quick,
      out,
      overwrite: v.overwrite,
      seed,
      base: v.base,
      onNote: (t) => io.note(`demo: ${t}`),
      onPhase: (phase, total) => {
        bar?.stop();
        bar = progress({
          label: phase,
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
      },
      onProgress: (done, fields) => (bar as Progress | null)?.update(done, fields),
    });
    (bar as Progress | null)?.stop();
    type Stat = { mean: number; std: number } | null;
    const over = result.metrics.over_seeds as unknown as Record<string, Record<string, Stat>>;
    const seeds = (result.metrics.seeds as number[]).length;
    const models = ['base', 'ce', 'ua-clm'];
    const cell = (s: Stat) =>
      s === null
        ? null
        : seeds > 1
          ? `${s.mean.toFixed(3)} ± ${s.std.toFixed(3)}`
          : Number(s.mean.toFixed(3));
    const row = (label: string, key: string) =>
      Object.fromEntries([['metric', label], ...models.map((k) => [k, cell(over[k]?.[key] ?? null)])]);
    io.out(
      formatTable([
        row('accuracy taught', 'accuracy_taught'),
        row('accuracy known (retention)', 'accuracy_known'),
        row('accuracy unknown', 'accuracy_unknown'),
        row('ECE (mixed)', 'ece'),
        row('AUROC wrong answer: log_perplexity', 'auroc_log_perplexity'),
        row('AUROC wrong answer: mean_entropy', 'auroc_mean_entropy'),
        row('AUROC out-of-domain: mean_entropy', 'ood_auroc_mean_entropy'),
      ]),
    );
    if (seeds > 1) io.line(`(ce and ua-clm: mean ± std over ${seeds} fine-tuning seeds)`);
    io.line(`metrics: ${result.metricsPath}`);
    io.line(`report:  ${result.reportPath}`);
    io.line(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (v.json) io.json(result.metrics);
    return 0;
  },
});

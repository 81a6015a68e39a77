/** `attune demo`: fine-tune, evaluate and report on the built-in benchmark world. */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../../errors.ts';
import { checkDemoOutput, DEMO_EXPECTED_DURATION, runDemo } from '../../world/demo.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { type Progress, progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  full: {
    type: 'boolean',
    description: `the long demo: more pretraining, every question (${DEMO_EXPECTED_DURATION.full} on 2 cores)`,
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
    description: 'seed of the world, the models and the training',
    default: 0,
  },
  json: jsonOption,
} as const;

/** Where the demo caches its pretrained base model: ATTUNE_CACHE_DIR, else XDG_CACHE_HOME/attune, else ~/.cache/attune. */
export function demoCacheDir(env: Readonly<Record<string, string | undefined>>): string {
  if (env.ATTUNE_CACHE_DIR) return resolve(env.ATTUNE_CACHE_DIR);
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, 'attune');
  return join(homedir(), '.cache', 'attune');
}

/** The line the demo prints first: its mode and how long it is expected to take. */
export function demoStartNote(quick: boolean): string {
  const duration = quick ? DEMO_EXPECTED_DURATION.quick : DEMO_EXPECTED_DURATION.full;
  return `demo: ${quick ? 'quick' : 'full'} mode, expected ${duration} from a cold cache on 2 cores (less with the base model cached)${quick ? '; --full runs the long one' : ''}`;
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? null : Number(v.toFixed(3)));

/** `attune demo [--full] [--out DIR] [--overwrite] [--seed S] [--json]`. */
export const demoCommand = defineCommand({
  name: 'demo',
  summary:
    'Fine-tune a tiny model on a synthetic world and show that it learned and knows when it does not know',
  description: `Generates the benchmark world, builds (or reuses from the cache) a small byte-level Llama pretrained on
it, fine-tunes it with LoRA + ce and LoRA + ua-clm on new facts, evaluates the base and both fine-tunes
on known, taught and unknown people and on out-of-domain questions, prints a comparison table and
writes DIR/metrics.json and DIR/report.html. No download. The default (quick) mode takes
${DEMO_EXPECTED_DURATION.quick} from a cold cache on 2 cores, --full ${DEMO_EXPECTED_DURATION.full}. The base
model is cached in ATTUNE_CACHE_DIR (default ~/.cache/attune) and rebuilt when missing or when its
recipe changes. An --out that already holds files is refused unless --overwrite.`,
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
      cacheDir: demoCacheDir(io.env),
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
    const m = result.metrics as unknown as Record<
      string,
      {
        accuracy: Record<string, number | null>;
        ece: number | null;
        auroc: Record<string, number | null>;
        ood_auroc: Record<string, number | null>;
      }
    >;
    const models = ['base', 'ce', 'ua-clm'];
    const row = (label: string, f: (e: (typeof m)[string]) => number | null | undefined) =>
      Object.fromEntries([['metric', label], ...models.map((k) => [k, fmt(f(m[k]!))])]);
    io.out(
      formatTable([
        row('accuracy taught', (e) => e.accuracy.taught),
        row('accuracy known (retention)', (e) => e.accuracy.known),
        row('accuracy unknown', (e) => e.accuracy.unknown),
        row('ECE (mixed)', (e) => e.ece),
        row('AUROC wrong answer: log_perplexity', (e) => e.auroc.log_perplexity),
        row('AUROC wrong answer: mean_entropy', (e) => e.auroc.mean_entropy),
        row('AUROC wrong answer: msp', (e) => e.auroc.msp),
        row('AUROC out-of-domain: mean_entropy', (e) => e.ood_auroc.mean_entropy),
      ]),
    );
    io.line(`metrics: ${result.metricsPath}`);
    io.line(`report:  ${result.reportPath}`);
    io.line(`done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (v.json) io.json(result.metrics);
    return 0;
  },
});

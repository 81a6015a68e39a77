/** `attune bench methods`: every method fine-tuned on the world from one base, over seeds, side by side. */
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { defaultExperiments, experiment, experiments } from '../../bench/experiment.ts';
import {
  defaultSpecs,
  type MethodRow,
  prepareWorldBench,
  runMethodsBench,
  type Spread,
  splitSpecs,
} from '../../bench/methods.ts';
import { renderMethodsReport } from '../../bench/methods-report.ts';
import { runMethodsBenchOn } from '../../bench/units.ts';
import { UsageError } from '../../errors.ts';
import { writeJsonAtomic, writeTextAtomic } from '../../io/index.ts';
import { checkRedisClient, redisConnection } from '../../sweep/bullmq-executor.ts';
import { importOption, jsonOption } from '../args.ts';
import { type BenchExecutorChoice, benchExecutor } from '../bench-executor.ts';
import { defineCommand } from '../command.ts';
import { importPlugins } from '../plugins.ts';
import { type Progress, progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  methods: {
    type: 'string',
    description: 'comma-separated tuners to run (with each of --losses)',
    defaultText: 'every registered tuner with ce, plus the pairs the headlines need',
    valueName: '<a,b>',
  },
  losses: {
    type: 'string',
    description: 'comma-separated losses to pair with each method; options as name(key=value,...)',
    defaultText: 'ce (plus lora + ua-clm for the headline)',
    valueName: '<a,b>',
  },
  experiments: {
    type: 'string',
    description:
      'comma-separated bench experiments to run (rows that need other data, models or stages); none for none',
    defaultText: 'every registered experiment, unless --methods or --losses is given',
    valueName: '<a,b|none>',
  },
  seeds: { type: 'integer', min: 1, description: 'seeds per (method, loss)', default: 3 },
  quick: { type: 'boolean', description: "the quick demo's step budget and question count" },
  base: {
    type: 'string',
    description: 'world base: small, large (shipped in world-bases/) or a folder from attune world pretrain',
    default: 'small',
    valueName: '<size|dir>',
  },
  out: {
    type: 'path',
    description: 'runs are kept here and reused by a rerun with the same settings',
    default: 'bench-methods',
    valueName: '<dir>',
  },
  executor: {
    type: 'choice',
    choices: ['in-process', 'local', 'bullmq'],
    default: 'in-process',
    description:
      "where the runs go: this process, a pool of --workers processes, or a BullMQ queue ('attune worker --queue URL' pulls them)",
  },
  workers: {
    type: 'integer',
    min: 1,
    defaultText: 'cores / --threads-per-unit',
    description: 'with --executor local: unit processes at a time',
  },
  url: {
    type: 'string',
    valueName: '<redis://host:port>',
    description:
      'with --executor bullmq: the Redis server of the queue (--out must be a folder every worker reaches)',
  },
  'threads-per-unit': {
    type: 'integer',
    min: 1,
    default: 1,
    description:
      "with an executor: kernel threads of every unit, on every executor (a sweep's threads_per_trial)",
  },
  import: {
    ...importOption,
    description:
      'a plug-in module this process and every unit process import first: it registers tuners, losses, experiments, ... (docs/extending.md)',
  },
  json: jsonOption,
} as const;

const fmt = (s: Spread) => (s.mean === null ? '-' : `${s.mean.toFixed(3)} ± ${(s.std ?? 0).toFixed(3)}`);

function tableOf(rows: readonly MethodRow[]): string {
  return formatTable(
    rows.map((r) => ({
      method: r.method,
      loss: r.loss,
      taught: fmt(r.taught_accuracy),
      retention: fmt(r.retention),
      paraphrase: fmt(r.paraphrase_accuracy),
      'wrong AUROC': fmt(r.wrong_auroc),
      'OOD AUROC': fmt(r.ood_auroc),
      ECE: fmt(r.ece),
      params: r.trainable_params,
      's/step': r.step_s.toFixed(3),
    })),
  );
}

/** `attune bench methods [--methods a,b] [--losses a,b] [--seeds 3] [--quick] [--out DIR] [--json]`. */
export const benchMethodsCommand = defineCommand({
  name: 'bench methods',
  summary: 'Every fine-tuning method on the benchmark world, same base, data, budget and seeds',
  description: `Fine-tunes each (method, loss) on the world's taught facts from the same base with the same
data, step budget and seeds, evaluates each on the same questions, and reports per (method, loss)
the mean ± std over seeds of taught accuracy, retention (known-fact accuracy after / before),
paraphrase accuracy, wrong-answer and out-of-domain AUROC (the default score; every score in --json),
ECE, trainable parameters and seconds per step, then the headline table (each paper's claim, the
comparison that tests it, and whether it reproduced). Methods come from the tuner registry and
losses from the loss registry, each with its default options. The base is a shipped world base
(--base small by default; large for the bigger one) and the world is the one it was pretrained on;
--quick uses the quick demo's step budget and question count.

Output: this bench manages its own output folder --out: each finished run stays in --out/runs/ and
is reused by a rerun with the same settings (nothing is ever forced), and --out/report.html and
--out/results.json are replaced by every run; so there is no --overwrite.

Executors: --executor local runs the bench's units (the base's accuracy, each (method, loss) x seed
run, each derived row, each experiment) in a pool of --workers processes, --executor bullmq queues
them on Redis for 'attune worker --queue URL' on each machine (--out, the world base and this
install at the same path on every machine); each unit computes with --threads-per-unit threads.
Every unit keeps its result under --out, then this process aggregates them: the JSON is the one
an in-process run with ATTUNE_THREADS = --threads-per-unit prints (timings aside). See docs/benchmark.md.`,
  options,
  examples: [
    'attune bench methods --quick --json',
    'attune bench methods --methods lora --losses ce,ua-clm --seeds 5',
    'attune bench methods --quick --executor local --workers 2',
    'attune bench methods --executor bullmq --url redis://10.0.0.5:6379 --out /shared/bench',
  ],
  async run(args, io) {
    const v = args.values;
    // the plug-ins register what --methods, --losses and --experiments name, so they come first
    const plugins = await importPlugins(v.import);
    const list = (s: string | undefined) =>
      s === undefined
        ? undefined
        : s
            .split(',')
            .map((x) => x.trim())
            .filter(Boolean);
    const specs = defaultSpecs(list(v.methods), list(v.losses));
    const chosenExperiments =
      v.experiments === 'none'
        ? []
        : v.experiments === 'all'
          ? experiments().map((e) => e.name)
          : (list(v.experiments) ??
            (v.methods !== undefined || v.losses !== undefined
              ? []
              : defaultExperiments().map((e) => e.name)));
    for (const name of chosenExperiments) experiment(name);
    if (v.experiments === undefined)
      for (const e of experiments())
        if (e.byDefault === false)
          io.note(
            `bench methods: experiment '${e.name}' runs only when named (--experiments ${e.name} or all): ${e.heavy ?? 'heavy'}`,
          );
    const threadsPerUnit = v['threads-per-unit'];
    if (v.workers !== undefined && v.executor !== 'local')
      throw new UsageError(`--workers: expected with --executor local, found --executor ${v.executor}`);
    if (v.url !== undefined && v.executor !== 'bullmq')
      throw new UsageError(`--url: expected with --executor bullmq, found --executor ${v.executor}`);
    if (v.executor === 'bullmq' && v.url === undefined)
      throw new UsageError('--executor bullmq: expected --url redis://host:port, found none');
    if (v.executor === 'bullmq') {
      checkRedisClient();
      redisConnection(v.url!, '--url');
    }
    const choice: BenchExecutorChoice | null =
      v.executor === 'local'
        ? {
            name: 'local',
            workers: v.workers ?? Math.max(1, Math.floor(availableParallelism() / threadsPerUnit)),
            threadsPerUnit,
            plugins,
          }
        : v.executor === 'bullmq'
          ? { name: 'bullmq', url: v.url!, threadsPerUnit, plugins }
          : null;
    const seeds = Array.from({ length: v.seeds }, (_, i) => i);
    const out = resolve(v.out);
    let bar: Progress | null = null;
    const hooks = {
      onNote: (t: string) => io.note(`bench methods: ${t}`),
      onPhase: (phase: string, total: number) => {
        bar?.stop();
        bar = progress({
          label: phase,
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
      },
      onProgress: (done: number) => bar?.update(done),
    };
    io.note(
      `bench methods: ${specs.map((s) => `${s.method}+${s.loss}`).join(', ')} x ${seeds.length} seeds (${v.quick ? 'quick' : 'full'} budget)`,
    );
    const setup = prepareWorldBench({ quick: v.quick, base: v.base, out });
    const benchOptions = {
      ...setup,
      out,
      specs,
      seeds,
      quick: v.quick,
      experiments: chosenExperiments,
      ...(choice ? { threads: threadsPerUnit } : {}),
      ...hooks,
    };
    let result: ReturnType<typeof runMethodsBench>;
    if (!choice) result = runMethodsBench(benchOptions);
    else {
      const controller = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        io.note(
          `bench methods: ${signal}: stopping the units; rerun to continue (finished units are reused)`,
        );
        controller.abort();
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      const where =
        choice.name === 'local' ? `on ${choice.workers} worker(s)` : `on the queue at ${choice.url}`;
      io.note(`bench methods: units run ${where} x ${threadsPerUnit} thread(s)`);
      try {
        result = await runMethodsBenchOn(
          benchOptions,
          benchExecutor(benchOptions, choice, {
            signal: controller.signal,
            onStart: (u) =>
              io.note(`bench methods: ${choice.name === 'local' ? 'started' : 'queued'} ${u.label}`),
            onEnd: (u, o) => io.note(`bench methods: ${o.status} ${u.label}${o.error ? `: ${o.error}` : ''}`),
          }),
        );
      } catch (error) {
        if (controller.signal.aborted) return 130;
        throw error;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    }
    (bar as Progress | null)?.stop();
    writeJsonAtomic(resolve(out, 'results.json'), result as unknown as Record<string, unknown>);
    writeTextAtomic(resolve(out, 'report.html'), renderMethodsReport(result));
    io.line(
      `base: known-fact accuracy ${result.base.known_accuracy?.toFixed(3) ?? '-'} (${result.base.dir})`,
    );
    io.out(tableOf(result.results));
    const withExtra = result.results.filter((r) => r.extra && Object.keys(r.extra).length > 0);
    if (withExtra.length > 0)
      io.out(
        formatTable(
          withExtra.map((r) => ({
            method: r.method,
            loss: r.loss,
            ...Object.fromEntries(Object.entries(r.extra!).map(([k, s]) => [k, fmt(s)])),
          })),
        ),
      );
    io.out(
      formatTable(
        result.headlines.map((h) => ({
          claim: h.claim,
          metric: h.metric,
          baseline: `${h.baseline.method}+${h.baseline.loss} ${fmt(h.baseline.value)}`,
          treatment: `${h.treatment.method}+${h.treatment.loss} ${fmt(h.treatment.value)}`,
          reproduced: h.reproduced === null ? '-' : h.reproduced ? 'yes' : 'no',
        })),
      ),
    );
    io.line(`report: ${resolve(out, 'report.html')}`);
    if (v.json) io.json(result as unknown as Record<string, unknown>);
    return 0;
  },
});

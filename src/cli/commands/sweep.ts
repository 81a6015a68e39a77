/** `attune sweep SWEEP.yaml`: many training runs from one file (grid, random or Bayesian search, seeds, objectives). */
import { loadSweepFile } from '../../sweep/config.ts';
import { runSweep } from '../../sweep/sweep.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { formatTable } from '../table.ts';

const options = { json: jsonOption } as const;

/** `attune sweep SWEEP.yaml [--json]`. */
export const sweepCommand = defineCommand({
  name: 'sweep',
  summary: 'Run a hyper-parameter sweep (grid / random / Bayesian search x seeds) of a training config',
  positionals: [{ name: 'sweep.yaml', description: 'the sweep file, see docs/sweeps.md' }],
  description: `Expands the search space of the sweep file into trials and validates every trial's
training config before anything is written. Each trial is a folder under 'out' (trial.yaml in;
run/ with metrics.jsonl, checkpoints and adapter/, and result.json out). Finished trials are
skipped on a rerun; interrupted ones resume from their last checkpoint (set train.save_every in the
base config). search.bayes (AutoPEFT's search: a GP per objective, expected improvement or
expected hypervolume improvement) runs its initial trials, then each batch it proposes from the
results so far. The local executor runs 'workers' trial processes at a time, each with
threads_per_trial kernel threads. The sweep's imports (plug-in modules registering methods,
losses, ...) are imported here and by every trial process first. Writes results.json and
report.html (objective per trial, Pareto front, parallel coordinates) into 'out'. Ctrl-C checkpoints the running trials and stops (exit 130).`,
  options,
  examples: ['attune sweep lr-rank.yaml', 'attune sweep lr-rank.yaml --json'],
  async run(args, io) {
    const sweep = await loadSweepFile(args.positionals[0]!);
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      io.note(`sweep: ${signal}: checkpointing the running trials; rerun the sweep to continue`);
      controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: Awaited<ReturnType<typeof runSweep>>;
    try {
      result = await runSweep(sweep, {
        signal: controller.signal,
        onPlan: (p) =>
          io.note(
            `sweep: ${p.round === null ? '' : p.round === 0 ? 'initial batch: ' : `proposal ${p.round}: `}${p.trials} trials, ${p.done} done before, ${p.toRun} to run ${p.workers === null ? `on the queue (attune worker --queue ...)` : `on ${p.workers} worker(s)`} x ${sweep.threadsPerTrial} thread(s)`,
          ),
        onTrialStart: (t, resuming) =>
          io.note(
            `sweep: ${t.id} ${sweep.executor.name === 'bullmq' ? 'queued' : resuming ? 'resumed' : 'started'} ${JSON.stringify(t.params)}`,
          ),
        onNote: (text) => io.note(`sweep: ${text}`),
        onTrialEnd: (o, m) =>
          io.note(
            `sweep: ${o.id} ${o.status}${m ? `: eval_loss ${m.eval_loss.toFixed(4)}` : ''}${o.error ? `: ${o.error}` : ''}`,
          ),
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const front = new Set(result.pareto);
    io.out(
      formatTable(
        result.trials.map((t) => ({
          trial: t.id,
          ...Object.fromEntries(
            result.fields.map((f) => [
              f,
              typeof t.params[f] === 'number' ? t.params[f] : JSON.stringify(t.params[f]),
            ]),
          ),
          ...(result.seeds ? { seed: t.seed } : {}),
          status: t.status,
          ran: t.ran,
          eval_loss: t.metrics?.eval_loss ?? null,
          final_loss: t.metrics?.final_loss ?? null,
          trainable_params: t.metrics?.trainable_params ?? null,
          best: t.id === result.best?.id ? '*' : front.has(t.id) ? 'front' : '',
        })),
      ),
    );
    io.line(`results: ${result.out}/results.json, report: ${result.out}/report.html`);
    for (const t of result.trials.filter((x) => x.status === 'failed'))
      io.note(`sweep: ${t.id} failed: ${t.error}`);
    if (args.values.json) io.json(result as unknown as Record<string, unknown>);
    if (controller.signal.aborted) return 130;
    return result.trials.every((t) => t.status === 'done') ? 0 : 1;
  },
});

/** `attune worker --queue redis://host:port`: pull sweep trials and bench units from a BullMQ queue and run them. */
import { startTrialWorker } from '../../sweep/bullmq-executor.ts';
import '../job-kinds.ts';
import { resolvePlugins } from '../../config/plugins.ts';
import { importOption } from '../args.ts';
import { defineCommand } from '../command.ts';

const options = {
  queue: {
    type: 'string',
    description: 'the Redis server of the sweep queue: redis://host:port[/db]',
    valueName: '<redis://...>',
    required: true,
  },
  concurrency: {
    type: 'integer',
    min: 1,
    default: 1,
    description: 'jobs (trials, bench units) this worker runs at once',
  },
  'lock-duration': {
    type: 'integer',
    min: 100,
    default: 30_000,
    description: "ms a job's lock lives without renewal: a dead worker's job is retried after it",
  },
  'stalled-interval': {
    type: 'integer',
    min: 100,
    default: 30_000,
    description: 'ms between checks for jobs whose worker died',
  },
  import: {
    ...importOption,
    description:
      "a plug-in module this worker imports and lets jobs import: each one a sweep's imports or a bench's --import names",
  },
} as const;

/** `attune worker --queue URL [--concurrency N]`. */
export const workerCommand = defineCommand({
  name: 'worker',
  summary: 'Run sweep trials and bench units from a BullMQ queue on Redis (executor: bullmq), until stopped',
  description: `Pulls trials that 'attune sweep' queued (executor: {name: bullmq, url, artifacts}) and the units
of 'attune bench methods --executor bullmq', and runs each in its own process with the sweep's
threads_per_trial (the bench's --threads-per-unit), in the sweep's artifacts folder (the bench's
--out), which this machine must reach at the same path. A job already done is reported, not rerun;
an interrupted trial resumes from its last checkpoint, an interrupted bench unit starts over.
Ctrl-C (SIGINT) or SIGTERM checkpoints the running trials (stops the running units), puts them back
on the queue and exits 130. A sweep's imports (a bench's --import) are plug-in modules its jobs'
processes import first; a worker runs such a job only when it was started with the same files
(--import, at the same path), and fails it with an error naming them otherwise.`,
  options,
  examples: [
    'attune worker --queue redis://10.0.0.5:6379',
    'attune worker --queue redis://queue-host:6379 --concurrency 2',
    'attune worker --queue redis://queue-host:6379 --import /srv/attune/my-method.ts',
  ],
  async run(args, io) {
    const url = args.values.queue!;
    const worker = await startTrialWorker({
      url,
      concurrency: args.values.concurrency,
      lockDuration: args.values['lock-duration'],
      stalledInterval: args.values['stalled-interval'],
      plugins: resolvePlugins(args.values.import, process.cwd(), '--import'),
      onEvent: (e) => {
        if (e.type === 'start')
          io.note(`worker: ${e.jobId} ${e.resuming ? 'resumed' : 'started'} ${e.label}`);
        else if (e.type === 'done')
          io.note(`worker: ${e.jobId} done${e.ran ? '' : ' before (not rerun)'}: ${e.summary}`);
        else io.note(`worker: ${e.jobId} failed: ${e.error}`);
      },
      onError: (error) => io.note(`worker: ${error.message} (retrying)`),
    });
    io.note(`worker: pulling jobs from ${url}`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        io.note(`worker: ${signal}: checkpointing the running jobs and putting them back on the queue`);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    await worker.close();
    return 130;
  },
});

/** `attune distill CONFIG.yaml`: FIRST distillation — cache the teacher's top-k once, train the student on it. */
import { distill, loadDistillConfig } from '../../train/distill.ts';
import { TrainingInterrupted } from '../../train/trainer.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  set: {
    type: 'string',
    multiple: true,
    description: 'override a config field: --set teacher.k=10 --set train.lr=2e-4 (repeatable)',
    valueName: '<key=value>',
  },
  resume: { type: 'boolean', description: "continue the student's run from its latest checkpoint" },
  overwrite: {
    type: 'boolean',
    description: 'replace an existing output_dir (the cache is kept if it still fits)',
  },
  json: jsonOption,
} as const;

/** `attune distill CONFIG.yaml [--set k=v ...] [--resume] [--overwrite] [--json]`. */
export const distillCommand = defineCommand({
  name: 'distill',
  summary: "Distil a teacher into a student (FIRST: the teacher's calibrated top-k, forward KL)",
  positionals: [
    {
      name: 'config.yaml',
      description: 'a train config (docs/config.md) plus teacher: {model, adapter?, k, cache?}',
    },
  ],
  description: `A training config plus a teacher section:
  teacher: {model: DIR, adapter: DIR (optional), k: 5, cache: FILE (optional)}
First the teacher's top-k token log-probs at every supervised position of the training data are cached
in one safetensors file (default <output_dir>.teacher-top<k>.safetensors; reused when its header says
it was built from the same teacher, adapter, data, tokenization and k; rebuilt otherwise). Then the
student (the config's model and method) trains with loss 'first': forward KL from the calibrated
("trustworthy maximization") teacher top-k to the student, plus loss.ce_weight x CE. Loss options go
under loss: {name: first, ce_weight, temperature, normalization, ...} (docs/methods/first.md).
Teacher and student must share the vocabulary. The output is as 'attune train' writes it.`,
  options,
  examples: [
    'attune distill distill.yaml',
    'attune distill distill.yaml --set loss.ce_weight=0.5 --overwrite --json',
  ],
  async run(args, io) {
    const config = loadDistillConfig(args.positionals[0]!, args.values.set);
    const stream = { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY };
    let bar = null as Progress | null;
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      bar?.stop();
      io.note(`distill: ${signal}: saving a checkpoint after the current step (again to stop at once)`);
      controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: Awaited<ReturnType<typeof distill>>;
    try {
      result = await distill(config, {
        signal: controller.signal,
        resume: args.values.resume,
        overwrite: args.values.overwrite,
        onDistillEvent: (e) => {
          if (e.type === 'cache') {
            if (e.status === 'reused') io.note(`distill: reusing the teacher cache ${e.path}`);
            else {
              io.note(
                `distill: building the teacher cache ${e.path} (${e.reason}) over ${e.examples} examples`,
              );
              bar = progress({ label: 'teacher top-k', total: e.examples, stream });
            }
          } else if (e.type === 'cache-progress') bar?.update(e.done);
          else {
            bar?.stop();
            bar = null;
            io.note(`distill: cached ${e.tokens} tokens in ${e.seconds.toFixed(1)} s`);
          }
        },
        onEvent: (e) => {
          if (e.type === 'start') {
            io.note(
              `distill: student: ${e.examples} examples, ${e.trainable.toLocaleString('en-US')} trainable parameters, steps ${e.startStep + 1}..${e.totalSteps}`,
            );
            bar = progress({ label: 'distill', total: e.totalSteps, stream });
            bar.update(e.startStep);
          } else if (e.type === 'step') {
            bar?.update(e.metrics.step, {
              loss: e.metrics.loss,
              ...(e.metrics.kl !== undefined ? { kl: e.metrics.kl } : {}),
              ...(e.metrics.eval_loss !== undefined ? { eval: e.metrics.eval_loss } : {}),
            });
          } else if (e.type === 'done') bar?.stop();
        },
      });
    } catch (error) {
      if (!(error instanceof TrainingInterrupted)) throw error;
      bar?.stop();
      io.note(
        `distill: ${error.message.replace("'attune train CONFIG", `'attune distill ${args.positionals[0]!}`)}`,
      );
      return 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const t = result.train;
    io.line(
      `distilled ${t.steps} steps: final loss ${t.finalLoss.toFixed(4)}${t.evalLoss !== null ? `, eval loss ${t.evalLoss.toFixed(4)}` : ''}`,
    );
    io.line(
      `teacher cache: ${result.cache.path} (${result.cache.reused ? 'reused' : 'built'}, ${result.cache.header.tokens} tokens x top-${result.cache.header.k})`,
    );
    io.line(`output: ${t.finalDir}`);
    if (args.values.json) {
      io.json({
        output_dir: t.outputDir,
        final_dir: t.finalDir,
        steps: t.steps,
        final_loss: t.finalLoss,
        eval_loss: t.evalLoss,
        cache: {
          path: result.cache.path,
          reused: result.cache.reused,
          k: result.cache.header.k,
          tokens: result.cache.header.tokens,
          examples: result.cache.header.examples,
        },
      });
    }
    return 0;
  },
});

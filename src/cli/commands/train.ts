/** `attune train CONFIG.yaml`: fine-tune (or pretrain) a model as the config says. */
import { loadTrainConfig } from '../../train/config.ts';
import { TrainingInterrupted, trainAsync } from '../../train/trainer.ts';
import { importOption, jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { importPlugins } from '../plugins.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  set: {
    type: 'string',
    multiple: true,
    description: 'override a config field: --set train.lr=2e-4 (repeatable)',
    valueName: '<key=value>',
  },
  resume: {
    type: 'boolean',
    description: "continue the run in the config's output_dir from its latest checkpoint",
  },
  overwrite: { type: 'boolean', description: 'replace an existing output_dir' },
  import: importOption,
  json: jsonOption,
} as const;

/** `attune train CONFIG.yaml [--set k=v ...] [--resume] [--overwrite] [--json]`. */
export const trainCommand = defineCommand({
  name: 'train',
  summary: 'Fine-tune a model (LoRA or full) from a YAML config; PEFT-compatible output',
  positionals: [{ name: 'config.yaml', description: 'the YAML train config, see docs/config.md' }],
  description: `Validates the config (docs/config.md), the model and the data before the first step, then
trains, writing into output_dir: config.resolved.yaml, metrics.jsonl (one object per logged step:
step, loss, lr, grad_norm, tokens_per_s, eval_loss), checkpoints/step-N/ with an atomic 'latest'
pointer, and the final adapter/ (every method; LoRA's loads in Python PEFT), plus model/ for full fine-tuning. --resume continues
from the latest checkpoint exactly where it stopped. Ctrl-C (SIGINT) or SIGTERM finishes the step in
progress, saves a checkpoint, prints how to resume and exits 130; a second one stops at once.`,
  options,
  examples: [
    'attune train quickstart.yaml',
    'attune train run.yaml --set train.lr=2e-4 --set train.steps=200 --overwrite',
    'attune train run.yaml --resume',
    'attune train run.yaml --import ./my-method.ts',
  ],
  async run(args, io) {
    await importPlugins(args.values.import);
    const config = loadTrainConfig(args.positionals[0]!, args.values.set);
    let bar = null as Progress | null;
    // Ctrl-C / SIGTERM: finish the step, checkpoint, say how to resume; a second signal kills
    const controller = new AbortController();
    const onSignal = (signal: NodeJS.Signals) => {
      bar?.stop();
      io.note(`train: ${signal}: saving a checkpoint after the current step (again to stop at once)`);
      controller.abort();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let result: Awaited<ReturnType<typeof trainAsync>>;
    try {
      result = await trainAsync(config, {
        signal: controller.signal,
        resume: args.values.resume,
        overwrite: args.values.overwrite,
        onEvent: (e) => {
          if (e.type === 'start') {
            io.note(
              `train: ${e.examples} examples${e.skipped ? ` (${e.skipped} skipped)` : ''}, ${e.trainable.toLocaleString('en-US')} trainable parameters, steps ${e.startStep + 1}..${e.totalSteps}`,
            );
            bar = progress({
              label: 'train',
              total: e.totalSteps,
              stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
            });
            bar.update(e.startStep);
          } else if (e.type === 'step') {
            bar?.update(e.metrics.step, {
              loss: e.metrics.loss,
              'tok/s': Math.round(e.metrics.tokens_per_s),
              ...(e.metrics.eval_loss !== undefined ? { eval: e.metrics.eval_loss } : {}),
            });
          } else if (e.type === 'done') {
            bar?.stop();
          }
        },
      });
    } catch (error) {
      if (!(error instanceof TrainingInterrupted)) throw error;
      bar?.stop();
      io.note(`train: ${error.message.replace('CONFIG', args.positionals[0]!)}`);
      return 130;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    io.line(
      `trained ${result.steps} steps: final loss ${result.finalLoss.toFixed(4)}${result.evalLoss !== null ? `, eval loss ${result.evalLoss.toFixed(4)}` : ''}`,
    );
    io.line(`output: ${result.finalDir}`);
    if (args.values.json) {
      io.json({
        output_dir: result.outputDir,
        final_dir: result.finalDir,
        steps: result.steps,
        final_loss: result.finalLoss,
        eval_loss: result.evalLoss,
      });
    }
    return 0;
  },
});

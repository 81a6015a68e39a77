/** `attune train CONFIG.yaml`: fine-tune (or pretrain) a model as the config says. */
import { loadTrainConfig } from '../../train/config.ts';
import { train } from '../../train/trainer.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
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
pointer, and the final adapter/ (LoRA; loads in Python PEFT) or model/ (full). --resume continues
from the latest checkpoint exactly where it stopped.`,
  options,
  examples: [
    'attune train quickstart.yaml',
    'attune train run.yaml --set train.lr=2e-4 --set train.steps=200 --overwrite',
    'attune train run.yaml --resume',
  ],
  async run(args, io) {
    const config = loadTrainConfig(args.positionals[0]!, args.values.set);
    let bar: Progress | null = null;
    const result = train(config, {
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

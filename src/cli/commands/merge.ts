/** `attune merge CONFIG.yaml --out DIR`: merge models as a mergekit-style YAML config says. */
import { loadMergeConfig, mergeMethods, runMerge } from '../../merge/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  out: { type: 'path', required: true, description: 'output model directory', valueName: '<dir>' },
  overwrite: {
    type: 'boolean',
    description: 'replace an existing --out directory (after the merge succeeded)',
  },
  set: {
    type: 'string',
    multiple: true,
    description: 'override a config field: --set parameters.lambda=0.8 (repeatable)',
    valueName: '<key=value>',
  },
  json: jsonOption,
} as const;

function mb(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** `attune merge CONFIG.yaml --out DIR [--overwrite] [--json]`. */
export const mergeCommand = defineCommand({
  name: 'merge',
  summary: 'Merge models (linear, TIES, DARE, breadcrumbs, slerp, model stock, soups) from a YAML config',
  usage: '<config.yaml> --out <dir> [options]',
  positionals: [
    { name: 'config.yaml', description: 'the mergekit-style YAML merge config, see docs/merge.md' },
  ],
  description: `The config has mergekit's shape (merge_method, base_model, models: [{model, parameters}],
parameters, dtype; see docs/merge.md); a mergekit config gives mergekit's result.
Methods: ${mergeMethods.names().slice(0, 5).join(', ')},
${mergeMethods.names().slice(5).join(', ')}.
A model is a model dir or base_dir+adapter_dir (the LoRA adapter is folded in on the fly).
Everything is validated before anything is written; tensors are then streamed one at a time, so
memory stays near (inputs + 1) x the largest tensor. The output is a model dir transformers
loads, with the base's config and tokenizer files.`,
  options,
  examples: [
    'attune merge ties.yaml --out ./merged',
    'attune merge soup.yaml --out ./soup --overwrite --json',
  ],
  async run(args, io) {
    const config = loadMergeConfig(args.positionals[0]!, args.values.set);
    let bar: Progress | null = null;
    const report = runMerge(config, {
      out: args.values.out,
      overwrite: args.values.overwrite,
      note: (line) => io.note(line),
      onProgress: (done, total) => {
        bar ??= progress({
          label: 'merge',
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
        bar.update(done);
      },
    });
    (bar as Progress | null)?.stop();
    io.line(
      `wrote ${report.out}: ${report.method} of ${report.models} model(s), ${report.tensors} tensors in ${report.seconds.toFixed(2)} s; ` +
        `peak tensor memory ${mb(report.peakTensorBytes)} (bound (inputs + 1) x largest = ${mb(report.boundBytes)})`,
    );
    if (report.greedySoup) {
      io.line(
        `greedy soup: accepted models ${report.greedySoup.accepted.join(', ')} (eval loss ${report.greedySoup.loss.toFixed(4)})`,
      );
    }
    if (args.values.json) io.json(report);
    return 0;
  },
});

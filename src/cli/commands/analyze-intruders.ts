/** `attune analyze intruders`: intruder dimensions of a fine-tuned model or LoRA adapter. */
import {
  analyzeIntruders,
  DEFAULT_INTRUDER_THRESHOLD,
  DEFAULT_INTRUDER_TOP_K,
} from '../../analysis/index.ts';
import { UsageError } from '../../errors.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  base: { type: 'path', required: true, description: 'base model directory', valueName: '<dir>' },
  tuned: {
    type: 'path',
    description: 'fully fine-tuned model directory (same architecture)',
    valueName: '<dir>',
  },
  adapter: {
    type: 'path',
    description: 'LoRA adapter directory, applied to --base as W + scaling B A',
    valueName: '<dir>',
  },
  'top-k': {
    type: 'integer',
    min: 1,
    description: 'top singular vectors of each tuned matrix that are checked',
    default: DEFAULT_INTRUDER_TOP_K,
    valueName: '<k>',
  },
  threshold: {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    description:
      'a tuned vector is an intruder when its largest |cos| with every base singular vector is below this',
    default: DEFAULT_INTRUDER_THRESHOLD,
    valueName: '<t>',
  },
  matrices: {
    type: 'string',
    description: 'regex over tensor names selecting the 2-D weights analysed',
    defaultText: 'all but the token embedding and LM head',
    valueName: '<regex>',
  },
  json: jsonOption,
} as const;

/** `attune analyze intruders --base DIR (--tuned DIR | --adapter DIR) [--top-k 10] [--threshold 0.5] [--json]`. */
export const analyzeIntrudersCommand = defineCommand({
  name: 'analyze intruders',
  summary: 'Count intruder dimensions: new singular directions a fine-tune put into each matrix',
  description: `For every 2-D weight: the full SVD of the base matrix (all its left singular vectors) and
the top-k left singular vectors of the tuned matrix (--tuned, or --base plus the LoRA --adapter as
W + scaling B A). A tuned vector is an intruder when max |cos| with every base singular vector is
below --threshold ("LoRA vs Full Fine-tuning: An Illusion of Equivalence"). Prints one row per
matrix and the totals; names, shapes and architectures are checked before any SVD runs. A large
matrix (576 x 1536) takes a few seconds in plain JS; see docs/analysis.md.`,
  options,
  examples: [
    'attune analyze intruders --base ./SmolLM2-135M --adapter runs/lora/adapter',
    'attune analyze intruders --base ./base --tuned ./full-ft --top-k 10 --threshold 0.5 --json',
    "attune analyze intruders --base ./base --tuned ./ft --matrices 'layers\\.0\\.'",
  ],
  async run(args, io) {
    const v = args.values;
    if ((v.tuned === undefined) === (v.adapter === undefined)) {
      throw new UsageError('analyze intruders: give exactly one of --tuned <dir> or --adapter <dir>');
    }
    const topK = v['top-k'];
    const threshold = v.threshold;
    let matrices: RegExp | null = null;
    if (v.matrices !== undefined) {
      try {
        matrices = new RegExp(v.matrices);
      } catch (error) {
        throw new UsageError(
          `--matrices: expected a regular expression, got ${JSON.stringify(v.matrices)} (${(error as Error).message})`,
        );
      }
    }
    let bar: ReturnType<typeof progress> | null = null;
    const report = analyzeIntruders({
      base: v.base,
      tuned: v.tuned,
      adapter: v.adapter,
      topK,
      threshold,
      matrices,
      onMatrix(index, total) {
        bar ??= progress({
          label: 'intruders',
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
        bar.update(index);
      },
    });
    (bar as ReturnType<typeof progress> | null)?.update(report.matrices.length);
    (bar as ReturnType<typeof progress> | null)?.stop();
    if (report.matrices.length === 0) io.note('analyze intruders: no matrix matched');
    io.out(
      formatTable(
        report.matrices.map((m) => ({
          matrix: m.name,
          shape: `${m.shape[0]}x${m.shape[1]}`,
          intruders: m.intruders,
          top_k: m.top_k,
          min_max_cos: m.min_max_cos,
        })),
      ),
    );
    io.line(
      `${report.totals.intruders} intruder dimension(s) in ${report.totals.matrices_with_intruders} of ${report.totals.matrices} matrices (top ${topK}, threshold ${threshold})`,
    );
    if (v.json) io.json({ command: 'analyze intruders', ...report });
    return 0;
  },
});

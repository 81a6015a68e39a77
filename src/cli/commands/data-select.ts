/** `attune data select`: keep the candidate records a selection method scores highest (perplexity, distribution_shift, mates). */
import { existsSync } from 'node:fs';
import { ConfigError, UsageError } from '../../errors.ts';
import { loadModel } from '../../models/index.ts';
import { type Adapter, loadAdapter } from '../../peft/index.ts';
import { type SelectionSize, selectFile, selectionMethods } from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { modelOptions } from '../model-options.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  ...modelOptions,
  data: {
    type: 'path',
    required: true,
    description: 'the candidate JSONL ({prompt, completion} or {text} per line; never modified)',
    valueName: '<file>',
  },
  out: { type: 'path', required: true, description: 'the selected JSONL to write', valueName: '<file>' },
  scores: {
    type: 'path',
    description: 'per-record scores JSONL (line, score, selected, rank, method columns)',
    defaultText: '<out>.scores.jsonl',
    valueName: '<file>',
  },
  method: {
    type: 'choice',
    choices: selectionMethods.names(),
    required: true,
    description: 'the selection method',
  },
  fraction: {
    type: 'number',
    description: 'keep this fraction of the pool, in (0, 1] (or --count)',
    valueName: '<f>',
  },
  count: { type: 'integer', description: 'keep this many records (or --fraction)', valueName: '<n>' },
  target: {
    type: 'path',
    description: 'a JSONL sample of the target domain (distribution_shift and mates need it)',
    valueName: '<file>',
  },
  seed: {
    type: 'integer',
    min: 0,
    default: 0,
    description: "seed of the method's draws (MATES' probes, fresh LoRA)",
  },
  overwrite: { type: 'boolean', description: 'replace --out and --scores if they exist' },
  json: jsonOption,
} as const;

/** `attune data select --data C.jsonl --out S.jsonl --method M (--fraction F | --count N) --model DIR [--adapter A] [--target T.jsonl] [--json]`. */
export const dataSelectCommand = defineCommand({
  name: 'data select',
  summary:
    'Select fine-tuning data: perplexity filtering, OT distribution shift toward a target, or MATES influence',
  description: `Scores every candidate record with the reference model (and adapter) and keeps the highest
scored --fraction (rounded) or --count, in input order. perplexity (POINTS): lowest perplexity of
the tokens fine-tuning trains (the completion; all of a {text}). distribution_shift (Get more for
less): minus the calibrated OT gradient between the candidates' and --target's mean-pooled
embeddings. mates (MATES): a ridge influence model on embeddings fitted to the oracle influence of
probe candidates (target NLL change after one SGD step). Writes --out and --scores; the input is
validated before any output exists and never modified. See docs/data.md.`,
  options,
  examples: [
    'attune data select --model world-bases/small --data candidates.jsonl --out selected.jsonl --method perplexity --fraction 0.3',
    'attune data select --model ./m --data c.jsonl --target target.jsonl --out s.jsonl --method mates --count 200 --json',
  ],
  async run(args, io) {
    const v = args.values;
    if ((v.fraction === undefined) === (v.count === undefined))
      throw new UsageError('data select: give exactly one of --fraction and --count');
    const size: SelectionSize = v.fraction !== undefined ? { fraction: v.fraction } : { count: v.count! };
    if ('fraction' in size && !(size.fraction > 0 && size.fraction <= 1))
      throw new ConfigError(`--fraction: expected a number in (0, 1], got ${size.fraction}`);
    const method = selectionMethods.get(v.method);
    if (method.needsTarget && v.target === undefined)
      throw new UsageError(`--method ${v.method} needs --target (a JSONL sample of the target domain)`);
    const scores = v.scores ?? `${v.out}.scores.jsonl`;
    const existing = [v.out, scores].filter((p) => existsSync(p));
    if (existing.length > 0 && !v.overwrite)
      throw new ConfigError(`${existing.join(' and ')} already exist (pass --overwrite to replace them)`);
    const loaded = loadModel(v.model, { dtype: v.dtype as 'f32' | 'bf16' });
    if (!loaded.tokenizer) throw new UsageError(`data select: ${loaded.dir} has no tokenizer.json`);
    const adapter: Adapter | null = v.adapter ? loadAdapter(loaded.model, v.adapter) : null;
    loaded.model.eval();
    let bar: Progress | null = null;
    let barLabel = '';
    const summary = selectFile(loaded.model, loaded.tokenizer, adapter, {
      data: v.data,
      out: v.out,
      scores,
      method: v.method,
      size,
      target: v.target,
      seed: v.seed,
      onProgress: (label, done, total) => {
        if (label !== barLabel) {
          bar?.stop();
          barLabel = label;
          bar = progress({
            label,
            total,
            stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
          });
        }
        bar!.update(done);
      },
    });
    (bar as Progress | null)?.stop();
    io.line(
      `${v.method}: selected ${summary.selected} of ${summary.candidates} records (cut score ${summary.cut.toPrecision(4)})`,
    );
    io.line(`output: ${summary.out}, scores: ${summary.scores}`);
    if (v.json) {
      const { lines: _, ...rest } = summary;
      io.json(rest as unknown as Record<string, unknown>);
    }
    return 0;
  },
});

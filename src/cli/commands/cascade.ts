/** `attune cascade`: when should a small model defer to a large one? Deferral curves and AUC-DF. */
import { UsageError } from '../../errors.ts';
import { loadModel } from '../../models/index.ts';
import { cascadeExamples, evaluateCascade, predict, readEvalRecords, splitHeldOut } from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { unescapeStop } from '../model-options.ts';
import { formatTable } from '../table.ts';

const options = {
  small: {
    type: 'path',
    required: true,
    description: 'the small model directory (answers first)',
    valueName: '<dir>',
  },
  large: {
    type: 'path',
    required: true,
    description: 'the large model directory (asked on deferral)',
    valueName: '<dir>',
  },
  data: {
    type: 'path',
    required: true,
    description: 'JSONL of {prompt | messages, answer} records',
    valueName: '<file>',
  },
  'max-new-tokens': { type: 'integer', min: 1, description: 'answer length limit in tokens', default: 32 },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer ("\\n" = newline)',
    valueName: '<text>',
  },
  seed: { type: 'integer', min: 0, description: 'seed of the held-out / test split and the MLP', default: 0 },
  json: jsonOption,
} as const;

/** `attune cascade --small DIR --large DIR --data FILE.jsonl [--json]`. */
export const cascadeCommand = defineCommand({
  name: 'cascade',
  summary: 'Deferral curves and AUC-DF of a small -> large model cascade (Chow rules, post-hoc MLP)',
  description: `Both models answer every record greedily and are graded (exact match). The records are split
in half (seeded): the post-hoc rule, a small MLP on the small model's answer-token log-prob
quantiles predicting whether the large model is better, is fitted on one half; every rule is
evaluated on the other: Chow-Sum (sum log-prob), Chow-Average (mean), Chow-Quantile-a (a = 0,
0.1, ..., 1) and the MLP, each against random deferral and the oracle. AUC-DF is the area under
quality vs deferral rate.`,
  options,
  examples: ['attune cascade --small ./small --large ./large --data qa.jsonl --stop "\\n" --json'],
  async run(args, io) {
    const v = args.values;
    const records = readEvalRecords(v.data);
    if (records.length < 4)
      throw new UsageError(`cascade: ${v.data} has ${records.length} records; need at least 4 to split`);
    const maxNewTokens = v['max-new-tokens'];
    const seed = v.seed;
    const stop = v.stop.map(unescapeStop);
    const run = (dir: string) => {
      const loaded = loadModel(dir);
      if (!loaded.tokenizer) throw new UsageError(`cascade: ${dir} has no tokenizer.json`);
      io.note(`cascade: answering ${records.length} records with ${dir}`);
      return predict(loaded.model, loaded.tokenizer, records, {
        maxNewTokens,
        stop,
        eosTokenIds: loaded.eosTokenIds,
      });
    };
    const small = run(v.small);
    const large = run(v.large);
    const { heldOut, test } = splitHeldOut(cascadeExamples(small, large), seed);
    const report = evaluateCascade(heldOut, test, { seed });
    io.line(
      `test half: ${report.n} records; small accuracy ${report.small_accuracy.toFixed(3)}, large ${report.large_accuracy.toFixed(3)}; AUC-DF random ${report.random_auc_df.toFixed(3)}, oracle ${report.oracle_auc_df.toFixed(3)}`,
    );
    io.out(formatTable(Object.entries(report.methods).map(([rule, m]) => ({ rule, auc_df: m.auc_df }))));
    if (v.json) io.json(report);
    return 0;
  },
});

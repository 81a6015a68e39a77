/** `attune cascade`: when should a small model defer to a large one? Deferral curves and AUC-DF. */
import { AttuneError, UsageError } from '../../errors.ts';
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import {
  CASCADE_QUALITIES,
  type CascadeQuality,
  cascadeExamples,
  evaluateCascade,
  POST_HOC_TARGETS,
  type PostHocTarget,
  predict,
  readEvalRecords,
  splitHeldOut,
} from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { cascadeReportFormat, writeCascadeReport } from '../cascade-report.ts';
import { defineCommand } from '../command.ts';
import { parseModelRef, unescapeStop } from '../model-options.ts';
import { progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  small: {
    type: 'string',
    required: true,
    description: 'the small model (answers first): DIR, or DIR:ADAPTER with a PEFT adapter',
    valueName: '<dir[:adapter]>',
  },
  large: {
    type: 'string',
    required: true,
    description: 'the large model (asked on deferral): DIR, or DIR:ADAPTER with a PEFT adapter',
    valueName: '<dir[:adapter]>',
  },
  data: {
    type: 'path',
    required: true,
    description: 'JSONL of {prompt | messages, answer} records',
    valueName: '<file>',
  },
  quality: {
    type: 'choice',
    choices: CASCADE_QUALITIES,
    description: 'answer quality: exact match (0/1) or graded ROUGE-L F vs the gold answer',
    default: 'exact',
  },
  'posthoc-target': {
    type: 'choice',
    choices: POST_HOC_TARGETS,
    description:
      'post-hoc MLP target: better = 1{large better than small} (logistic), diff = q_large - q_small (squared loss)',
    default: 'better',
  },
  'max-new-tokens': { type: 'integer', min: 1, description: 'answer length limit in tokens', default: 32 },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer ("\\n" = newline)',
    valueName: '<text>',
  },
  seed: { type: 'integer', min: 0, description: 'seed of the held-out / test split and the MLP', default: 0 },
  report: {
    type: 'path',
    description: 'write the deferral curves of every rule with random and oracle (.html or .svg)',
    valueName: '<file>',
  },
  json: jsonOption,
} as const;

/** `attune cascade --small DIR --large DIR --data FILE.jsonl [--json]`. */
export const cascadeCommand = defineCommand({
  name: 'cascade',
  summary: 'Deferral curves and AUC-DF of a small -> large model cascade (Chow rules, post-hoc MLP)',
  description: `Both models (each DIR or DIR:ADAPTER, as every command that loads several models spells
a model with its adapter) answer every record greedily and are graded:
--quality exact (0/1) or rougeL (graded: ROUGE-L F of the answer vs the gold; the curves then
average it). The records are split in half (seeded): the post-hoc rule, a small MLP on the small
model's answer-token log-prob quantiles, is fitted on one half to predict whether the large model
is better (--posthoc-target better) or by how much (diff: q_large - q_small); every rule is
evaluated on the other half: Chow-Sum (sum log-prob), Chow-Average (mean), Chow-Quantile-a (a = 0,
0.1, ..., 1) and the MLP, each against random deferral and the oracle. AUC-DF is the area under
quality vs deferral rate. --report draws every curve (.html or .svg).`,
  options,
  examples: [
    'attune cascade --small ./small --large ./large --data qa.jsonl --stop "\\n" --json',
    'attune cascade --small ./small:runs/qa/adapter --large ./large --data qa.jsonl --quality rougeL --posthoc-target diff --report cascade.html',
  ],
  async run(args, io) {
    const v = args.values;
    // validate everything before the (long) generation
    if (v.report !== undefined) cascadeReportFormat(v.report);
    const records = readEvalRecords(v.data);
    if (records.length < 4)
      throw new UsageError(`cascade: ${v.data} has ${records.length} records; need at least 4 to split`);
    const maxNewTokens = v['max-new-tokens'];
    const seed = v.seed;
    const quality = v.quality as CascadeQuality;
    const stop = v.stop.map(unescapeStop);
    const load = (ref: string, which: string) => {
      const { model: dir, adapter } = parseModelRef(ref, `--${which}`);
      const loaded = loadModel(dir);
      if (!loaded.tokenizer) throw new UsageError(`cascade: --${which} ${dir} has no tokenizer.json`);
      if (adapter !== undefined) {
        try {
          loadAdapter(loaded.model, adapter);
        } catch (error) {
          // name the flag pair: an adapter trained on the other model is the usual mistake
          if (!(error instanceof AttuneError)) throw error;
          throw new UsageError(
            `cascade: --${which} ${ref}: the adapter ${adapter} does not fit the model ${dir}: ${error.message}`,
          );
        }
      }
      loaded.model.eval();
      return { ...loaded, tokenizer: loaded.tokenizer, label: adapter ? `${dir} + ${adapter}` : dir };
    };
    // both load before either answers, so a bad adapter fails fast
    const smallModel = load(v.small, 'small');
    const largeModel = load(v.large, 'large');
    const answer = (m: ReturnType<typeof load>, which: string) => {
      io.note(`cascade: answering ${records.length} records with the ${which} model ${m.label}`);
      const bar = progress({
        label: `cascade ${which}`,
        total: records.length,
        stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
      });
      const out = predict(m.model, m.tokenizer, records, {
        maxNewTokens,
        stop,
        eosTokenIds: m.eosTokenIds,
        onProgress: (done) => bar.update(done),
      });
      bar.stop();
      return out;
    };
    const small = answer(smallModel, 'small');
    const large = answer(largeModel, 'large');
    const { heldOut, test } = splitHeldOut(cascadeExamples(small, large, quality), seed);
    const report = evaluateCascade(heldOut, test, { seed, target: v['posthoc-target'] as PostHocTarget });
    const what = quality === 'exact' ? 'accuracy' : 'mean ROUGE-L';
    io.line(
      `test half: ${report.n} records; small ${what} ${report.small_accuracy.toFixed(3)}, large ${report.large_accuracy.toFixed(3)}; AUC-DF random ${report.random_auc_df.toFixed(3)}, oracle ${report.oracle_auc_df.toFixed(3)}`,
    );
    io.out(formatTable(Object.entries(report.methods).map(([rule, m]) => ({ rule, auc_df: m.auc_df }))));
    if (v.report !== undefined) {
      writeCascadeReport(v.report, report, quality);
      io.note(`cascade: wrote ${v.report}`);
    }
    if (v.json) io.json({ quality, ...report });
    return 0;
  },
});

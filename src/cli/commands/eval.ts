/** `attune eval`: generate answers, grade them, and judge the model's uncertainty. */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import {
  GRADE_METRICS,
  type GradeMetric,
  loadCalibrator,
  predict,
  readEvalRecords,
  summarizePredictions,
} from '../../uq/index.ts';
import { jsonOption, parseChoice, parseInteger, parsePositiveNumber } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, modelOptions } from '../model-options.ts';
import { progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  ...modelOptions,
  data: { type: 'string', description: 'JSONL of {prompt | messages, answer} records', valueName: '<file>' },
  metric: {
    type: 'string',
    description: `grading: ${GRADE_METRICS.join(', ')}`,
    default: 'exact',
    valueName: '<name>',
  },
  scores: {
    type: 'string',
    description:
      'comma-separated scores to report (default: all single-pass scores, plus MC-dropout ones with --mc-dropout)',
    valueName: '<a,b,...>',
  },
  'mc-dropout': {
    type: 'string',
    description: 'MC-dropout passes T (0 = off)',
    default: '0',
    valueName: '<T>',
  },
  'mc-rate': {
    type: 'string',
    description: 'dropout rate forced on for MC dropout',
    default: '0.1',
    valueName: '<p>',
  },
  calibrator: {
    type: 'string',
    description: 'Platt or isotonic calibrator JSON mapping the confidence',
    valueName: '<file>',
  },
  'max-new-tokens': {
    type: 'string',
    description: 'answer length limit in tokens',
    default: '32',
    valueName: '<n>',
  },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer (repeatable; e.g. "\\n")',
    valueName: '<text>',
  },
  bins: { type: 'string', description: 'ECE bins (equal width)', default: '15', valueName: '<n>' },
  out: {
    type: 'string',
    description: 'directory for predictions.jsonl (default: next to --data)',
    valueName: '<dir>',
  },
  json: jsonOption,
} as const;

function unescapeStop(s: string): string {
  return s.replace(/\\n/g, '\n').replace(/\\t/g, '\t');
}

/** `attune eval --model DIR [--adapter DIR] --data FILE.jsonl [...]`. */
export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'Answer questions, grade them, and measure how well uncertainty detects wrong answers',
  description: `Greedy-generates an answer for each {prompt | messages, answer} record, grades it (--metric),
computes uncertainty scores of the answer (msp, log_perplexity, mean/max entropy, margin, log-prob
quantiles; with --mc-dropout T also predictive/expected entropy, mutual information and NLL
mean/variance) and reports accuracy, per score the AUROC / AUPR of detecting wrong answers
(positive = wrong), PRR and AURC, and for the confidence exp(mean log-prob) (or --calibrator's
output) ECE, MCE, Brier and NLL. Writes predictions.jsonl (prompt, reference, answer, correct,
confidence, every score).`,
  options,
  examples: [
    'attune eval --model ./model --data qa.jsonl --stop "\\n" --json',
    'attune eval --model ./model --adapter runs/x/adapter --data qa.jsonl --mc-dropout 10',
  ],
  async run(args, io) {
    const v = args.values;
    if (!v.data) throw new UsageError('eval: --data <file> is required');
    const metric = parseChoice('--metric', v.metric, GRADE_METRICS) as GradeMetric;
    const passes = parseInteger('--mc-dropout', v['mc-dropout'], 0);
    const rate = parsePositiveNumber('--mc-rate', v['mc-rate']);
    const bins = parseInteger('--bins', v.bins);
    const maxNewTokens = parseInteger('--max-new-tokens', v['max-new-tokens']);
    const records = readEvalRecords(v.data);
    let calibrate: ((c: number) => number) | undefined;
    if (v.calibrator) {
      const c = loadCalibrator(v.calibrator);
      if (c.type === 'temperature') {
        throw new UsageError(
          'eval: a temperature calibrator rescales token logits; pass a platt or isotonic calibrator of the confidence',
        );
      }
      calibrate = (x) => c.apply(x);
    }
    const loaded = loadModelFromFlags(v, 'eval');
    if (!loaded.tokenizer) throw new UsageError(`eval: ${loaded.dir} has no tokenizer.json`);
    const bar = progress({
      label: 'eval',
      total: records.length,
      stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
    });
    const predictions = predict(loaded.model, loaded.tokenizer, records, {
      metric,
      maxNewTokens,
      stop: v.stop.map(unescapeStop),
      eosTokenIds: loaded.eosTokenIds,
      mcDropout: passes > 0 ? { passes, rate, seed: 0 } : undefined,
      calibrate,
      onProgress: (done) => bar.update(done),
    });
    bar.stop();
    if (v.scores) {
      const wanted = v.scores.split(',').map((s) => s.trim());
      const known = Object.keys(predictions[0]!.scores);
      const unknown = wanted.filter((w) => !known.includes(w));
      if (unknown.length > 0)
        throw new UsageError(`eval: unknown score(s) ${unknown.join(', ')} (available: ${known.join(', ')})`);
      for (const p of predictions)
        for (const k of Object.keys(p.scores)) if (!wanted.includes(k)) delete p.scores[k];
    }
    const summary = summarizePredictions(predictions, { bins });
    const outDir = v.out ?? join(v.data, '..');
    mkdirSync(outDir, { recursive: true });
    const predictionsPath = join(outDir, 'predictions.jsonl');
    writeTextAtomic(
      predictionsPath,
      predictions
        .map((p) =>
          JSON.stringify({
            prompt: p.prompt,
            reference: p.reference,
            answer: p.answer,
            correct: p.correct,
            confidence: p.confidence,
            ...p.scores,
            ...p.extra,
          }),
        )
        .join('\n') + '\n',
    );
    io.line(`accuracy ${summary.accuracy?.toFixed(4) ?? 'n/a'} on ${summary.n} records (${metric} match)`);
    io.out(
      formatTable(
        Object.entries(summary.scores).map(([name, s]) => ({
          score: name,
          auroc: s.auroc,
          aupr: s.aupr,
          prr: s.prr,
          aurc: s.aurc,
        })),
      ),
    );
    const c = summary.confidence;
    io.line(
      `confidence: ECE ${c.ece?.toFixed(4) ?? 'n/a'} (${c.bins} bins), MCE ${c.mce?.toFixed(4) ?? 'n/a'}, Brier ${c.brier?.toFixed(4) ?? 'n/a'}, NLL ${c.nll?.toFixed(4) ?? 'n/a'}`,
    );
    io.line(`predictions: ${predictionsPath}`);
    if (v.json) io.json({ ...summary, metric, predictions: predictionsPath });
    return 0;
  },
});

/** `attune eval`: generate answers, grade them, and judge the model's uncertainty. */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, UsageError } from '../../errors.ts';
import {
  abstentionOutcome,
  adapterIdentity,
  type CalibratorFile,
  calibratorScore,
  checkCalibratorScore,
  checkFittedModel,
  checkPredictionsWritable,
  type EvalSummary,
  extraPassScores,
  GRADE_METRICS,
  loadCalibratorFile,
  loadDensityFile,
  loadHeadFile,
  loadThreshold,
  modelIdentity,
  outcomeJSON,
  PREDICTIONS_FILE,
  predict,
  readEvalRecords,
  SCORE_NAMES,
  samplingScores,
  selectScores,
  summarizePredictions,
  writePredictionsFile,
} from '../../uq/index.ts';
import { importOption, jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import {
  fusionOptions,
  loadRunnableFromFlags,
  modelOptions,
  readChatTemplate,
  requireChatTemplate,
  unescapeStop,
} from '../model-options.ts';
import { importPlugins } from '../plugins.ts';
import { progress } from '../progress.ts';
import { formatTable } from '../table.ts';

const options = {
  ...modelOptions,
  model: { ...modelOptions.model, required: false },
  ...fusionOptions,
  data: {
    type: 'path',
    required: true,
    description: 'JSONL of {prompt | messages, answer} records',
    valueName: '<file>',
  },
  metric: { type: 'choice', choices: GRADE_METRICS, description: 'grading', default: 'exact' },
  scores: {
    type: 'string',
    description: 'comma-separated scores to report',
    defaultText:
      'all single-pass scores, plus MC-dropout ones with --mc-dropout and sampling ones with --samples',
    valueName: '<a,b,...>',
  },
  'mc-dropout': {
    type: 'integer',
    min: 0,
    description: 'MC-dropout passes T (0 = off)',
    default: 0,
    valueName: '<T>',
  },
  'mc-rate': {
    type: 'number',
    min: 0,
    max: 1,
    exclusiveMin: true,
    exclusiveMax: true,
    description: 'dropout rate forced on for MC dropout',
    default: 0.1,
    valueName: '<p>',
  },
  batch: {
    type: 'integer',
    min: 1,
    description: 'greedy answers decoded together (batched generation; answers equal one at a time)',
    default: 1,
    valueName: '<N>',
  },
  samples: {
    type: 'integer',
    min: 0,
    description:
      'sample N answers per question (decoded together) for the sampling scores: semantic entropy, number of semantic sets, lexical similarity, eig_val_laplacian, deg_mat, eccentricity (0 = off)',
    default: 0,
    valueName: '<N>',
  },
  temperature: {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    description: 'sampling temperature of --samples',
    default: 1,
    valueName: '<T>',
  },
  'sample-seed': {
    type: 'integer',
    min: 0,
    description: 'base seed of --samples',
    default: 0,
    valueName: '<s>',
  },
  cluster: {
    type: 'choice',
    choices: ['exact', 'rougeL'],
    description:
      'how --samples answers are grouped into meanings: normalised exact match, or ROUGE-L >= --rouge-threshold',
    default: 'exact',
  },
  'rouge-threshold': {
    type: 'number',
    min: 0,
    max: 1,
    description: 'ROUGE-L threshold of --cluster rougeL',
    default: 0.5,
    valueName: '<r>',
  },
  extra: {
    type: 'string',
    description:
      'comma-separated extra-pass scores, each one more forward pass or generation per question: p_true, verbalized, rauq, mahalanobis, relative_mahalanobis (the last two need --density), or all',
    valueName: '<a,b,...|all>',
  },
  density: {
    type: 'path',
    description:
      'hidden-state density (attune uq fit-density) for the mahalanobis scores; refused for another model or adapter',
    valueName: '<density.json>',
  },
  calibrator: {
    type: 'path',
    description:
      'calibrator JSON (attune calibrate fit: temperature, platt or isotonic) giving the confidence',
    valueName: '<file>',
  },
  abstain: {
    type: 'path',
    description:
      'threshold JSON (attune calibrate conformal --out): abstain below it, report realised risk and coverage',
    valueName: '<thr.json>',
  },
  'chat-template': {
    type: 'path',
    description: 'Jinja chat template file for {messages} records, for models that ship none',
    valueName: '<file>',
  },
  'max-new-tokens': { type: 'integer', min: 1, description: 'answer length limit in tokens', default: 32 },
  head: {
    type: 'path',
    multiple: true,
    description:
      'fitted uncertainty head folder (attune uq fit-head) for the evidential_vacuity / deup / bayescap scores, one per kind; refused for another model or adapter',
    valueName: '<dir>',
  },
  stop: {
    type: 'string',
    multiple: true,
    description: 'stop string ending an answer (e.g. "\\n")',
    valueName: '<text>',
  },
  bins: { type: 'integer', min: 1, description: 'ECE bins (equal width)', default: 15 },
  out: {
    type: 'path',
    description: `directory for ${PREDICTIONS_FILE}`,
    defaultText: 'the folder of --data',
    valueName: '<dir>',
  },
  overwrite: { type: 'boolean', description: `replace an existing ${PREDICTIONS_FILE}` },
  import: importOption,
  json: jsonOption,
} as const;

/**
 * The extra-pass scores to compute: those of --extra ('all' = every one that can run: the
 * mahalanobis ones only with a density, relative only with its background) plus any named in
 * --scores. A density score without --density is a UsageError.
 */
export function resolveExtraScores(
  extraFlag: string | undefined,
  wanted: readonly string[] | undefined,
  available: readonly string[],
  density: { background: unknown } | undefined,
  headKinds: readonly string[] = [],
): string[] {
  // a head score (requires 'head') runs only with a head of its kind (eval --head DIR)
  const headOf = (name: string) =>
    extraPassScores().find((s) => s.name === name && s.requires === 'head')?.headKind;
  const listed = extraFlag?.split(',').map((s) => s.trim()) ?? [];
  if (listed.some((s) => s === ''))
    throw new UsageError(`--extra: expected comma-separated score names, got ${JSON.stringify(extraFlag)}`);
  const runnable = (name: string) =>
    name === 'relative_mahalanobis'
      ? density?.background != null
      : name === 'mahalanobis'
        ? density !== undefined
        : headOf(name) === undefined || headKinds.includes(headOf(name)!);
  const names = listed.includes('all')
    ? available.filter(runnable)
    : [...listed, ...(wanted ?? []).filter((w) => available.includes(w) && !listed.includes(w))];
  const unknown = names.filter((n) => !available.includes(n));
  if (unknown.length > 0)
    throw new UsageError(
      `--extra: unknown score(s) ${unknown.join(', ')} (available: ${available.join(', ')}, all)`,
    );
  const needDensity = names.filter((n) => n === 'mahalanobis' || n === 'relative_mahalanobis');
  if (needDensity.length > 0 && density === undefined)
    throw new UsageError(
      `${needDensity.join(', ')}: need a fitted density: add --density FILE (attune uq fit-density)`,
    );
  if (names.includes('relative_mahalanobis') && density?.background == null)
    throw new UsageError('relative_mahalanobis: the --density file was fitted without --background data');
  const needHead = names.filter((n) => headOf(n) !== undefined && !headKinds.includes(headOf(n)!));
  if (needHead.length > 0)
    throw new UsageError(
      `${needHead.map((n) => `${n} needs a fitted ${headOf(n)} head`).join(', ')}: add --head DIR (attune uq fit-head)`,
    );
  return names;
}

/** Null metrics of `names` grouped by reason: `auroc, aupr: only one class`. */
function nullReasons(notes: Record<string, string>, prefix: string, names: readonly string[]): string {
  const byReason = new Map<string, string[]>();
  for (const name of names) {
    const reason = notes[`${prefix}.${name}`];
    if (reason !== undefined) byReason.set(reason, [...(byReason.get(reason) ?? []), name]);
  }
  return [...byReason].map(([reason, metrics]) => `${metrics.join(', ')}: ${reason}`).join('; ');
}

const fixed = (x: number | null) => x?.toFixed(4) ?? '-';

/**
 * What `eval` prints: the accuracy line, a table of each score's detection metrics with the reason
 * of any null one (`-`) in a note column, and the confidence's calibration line (reasons too).
 */
export function formatEvalSummary(summary: EvalSummary, metric: string): string {
  const ranking = ['auroc', 'aupr', 'prr', 'aurc'] as const;
  const rows = Object.entries(summary.scores).map(([name, s]) => ({
    score: name,
    auroc: s.auroc,
    aupr: s.aupr,
    prr: s.prr,
    aurc: s.aurc,
    note: nullReasons(summary.notes, name, ranking),
  }));
  const c = summary.confidence;
  const why = nullReasons(summary.notes, 'confidence', ['ece', 'mce', 'brier', 'nll']);
  return [
    `accuracy ${summary.accuracy?.toFixed(4) ?? '-'} on ${summary.n} records (${metric} match)\n`,
    formatTable(rows, ['score', ...ranking, 'note']),
    `confidence${summary.uncalibrated ? ' (calibrated)' : ''}: ECE ${fixed(c.ece)} (${c.bins} bins), MCE ${fixed(c.mce)}, Brier ${fixed(c.brier)}, NLL ${fixed(c.nll)}${why ? ` (${why})` : ''}\n`,
    summary.missing
      ? `no value (left out of that score's metrics): ${Object.entries(summary.missing)
          .map(([name, count]) => `${name} ${count} of ${summary.n}`)
          .join(', ')}\n`
      : '',
    summary.uncalibrated
      ? `uncalibrated: ECE ${fixed(summary.uncalibrated.confidence.ece)}, MCE ${fixed(summary.uncalibrated.confidence.mce)}, Brier ${fixed(summary.uncalibrated.confidence.brier)}, NLL ${fixed(summary.uncalibrated.confidence.nll)}\n`
      : '',
  ].join('');
}

/** `attune eval --model DIR [--adapter DIR] --data FILE.jsonl [...]`. */
export const evalCommand = defineCommand({
  name: 'eval',
  summary: 'Answer questions, grade them, and measure how well uncertainty detects wrong answers',
  description: `Greedy-generates an answer for each {prompt | messages, answer} record, grades it (--metric),
computes uncertainty scores of the answer (msp, log_perplexity, mean/max entropy, margin, log-prob
quantiles; with --mc-dropout T also predictive/expected entropy, mutual information and NLL
mean/variance; with --samples N the sampling scores of N answers sampled at --temperature; with
--extra the scores that cost one more pass per question: p_true, verbalized, rauq, and with
--density (attune uq fit-density) mahalanobis and relative_mahalanobis) and
reports accuracy, per score the AUROC / AUPR of detecting wrong answers (positive = wrong), PRR and AURC, and for the confidence exp(mean log-prob) ECE, MCE, Brier and
NLL. With --calibrator (any kind from attune calibrate fit; refused when fitted on another model or
adapter) the confidence is the calibrated one and the raw metrics sit under "uncalibrated". With
--abstain (attune calibrate conformal --out) it also reports the realised risk and coverage of
answering only when confidence >= the threshold. A metric that is undefined (e.g. every answer right) is shown as -
with the reason. Writes predictions.jsonl (prompt, reference, answer, correct, confidence, every
score) into --out, and never replaces an existing one without --overwrite (checked first).

Weak-to-strong fusion: --strong DIR[:ADAPTER] with --weak-tuned DIR[:ADAPTER] (repeatable) and
--weak-base DIR[:ADAPTER] (once, or once per --weak-tuned) replace --model: answers and every score
come from the fused distribution (see attune generate --help); --json adds the mean expert weights.`,
  options,
  examples: [
    'attune eval --model ./model --data qa.jsonl --stop "\\n" --json',
    'attune eval --model ./model --adapter runs/x/adapter --data qa.jsonl --mc-dropout 10',
    'attune eval --strong ./large --weak-base ./small --weak-tuned ./small:runs/x/adapter --data qa.jsonl --json',
  ],
  async run(args, io) {
    await importPlugins(args.values.import);
    const v = args.values;
    const outDir = v.out ?? dirname(v.data);
    const predictionsPath = join(outDir, PREDICTIONS_FILE);
    checkPredictionsWritable(predictionsPath, v.overwrite);
    const records = readEvalRecords(v.data);
    const wanted = v.scores?.split(',').map((s) => s.trim());
    if (wanted?.some((s) => s === ''))
      throw new UsageError(`--scores: expected comma-separated score names, got ${JSON.stringify(v.scores)}`);
    const chatTemplate = v['chat-template'] !== undefined ? readChatTemplate(v['chat-template']) : undefined;
    if (v.strong !== undefined && (v.calibrator !== undefined || v['mc-dropout'] > 0))
      throw new UsageError(
        `eval: ${v.calibrator !== undefined ? '--calibrator (fitted on one model)' : '--mc-dropout (dropout of one model)'} does not apply to a fusion (--strong)`,
      );
    let calibrator: CalibratorFile | undefined;
    if (v.calibrator && v.model !== undefined) {
      calibrator = loadCalibratorFile(v.calibrator);
      // a calibrator fitted from a predictions file names no model: nothing to hash or compare
      if (calibrator.fittedOn?.model)
        checkFittedModel(
          calibrator.fittedOn,
          v.calibrator,
          modelIdentity(v.model),
          v.adapter !== undefined ? adapterIdentity(v.adapter) : null,
        );
    }
    // MC-dropout score names are known only once computed: those are checked on the first answer
    if (calibrator && v['mc-dropout'] === 0)
      checkCalibratorScore(
        calibrator,
        ['confidence', ...SCORE_NAMES, ...extraPassScores().map((sc) => sc.name)],
        '; MC-dropout scores need --mc-dropout',
      );
    const threshold = v.abstain !== undefined ? loadThreshold(v.abstain) : undefined;
    if (threshold && threshold.confidence !== 'confidence')
      throw new UsageError(
        `eval --abstain: ${v.abstain} is a threshold on the field "${threshold.confidence}"; eval applies thresholds on its confidence (fit one with calibrate conformal --confidence confidence)`,
      );
    const passes = v['mc-dropout'];
    const sampling = samplingScores().map((sc) => sc.name);
    const wantsSampling = wanted?.filter((w) => sampling.includes(w)) ?? [];
    if (wantsSampling.length > 0 && v.samples === 0)
      throw new UsageError(
        `--scores: ${wantsSampling.join(', ')} need sampled answers: add --samples N (N >= 2)`,
      );
    const extraNames = extraPassScores().map((sc) => sc.name);
    const density = v.density !== undefined ? loadDensityFile(v.density) : undefined;
    const heads = v.head.map((dir) => loadHeadFile(dir));
    heads.forEach((h, i) => {
      const twin = heads.findIndex((o) => o.head.kind === h.head.kind);
      if (twin !== i)
        throw new UsageError(
          `--head: ${v.head[twin]} and ${v.head[i]} are both ${h.head.kind} heads; pass one per kind`,
        );
    });
    // a calibrator of an extra-pass score (calibrate fit --score p_true) needs that score computed
    const calibrated = calibrator ? calibratorScore(calibrator) : undefined;
    const extra = resolveExtraScores(
      v.extra,
      [...(wanted ?? []), ...(calibrated && extraNames.includes(calibrated) ? [calibrated] : [])],
      extraNames,
      density,
      heads.map((h) => h.head.kind),
    );
    if (heads.length > 0 && v.model === undefined)
      throw new UsageError('--head: a fitted head applies to one --model, not to a fused --strong model');
    for (const [i, h] of heads.entries())
      checkFittedModel(
        h.fittedOn,
        v.head[i]!,
        modelIdentity(v.model!),
        v.adapter !== undefined ? adapterIdentity(v.adapter) : null,
        'head',
      );
    if (density && v.model === undefined)
      throw new UsageError(
        '--density: a fitted density applies to one --model, not to a fused --strong model',
      );
    if (density)
      checkFittedModel(
        density.fittedOn,
        v.density!,
        modelIdentity(v.model!),
        v.adapter !== undefined ? adapterIdentity(v.adapter) : null,
        'density',
      );
    if (v.samples === 1) throw new UsageError('--samples: sampling scores need at least 2 samples, found 1');
    const loaded = loadRunnableFromFlags(v, 'eval');
    // a fusion reports the mean of its per-token expert weights
    const weightSums: number[] = [];
    let weightCount = 0;
    if (loaded.fused)
      loaded.fused.onWeights = (w) => {
        w.forEach((x, i) => {
          weightSums[i] = (weightSums[i] ?? 0) + x;
        });
        weightCount++;
      };
    if (!loaded.tokenizer) throw new UsageError(`eval: ${loaded.dir} has no tokenizer.json`);
    if (density && density.hiddenSize !== loaded.model.config.hiddenSize)
      throw new ConfigError(
        `eval --density: ${v.density} was fitted on hidden states of size ${density.hiddenSize}, the model's are ${loaded.model.config.hiddenSize}`,
      );
    for (const [i, h] of heads.entries())
      if (h.head.dim !== loaded.model.config.hiddenSize)
        throw new ConfigError(
          `eval --head: ${v.head[i]} was fitted on hidden states of size ${h.head.dim}, the model's are ${loaded.model.config.hiddenSize}`,
        );
    if (chatTemplate === undefined && records.some((r) => r.messages !== undefined))
      requireChatTemplate(loaded.tokenizer, `eval: ${v.data} has {messages} records but`);
    const bar = progress({
      label: 'eval',
      total: records.length,
      stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
    });
    const predictions = predict(loaded.model, loaded.tokenizer, records, {
      metric: v.metric,
      maxNewTokens: v['max-new-tokens'],
      stop: v.stop.map(unescapeStop),
      eosTokenIds: loaded.eosTokenIds,
      mcDropout: passes > 0 ? { passes, rate: v['mc-rate'], seed: 0 } : undefined,
      calibrator,
      chatTemplate,
      batch: v.batch,
      extra,
      density,
      heads,
      samples:
        v.samples > 0
          ? {
              n: v.samples,
              temperature: v.temperature,
              seed: v['sample-seed'],
              cluster: v.cluster as 'exact' | 'rougeL',
              rougeThreshold: v['rouge-threshold'],
            }
          : undefined,
      onProgress: (done) => bar.update(done),
    });
    bar.stop();
    if (wanted) selectScores(predictions, wanted);
    const summary = summarizePredictions(predictions, { bins: v.bins });
    mkdirSync(outDir, { recursive: true });
    writePredictionsFile(predictionsPath, predictions, { overwrite: v.overwrite });
    io.out(formatEvalSummary(summary, v.metric));
    let abstention: Record<string, unknown> | undefined;
    if (threshold) {
      const outcome = abstentionOutcome(
        predictions.map((p) => p.confidence),
        predictions.map((p) => p.correct),
        threshold.threshold,
      );
      const target = threshold.guarantee === 'marginal' ? outcome.risk : outcome.selectiveRisk;
      abstention = {
        threshold: threshold.threshold,
        guarantee: threshold.guarantee,
        alpha: threshold.alpha,
        delta: threshold.delta,
        ...outcomeJSON(outcome),
      };
      io.line(
        `abstention (${threshold.guarantee}, alpha ${threshold.alpha}, threshold ${threshold.threshold ?? 'none: abstain on all'}): answered ${outcome.answered} of ${outcome.n} (coverage ${fixed(outcome.coverage)}), realised ${threshold.guarantee === 'marginal' ? 'risk' : 'error among answered'} ${fixed(target)}`,
      );
    }
    io.line(`predictions: ${predictionsPath}`);
    if (v.json)
      io.json({
        ...summary,
        ...(abstention ? { abstention } : {}),
        metric: v.metric,
        predictions: predictionsPath,
        ...(loaded.fused
          ? {
              fusion: {
                weights: v['fusion-weights'],
                mean_weights: weightSums.map((s) => (weightCount > 0 ? s / weightCount : null)),
              },
            }
          : {}),
      });
    return 0;
  },
});

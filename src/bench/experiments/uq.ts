/**
 * Bench experiment `uq` (issue 18, item 6): on each seed's LoRA + CE adapter (the method row's run
 * when the bench has it, else trained with the same recipe), on the world's mixed set:
 *   - PRR and AUROC (positive = wrong) of every uncertainty score, the extra-pass ones included
 *     (p_true, verbalized, rauq, and mahalanobis / relative_mahalanobis with a density fitted on the
 *     fine-tuning file, background = the pretraining corpus, and the learned heads evidential_vacuity
 *     / deup / bayescap fitted on the held-out paraphrases) and the sampling ones (SAMPLES answers
 *     per question at SAMPLE_TEMPERATURE, decoded together; the clustered ones both by exact match
 *     and, as `<name>@rougeL`, by ROUGE-L): one row per score, `uq-score + <name>`;
 *   - ECE of the confidence without a calibrator and after each calibrator fitted on the held-out
 *     paraphrase file (finetune-paraphrases.jsonl, not trained on): rows `uq-calibrator + <kind>`;
 *   - the conformal threshold's realised risk against alpha over 20 random calibration/test splits
 *     of the mixed set (raw confidence; marginal and selective): rows `uq-conformal + <guarantee>`.
 * Every row carries the LoRA + CE run's own accuracy columns (it is that run, measured again).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeJsonAtomic } from '../../io/index.ts';
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import {
  type AnswerSamples,
  type CalibratorFile,
  conformalSplits,
  type DensityFile,
  type EvalRecord,
  extraPassScores,
  fitDensityOnSequences,
  fitHead,
  fitScoreCalibrator,
  fitTemperatureOnRecords,
  HEAD_KINDS,
  type HeadFile,
  headExamplesFromPredictions,
  predict,
  predictionMetrics,
  readDensityRecords,
  readEvalRecords,
  scoresOfSamples,
  summarizePredictions,
} from '../../uq/index.ts';
import { takePerSplit } from '../../world/index.ts';
import { type ExperimentContext, type ExperimentRun, registerExperiment } from '../experiment.ts';
import type { RunResult } from '../methods.ts';

/** The risk level of the conformal rows. */
const ALPHA = 0.1;
const DELTA = 0.1;
const SPLITS = 20;
const CALIBRATORS = ['none', 'temperature', 'platt', 'isotonic'] as const;
/** Sampled answers per question of the sampling scores, and their temperature (docs/uq.md says why). */
export const SAMPLES = 10;
export const SAMPLE_TEMPERATURE = 0.5;
/** Greedy answers decoded together (batched generation; the answers equal those decoded alone). */
const BATCH = 8;
/** The measurement file's layout: a cached file of another version is measured again. */
const VERSION = 2;

/** A calibrator of a score (Platt, isotonic). */
type ScoreMap = { apply(score: number): number };

type Measurement = {
  version: number;
  /** How the sampling scores sampled (a cached file that sampled otherwise is measured again). */
  samples: { n: number; temperature: number };
  scores: Record<string, { prr: number | null; auroc: number | null; missing: number }>;
  ece: Record<(typeof CALIBRATORS)[number], number | null>;
  conformal: Record<'marginal' | 'selective', Record<string, number | null>>;
  n: number;
};

/**
 * The LoRA + CE method row's run of `seed` (ctx.methodRun: the very run the row measured), with
 * the row's measurements when the bench kept them beside it (so nothing is evaluated twice).
 */
function loraCeRun(ctx: ExperimentContext, seed: number): { run: ExperimentRun; result: RunResult | null } {
  const run = ctx.methodRun('lora', 'ce', seed);
  const resultFile = join(dirname(run.runDir), 'result.json');
  const result = existsSync(resultFile) ? (JSON.parse(readFileSync(resultFile, 'utf8')) as RunResult) : null;
  return { run, result };
}

/** finetune-paraphrases.jsonl as eval records ({prompt, completion} -> {prompt, answer}). */
function heldoutRecords(worldDir: string, limit: number | null): EvalRecord[] {
  const lines = readFileSync(join(worldDir, 'finetune-paraphrases.jsonl'), 'utf8').split('\n');
  const records = lines
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as { prompt: string; completion: string })
    .map((r) => ({ prompt: r.prompt, answer: r.completion.trim() }));
  return limit === null ? records : records.slice(0, limit);
}

/** Every measurement of one seed's adapter (cached in the experiment's folder). */
function measure(ctx: ExperimentContext, seed: number, run: ExperimentRun): Measurement {
  const file = join(ctx.work, `measure-seed${seed}.json`);
  if (existsSync(file)) {
    const cached = JSON.parse(readFileSync(file, 'utf8')) as Measurement;
    const same = cached.samples?.n === SAMPLES && cached.samples.temperature === SAMPLE_TEMPERATURE;
    if (cached.version === VERSION && same) return cached;
  }
  const loaded = loadModel(run.modelDir);
  if (run.adapterDir) loadAdapter(loaded.model, run.adapterDir);
  const { model, eosTokenIds } = loaded;
  const tokenizer = loaded.tokenizer!;
  const perSplit = ctx.budget.evalPerSplit;
  const mixed = takePerSplit(readEvalRecords(join(ctx.worldDir, 'eval_mixed.jsonl')), perSplit);
  const heldout = heldoutRecords(ctx.worldDir, perSplit === null ? null : 2 * perSplit);
  const cap = ctx.quick ? 200 : 1000;
  const maxTokens = ctx.budget.maxLength;
  ctx.phase(`seed ${seed}: density`, 2);
  const sequences = (path: string) => readDensityRecords(path, tokenizer, { maxTokens }).slice(0, cap);
  const inDomain = fitDensityOnSequences(model, sequences(ctx.trainFile));
  ctx.progress(1);
  const background = fitDensityOnSequences(model, sequences(join(ctx.worldDir, 'pretrain.jsonl')));
  ctx.progress(2);
  const density: DensityFile = {
    type: 'gaussian-density',
    version: 1,
    hiddenSize: model.config.hiddenSize,
    ridge: 1e-3,
    inDomain,
    background,
    fittedOn: {
      method: 'mahalanobis',
      score: 'hidden_mean',
      model: null,
      adapter: null,
      data: { path: ctx.trainFile, sha256: '' },
      n: inDomain.n,
    },
    backgroundData: null,
  };
  const opts = { stop: ['\n'], maxNewTokens: 24, eosTokenIds };
  ctx.phase(`seed ${seed}: calibrators on held-out paraphrases`, heldout.length);
  const temperature = fitTemperatureOnRecords(model, tokenizer, heldout).calibrator;
  const heldIds: { promptIds: readonly number[]; answerIds: readonly number[] }[] = [];
  const held = predict(model, tokenizer, heldout, {
    ...opts,
    batch: BATCH,
    onAnswer: (i, pair) => {
      heldIds[i] = pair;
    },
    onProgress: (d) => ctx.progress(d),
  });
  // the learned heads (evidential, deup, bayescap) are fitted on the same held-out answers
  const { examples } = headExamplesFromPredictions(model, held, heldIds);
  const heads: HeadFile[] = (examples.length >= 2 ? HEAD_KINDS : []).map((kind) => ({
    type: 'uq-head',
    version: 1,
    head: fitHead(kind, examples),
    fittedOn: {
      method: kind,
      score: 'hidden_mean',
      model: null,
      adapter: null,
      data: { path: 'finetune-paraphrases.jsonl', sha256: '' },
      n: examples.length,
    },
  }));
  const heldConfidence = held.map((p) => p.confidence);
  const heldCorrect = held.map((p) => p.correct);
  // Platt and isotonic map a confidence to a confidence (temperature is the one that reads logits)
  const platt = fitScoreCalibrator('platt', heldConfidence, heldCorrect, 'confidence') as ScoreMap;
  const isotonic = fitScoreCalibrator('isotonic', heldConfidence, heldCorrect, 'confidence') as ScoreMap;
  ctx.phase(`seed ${seed}: every score on the mixed set`, mixed.length);
  const temperatureFile: CalibratorFile = {
    path: 'bench uq (temperature)',
    calibrator: temperature,
    fittedOn: null,
  };
  // the clustered sampling scores again, on the same samples, with answers grouped by ROUGE-L
  const rougeL: Record<string, number>[] = [];
  const preds = predict(model, tokenizer, mixed, {
    ...opts,
    batch: BATCH,
    // seeds disjoint across the bench's seeds (sample j of record i: base + i * SAMPLES + j)
    samples: {
      n: SAMPLES,
      temperature: SAMPLE_TEMPERATURE,
      seed: seed * SAMPLES * mixed.length,
      cluster: 'exact',
    },
    onSamples: (i, samples: AnswerSamples) => {
      const scores = scoresOfSamples({ ...samples, cluster: 'rougeL' }, (s) => s.clustered === true);
      rougeL[i] = Object.fromEntries(Object.entries(scores).map(([name, v]) => [`${name}@rougeL`, v]));
    },
    extra: extraPassScores()
      .filter((s) => s.requires !== 'head' || heads.some((h) => h.head.kind === s.headKind))
      .map((s) => s.name),
    density,
    heads,
    calibrator: temperatureFile,
    onProgress: (d) => ctx.progress(d),
  });
  for (const [i, p] of preds.entries()) Object.assign(p.scores, rougeL[i]);
  const summary = summarizePredictions(preds);
  const correct = preds.map((p) => p.correct);
  const raw = preds.map((p) => p.uncalibratedConfidence!);
  const ece = (confidence: number[]) => predictionMetrics({ correct, confidence }).ece;
  const conformal = (guarantee: 'marginal' | 'selective') => {
    const s = conformalSplits(raw, correct, { alpha: ALPHA, guarantee, delta: DELTA, splits: SPLITS, seed });
    return {
      alpha: ALPHA,
      realised_risk: s.risk.mean,
      realised_risk_std: s.risk.std,
      coverage: s.coverage.mean,
      violations: s.violations,
    };
  };
  const m: Measurement = {
    version: VERSION,
    samples: { n: SAMPLES, temperature: SAMPLE_TEMPERATURE },
    n: preds.length,
    scores: Object.fromEntries(
      Object.entries(summary.scores).map(([name, s]) => [
        name,
        { prr: s.prr, auroc: s.auroc, missing: summary.missing?.[name] ?? 0 },
      ]),
    ),
    ece: {
      none: ece(raw),
      temperature: ece(preds.map((p) => p.confidence)),
      platt: ece(raw.map((c) => platt.apply(c))),
      isotonic: ece(raw.map((c) => isotonic.apply(c))),
    },
    conformal: { marginal: conformal('marginal'), selective: conformal('selective') },
  };
  mkdirSync(ctx.work, { recursive: true });
  writeJsonAtomic(file, m as unknown as Record<string, unknown>);
  return m;
}

registerExperiment({
  name: 'uq',
  description:
    'every uncertainty score (PRR, AUROC; single-pass, extra-pass, sampling and learned heads), ECE before / after each calibrator, conformal realised risk vs alpha, on the LoRA + CE adapters',
  // trained in the bench's first wave on an executor, so no experiment unit trains it twice at once
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  run(ctx) {
    const perSeed = ctx.seeds.map((seed) => {
      const { run, result } = loraCeRun(ctx, seed);
      const base = result ?? ctx.evaluate({ method: 'uq-lora', loss: 'ce' }, seed, run, run.cost);
      return { seed, base, m: measure(ctx, seed, run) };
    });
    const row = (method: string, loss: string, extra: (m: Measurement) => Record<string, number | null>) =>
      perSeed.map(({ seed, base, m }) => ({ ...base, method, loss, seed, extra: { ...extra(m), n: m.n } }));
    const scoreNames = Object.keys(perSeed[0]?.m.scores ?? {});
    return [
      ...scoreNames.map((name) =>
        row('uq-score', name, (m) => ({
          prr: m.scores[name]?.prr ?? null,
          auroc: m.scores[name]?.auroc ?? null,
          missing: m.scores[name]?.missing ?? null,
        })),
      ),
      ...CALIBRATORS.map((c) => row('uq-calibrator', c, (m) => ({ ece: m.ece[c] }))),
      ...(['marginal', 'selective'] as const).map((g) => row('uq-conformal', g, (m) => m.conformal[g])),
    ];
  },
  headlines: [
    {
      paper: 'Uncertainty-Aware Attention Heads: Efficient Unsupervised Uncertainty Quantification for LLMs',
      claim: 'RAUQ ranks wrong answers better (PRR) than the sequence probability (MSP)',
      metric: 'extra.prr',
      sign: 1,
      kind: 'better',
      baseline: { method: 'uq-score', loss: 'msp' },
      treatment: { method: 'uq-score', loss: 'rauq' },
    },
    ...(['temperature', 'platt', 'isotonic'] as const).map((c) => ({
      paper: 'On Calibration of Modern Neural Networks',
      claim: `${c} fitted on held-out data lowers the ECE of the confidence on the mixed set`,
      metric: 'extra.ece' as const,
      sign: -1 as const,
      kind: 'better' as const,
      baseline: { method: 'uq-calibrator', loss: 'none' },
      treatment: { method: 'uq-calibrator', loss: c },
    })),
  ],
});

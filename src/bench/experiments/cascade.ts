/**
 * Cascades ("Language Model Cascades: Token-level uncertainty and beyond"): the small world base
 * fine-tuned with LoRA (the bench's lora + ce run of each seed) answers the mixed questions first,
 * and defers to the large world base fine-tuned the same way. Per seed, the questions are split in
 * half (seeded); the post-hoc MLP and the Chow-Quantile level are chosen on one half and every rule
 * is scored on the other by AUC-DF (quality against deferral rate), under two quality measures:
 * exact match (`extra.auc_df`) and graded ROUGE-L F vs the gold (`extra.auc_df_rougeL`). The
 * post-hoc MLP is fitted with its default target (`better`) and, as row `post_hoc_mlp_diff`, with
 * the quality-difference target. Rows `cascade(<rule>)` also carry the random and oracle AUC-DF and
 * both models' accuracies and mean ROUGE-L for context. Every
 * rule is scored on the same models and questions in a seed, so the headlines compare rules by
 * their per-seed gain over the baseline rule (`extra.gain_vs_chow_sum`, a paired comparison: the
 * seed-to-seed spread of both models' accuracy cancels).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../io/index.ts';
import {
  type CascadeExample,
  type CascadePrediction,
  type CascadeQuality,
  type CascadeReport,
  cascadeExamples,
  deferralCurve,
  evaluateCascade,
  QUANTILE_GRID,
  quantileFeatures,
  splitHeldOut,
} from '../../uq/index.ts';
import { registerExperiment } from '../experiment.ts';
import type { RunResult } from '../methods.ts';

const PAPER = 'Language Model Cascades: Token-level uncertainty and beyond';

/**
 * The rules reported as rows: the two Chow baselines, Chow-Quantile, the post-hoc MLP (target
 * `better`, then `diff`), random, oracle.
 */
export const CASCADE_ROWS = [
  'chow_sum',
  'chow_average',
  'chow_quantile',
  'post_hoc_mlp',
  'post_hoc_mlp_diff',
  'random',
  'oracle',
] as const;

/** The Chow-Quantile level with the best AUC-DF on `heldOut` (ties: the lower level). */
export function bestQuantile(heldOut: readonly CascadeExample[]): number {
  let best: number = QUANTILE_GRID[0];
  let bestAuc = Number.NEGATIVE_INFINITY;
  QUANTILE_GRID.forEach((a, i) => {
    const auc = deferralCurve(
      heldOut.map((e) => quantileFeatures(e.logprobs)[i]!),
      heldOut,
    ).aucDf;
    if (auc > bestAuc + 1e-12) {
      bestAuc = auc;
      best = a;
    }
  });
  return best;
}

/**
 * AUC-DF per reported row from a cascade report (post-hoc target `better`), the same cascade with
 * the `diff` target, and the chosen quantile level.
 */
export function cascadeAucs(
  report: CascadeReport,
  diffReport: CascadeReport,
  quantile: number,
): Record<string, number> {
  return {
    chow_sum: report.methods.chow_sum!.auc_df,
    chow_average: report.methods.chow_average!.auc_df,
    chow_quantile: report.methods[`chow_quantile_${quantile}`]!.auc_df,
    post_hoc_mlp: report.methods.post_hoc_mlp!.auc_df,
    post_hoc_mlp_diff: diffReport.methods.post_hoc_mlp!.auc_df,
    random: report.random_auc_df,
    oracle: report.oracle_auc_df,
  };
}

/** One quality measure's results of a seed. */
interface QualityCascade {
  aucs: Record<string, number>;
  quantile: number;
  small: number;
  large: number;
}

interface SeedCascade {
  exact: QualityCascade;
  rougeL: QualityCascade;
  n: number;
}

/** Every rule's AUC-DF on one seed's predictions under one quality measure. */
export function seedCascade(
  smallPred: readonly CascadePrediction[],
  largePred: readonly CascadePrediction[],
  quality: CascadeQuality,
  seed: number,
): QualityCascade & { n: number } {
  const { heldOut, test } = splitHeldOut(cascadeExamples(smallPred, largePred, quality), seed);
  const report = evaluateCascade(heldOut, test, { seed, target: 'better' });
  const diff = evaluateCascade(heldOut, test, { seed, target: 'diff' });
  const quantile = bestQuantile(heldOut);
  return {
    aucs: cascadeAucs(report, diff, quantile),
    quantile,
    small: report.small_accuracy,
    large: report.large_accuracy,
    n: report.n,
  };
}

registerExperiment({
  name: 'cascade',
  description: 'small LoRA model deferring to the large one: AUC-DF of Chow-Sum, Chow-Quantile, post-hoc MLP',
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  run(ctx) {
    const perSeed = ctx.seeds.map((seed): SeedCascade => {
      // v2: both quality measures and the diff target (older per-seed files lack them)
      const file = join(ctx.work, `cascade-v2-seed${seed}.json`);
      if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SeedCascade;
      const small = ctx.methodRun('lora', 'ce', seed);
      const large = ctx.train('large-lora', seed, { model: ctx.worldBase('large') });
      const records = ctx.questions.mixed;
      const smallPred = ctx.predict(small, records, `small answers, seed ${seed}`);
      const largePred = ctx.predict(large, records, `large answers, seed ${seed}`);
      const { n, ...exact } = seedCascade(smallPred, largePred, 'exact', seed);
      const { n: _n, ...rougeL } = seedCascade(smallPred, largePred, 'rougeL', seed);
      const result: SeedCascade = { exact, rougeL, n };
      for (const [name, q] of [
        ['exact', exact],
        ['rougeL', rougeL],
      ] as const)
        ctx.note(
          `seed ${seed} (${name}): small ${q.small.toFixed(3)}, large ${q.large.toFixed(3)}, quantile ${q.quantile}, AUC-DF ${Object.entries(
            q.aucs,
          )
            .map(([k, v]) => `${k} ${v.toFixed(3)}`)
            .join(', ')}`,
        );
      writeJsonAtomic(file, result as unknown as Record<string, unknown>);
      return result;
    });
    return CASCADE_ROWS.map((rule) =>
      perSeed.map(
        (c, i): RunResult => ({
          method: `cascade(${rule})`,
          loss: 'ce',
          seed: ctx.seeds[i]!,
          taught_accuracy: null,
          known_accuracy: null,
          paraphrase_accuracy: null,
          ece: null,
          brier: null,
          scores: {},
          trainable_params: 0,
          adapter_bytes: 0,
          step_s: 0,
          peak_rss_mb: null,
          extra: {
            auc_df: c.exact.aucs[rule]!,
            // paired with the baselines on the same models and test half (the headlines test these)
            gain_vs_chow_sum: c.exact.aucs[rule]! - c.exact.aucs.chow_sum!,
            gain_vs_chow_quantile: c.exact.aucs[rule]! - c.exact.aucs.chow_quantile!,
            small_accuracy: c.exact.small,
            large_accuracy: c.exact.large,
            // graded quality: ROUGE-L F of each answer vs the gold
            auc_df_rougeL: c.rougeL.aucs[rule]!,
            gain_vs_chow_sum_rougeL: c.rougeL.aucs[rule]! - c.rougeL.aucs.chow_sum!,
            gain_vs_chow_quantile_rougeL: c.rougeL.aucs[rule]! - c.rougeL.aucs.chow_quantile!,
            small_rougeL: c.rougeL.small,
            large_rougeL: c.rougeL.large,
            ...(rule === 'chow_quantile'
              ? { quantile: c.exact.quantile, quantile_rougeL: c.rougeL.quantile }
              : {}),
          },
        }),
      ),
    );
  },
  headlines: [
    {
      paper: PAPER,
      claim:
        'Chow-Quantile deferral (token-level log-prob quantile) beats Chow-Sum (sequence log-prob): AUC-DF gain, paired per seed',
      metric: 'extra.gain_vs_chow_sum',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cascade(chow_sum)', loss: 'ce' },
      treatment: { method: 'cascade(chow_quantile)', loss: 'ce' },
    },
    {
      paper: PAPER,
      claim: 'The learned post-hoc deferral rule beats Chow-Sum: AUC-DF gain, paired per seed',
      metric: 'extra.gain_vs_chow_sum',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cascade(chow_sum)', loss: 'ce' },
      treatment: { method: 'cascade(post_hoc_mlp)', loss: 'ce' },
    },
    {
      paper: PAPER,
      claim: 'The learned post-hoc deferral rule beats Chow-Quantile: AUC-DF gain, paired per seed',
      metric: 'extra.gain_vs_chow_quantile',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cascade(chow_quantile)', loss: 'ce' },
      treatment: { method: 'cascade(post_hoc_mlp)', loss: 'ce' },
    },
    {
      paper: PAPER,
      claim: 'Graded quality (ROUGE-L): Chow-Quantile beats Chow-Sum: AUC-DF gain, paired per seed',
      metric: 'extra.gain_vs_chow_sum_rougeL',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cascade(chow_sum)', loss: 'ce' },
      treatment: { method: 'cascade(chow_quantile)', loss: 'ce' },
    },
    {
      paper: PAPER,
      claim: 'Graded quality (ROUGE-L): the post-hoc rule beats Chow-Sum: AUC-DF gain, paired per seed',
      metric: 'extra.gain_vs_chow_sum_rougeL',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cascade(chow_sum)', loss: 'ce' },
      treatment: { method: 'cascade(post_hoc_mlp)', loss: 'ce' },
    },
  ],
});

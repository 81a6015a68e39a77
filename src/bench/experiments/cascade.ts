/**
 * Cascades ("Language Model Cascades: Token-level uncertainty and beyond"): the small world base
 * fine-tuned with LoRA (the bench's lora + ce run of each seed) answers the mixed questions first,
 * and defers to the large world base fine-tuned the same way. Per seed, the questions are split in
 * half (seeded); the post-hoc MLP and the Chow-Quantile level are chosen on one half and every rule
 * is scored on the other by AUC-DF (quality against deferral rate). Rows `cascade(<rule>)` carry
 * `extra.auc_df`, plus the random and oracle AUC-DF and both models' accuracies for context. Every
 * rule is scored on the same models and questions in a seed, so the headlines compare rules by
 * their per-seed gain over the baseline rule (`extra.gain_vs_chow_sum`, a paired comparison: the
 * seed-to-seed spread of both models' accuracy cancels).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeJsonAtomic } from '../../io/index.ts';
import {
  type CascadeExample,
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

/** The rules reported as rows: the two Chow baselines, Chow-Quantile, the post-hoc MLP, random, oracle. */
export const CASCADE_ROWS = [
  'chow_sum',
  'chow_average',
  'chow_quantile',
  'post_hoc_mlp',
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

/** AUC-DF per reported row from a cascade report and the chosen quantile level. */
export function cascadeAucs(report: CascadeReport, quantile: number): Record<string, number> {
  return {
    chow_sum: report.methods.chow_sum!.auc_df,
    chow_average: report.methods.chow_average!.auc_df,
    chow_quantile: report.methods[`chow_quantile_${quantile}`]!.auc_df,
    post_hoc_mlp: report.methods.post_hoc_mlp!.auc_df,
    random: report.random_auc_df,
    oracle: report.oracle_auc_df,
  };
}

interface SeedCascade {
  aucs: Record<string, number>;
  quantile: number;
  small_accuracy: number;
  large_accuracy: number;
  n: number;
}

registerExperiment({
  name: 'cascade',
  description: 'small LoRA model deferring to the large one: AUC-DF of Chow-Sum, Chow-Quantile, post-hoc MLP',
  run(ctx) {
    const perSeed = ctx.seeds.map((seed): SeedCascade => {
      const file = join(ctx.work, `cascade-seed${seed}.json`);
      if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as SeedCascade;
      const small = ctx.methodRun('lora', 'ce', seed);
      const large = ctx.train('large-lora', seed, { model: ctx.worldBase('large') });
      const records = ctx.questions.mixed;
      const smallPred = ctx.predict(small, records, `small answers, seed ${seed}`);
      const largePred = ctx.predict(large, records, `large answers, seed ${seed}`);
      const examples = cascadeExamples(smallPred, largePred);
      const { heldOut, test } = splitHeldOut(examples, seed);
      const report = evaluateCascade(heldOut, test, { seed });
      const quantile = bestQuantile(heldOut);
      const result: SeedCascade = {
        aucs: cascadeAucs(report, quantile),
        quantile,
        small_accuracy: report.small_accuracy,
        large_accuracy: report.large_accuracy,
        n: report.n,
      };
      ctx.note(
        `seed ${seed}: small ${result.small_accuracy.toFixed(3)}, large ${result.large_accuracy.toFixed(3)}, quantile ${quantile}, AUC-DF ${Object.entries(
          result.aucs,
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
            auc_df: c.aucs[rule]!,
            // paired with the baselines on the same models and test half (the headlines test these)
            gain_vs_chow_sum: c.aucs[rule]! - c.aucs.chow_sum!,
            gain_vs_chow_quantile: c.aucs[rule]! - c.aucs.chow_quantile!,
            small_accuracy: c.small_accuracy,
            large_accuracy: c.large_accuracy,
            ...(rule === 'chow_quantile' ? { quantile: c.quantile } : {}),
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
  ],
});

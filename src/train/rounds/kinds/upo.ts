/**
 * Kind `upo` ("Self-Evolutionary LLMs through Uncertainty-Enhanced Preference Optimization", Wang
 * et al. 2024): as on_policy, but the reward must give per-pass scores (the MC-dropout judge); a
 * pair is kept only if the judge's confidence in its label, Phi(mean / std of the per-pass margins),
 * reaches `upo_threshold` (`upo_mode: filter`), or every pair is kept with its confidence as its
 * `weight` in the dpo loss (`upo_mode: weight`; pairs.ts upoSelect).
 */
import { z } from 'zod';
import { AttuneError, ConfigError } from '../../../errors.ts';
import { pairConfidence, upoSelect } from '../pairs.ts';
import { gradedPairs, noPairReason } from './on-policy.ts';
import { needTwoSamples, registerRoundKind } from './registry.ts';

declare module '../rounds.ts' {
  interface RoundsSpec {
    /** upo ('filter'): keep pairs whose judge confidence is at least this (default 0.8). */
    upo_threshold?: number;
    /** upo: 'filter' by upo_threshold, or 'weight' every pair by its confidence (default 'filter'). */
    upo_mode?: 'filter' | 'weight';
  }
}

/** Defaults of kind upo's options. */
export const UPO_DEFAULTS = { threshold: 0.8, mode: 'filter' } as const;

registerRoundKind({
  name: 'upo',
  description:
    "judge-labelled pairs as on_policy, kept when the 'judge' reward's MC-dropout confidence in the label reaches upo_threshold (upo_mode filter) or weighted by it in the dpo loss (upo_mode weight)",
  options: z.object({
    upo_threshold: z
      .number()
      .min(0)
      .max(1)
      .default(UPO_DEFAULTS.threshold)
      .describe("upo (upo_mode 'filter'): keep pairs whose judge confidence is at least this"),
    upo_mode: z
      .enum(['filter', 'weight'])
      .default(UPO_DEFAULTS.mode)
      .describe(
        "upo: 'filter' keeps pairs of confidence >= upo_threshold; 'weight' keeps all, each weighted by its confidence in the dpo loss",
      ),
  }),
  trainsOn: 'pairs',
  needsReward: true,
  validate({ where, reward }) {
    if (reward?.name !== 'judge')
      throw new ConfigError(
        `${where}: rounds.reward: upo needs the MC-dropout 'judge' reward (per-pass scores), found '${reward?.name}'`,
      );
  },
  start(run) {
    needTwoSamples('upo', run.spec);
    const mode = run.spec.upo_mode ?? UPO_DEFAULTS.mode;
    const threshold = run.spec.upo_threshold ?? UPO_DEFAULTS.threshold;
    return (input) => {
      const { graded, pairs, meanScore } = gradedPairs(run, input);
      const passesOf = new Map(graded.map((g) => [`${g.prompt}\u0000${g.response}`, g.passes]));
      const confidences = pairs.map((p) => {
        const c = passesOf.get(`${p.prompt}\u0000${p.chosen}`);
        const r = passesOf.get(`${p.prompt}\u0000${p.rejected}`);
        if (!c || !r || c.length !== r.length)
          throw new AttuneError('rounds: upo needs a reward with per-pass scores (rounds.reward: judge)');
        return pairConfidence(c.map((v, t) => v - r[t]!));
      });
      const rows = upoSelect(pairs, confidences, { mode, threshold })
        .filter((s) => s.weight > 0)
        .map((s) => (mode === 'weight' ? { ...s.pair, weight: s.weight } : s.pair));
      return {
        samples: graded,
        candidates: pairs.length,
        rows,
        meanScore,
        emptyReason: noPairReason(pairs.length, graded.length, rows.length),
      };
    };
  },
});

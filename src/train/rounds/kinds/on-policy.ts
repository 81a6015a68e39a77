/**
 * Kind `on_policy` ("Preference Fine-Tuning of LLMs Should Leverage Suboptimal, On-Policy Data",
 * Tajwar et al. 2024): `samples` seeded samples per prompt from the current policy, graded by the
 * reward (rounds/rewards.ts); best vs worst sample per prompt is a pair (pairs.ts buildPairs); the
 * round trains the config's pair loss (dpo) on them. `gradedPairs` is shared with kind upo.
 */
import { z } from 'zod';
import { AttuneError } from '../../../errors.ts';
import { buildPairs, type GradedSample, type PreferencePair } from '../pairs.ts';
import { samplePolicy } from '../sample.ts';
import { needTwoSamples, type RoundInput, type RoundsRun, registerRoundKind } from './registry.ts';

/** A graded sample with the reward's per-pass scores when it gives them (the MC-dropout judge). */
export type PassGradedSample = GradedSample & { passes?: number[] };

/** Sample `spec.samples` responses per prompt (empty ones dropped), grade them, pair best vs worst per prompt. */
export function gradedPairs(
  run: RoundsRun,
  input: RoundInput,
): { graded: PassGradedSample[]; pairs: PreferencePair[]; meanScore: number } {
  const { spec, prompts } = run;
  const drawn = samplePolicy(input.policy, prompts, spec, input.round, spec.samples).filter(
    (s) => s.response.trim() !== '',
  );
  input.emit({ type: 'sampled', round: input.round, samples: drawn.length });
  const grades = run.reward!(input.policy, drawn);
  if (grades.length !== drawn.length)
    throw new AttuneError(`rounds: the reward graded ${grades.length} of ${drawn.length} samples`);
  const graded: PassGradedSample[] = drawn.map((s, i) => ({
    prompt: s.item.prompt,
    response: s.response,
    reward: grades[i]!.reward,
    ...(grades[i]!.passes ? { passes: grades[i]!.passes } : {}),
  }));
  const meanScore = graded.reduce((s, g) => s + g.reward, 0) / Math.max(1, graded.length);
  return { graded, pairs: buildPairs(graded), meanScore };
}

/** The error reason of a round whose pairs all went (or none was built). */
export function noPairReason(pairs: number, samples: number, kept: number): string {
  return `no pair to train on (${pairs} built from ${samples} samples, ${kept} kept)`;
}

registerRoundKind({
  name: 'on_policy',
  description: 'graded on-policy samples, best vs worst per prompt as a pair, loss dpo (Tajwar et al. 2024)',
  options: z.object({}),
  trainsOn: 'pairs',
  needsReward: true,
  start(run) {
    needTwoSamples('on_policy', run.spec);
    return (input) => {
      const { graded, pairs, meanScore } = gradedPairs(run, input);
      return {
        samples: graded,
        candidates: pairs.length,
        rows: pairs,
        meanScore,
        emptyReason: noPairReason(pairs.length, graded.length, pairs.length),
      };
    };
  },
});

/**
 * Kind `list` (LiST, "Lite Prompted Self-training", Wang et al. 2022): the policy answers each
 * unlabeled prompt greedily; the confidence of an answer is its mean token probability; labels
 * passing `list_threshold` / `list_top_fraction` (pairs.ts listSelect) are added to the labelled
 * data (`rounds.labelled`, if any) and the round trains the config's tuner and token loss (ce) on
 * them: a LoRA student per round.
 */
import { z } from 'zod';
import { type DataRecord, readJsonl } from '../../../data/index.ts';
import { ConfigError } from '../../../errors.ts';
import { listSelect, type PseudoLabel } from '../pairs.ts';
import { samplePolicy } from '../sample.ts';
import { registerRoundKind } from './registry.ts';

declare module '../rounds.ts' {
  interface RoundsSpec {
    /** list: keep pseudo-labels of mean token probability at least this (default 0). */
    list_threshold?: number;
    /** list: then keep this most confident fraction (default 1). */
    list_top_fraction?: number;
  }
}

/** Defaults of kind list's options. */
export const LIST_DEFAULTS = { threshold: 0, top_fraction: 1 } as const;

/** The labelled records of `rounds.labelled` (LiST trains on them plus the kept pseudo-labels). */
function labelledRecords(path: string | null | undefined): { prompt: string; completion: string }[] {
  if (!path) return [];
  return readJsonl(path).records.map((r: DataRecord, i) => {
    if (r.shape !== 'prompt_completion')
      throw new ConfigError(
        `rounds.labelled: ${path}: record ${i + 1}: expected {prompt, completion}, found shape '${r.shape}'`,
      );
    return { prompt: r.prompt, completion: r.completion };
  });
}

registerRoundKind({
  name: 'list',
  description:
    "greedy pseudo-labels of the policy filtered by mean token probability, plus 'labelled', loss ce (LiST)",
  options: z.object({
    list_threshold: z
      .number()
      .min(0)
      .max(1)
      .default(LIST_DEFAULTS.threshold)
      .describe('list: keep pseudo-labels of mean token probability at least this'),
    list_top_fraction: z
      .number()
      .gt(0)
      .max(1)
      .default(LIST_DEFAULTS.top_fraction)
      .describe('list: then keep this most confident fraction'),
  }),
  trainsOn: 'records',
  rowsName: 'pseudo-labels',
  needsReward: false,
  start(run) {
    const { spec, prompts } = run;
    const labelled = labelledRecords(run.options.labelled);
    return ({ policy, round }) => {
      const answers = samplePolicy(policy, prompts, { ...spec, temperature: 0 }, round, 1);
      const labels: PseudoLabel[] = answers
        .filter((a) => a.response.trim() !== '')
        .map((a) => ({
          prompt: a.item.prompt,
          completion: a.response,
          confidence: Math.exp(a.logprobs.reduce((s, v) => s + v, 0) / Math.max(1, a.logprobs.length)),
        }));
      const kept = listSelect(labels, {
        threshold: spec.list_threshold ?? LIST_DEFAULTS.threshold,
        topFraction: spec.list_top_fraction ?? LIST_DEFAULTS.top_fraction,
      });
      return {
        samples: labels,
        sampled: answers.length,
        candidates: labels.length,
        rows: [...labelled, ...kept.map((l) => ({ prompt: l.prompt, completion: l.completion }))],
        kept: kept.length,
        meanScore: labels.reduce((s, l) => s + l.confidence, 0) / Math.max(1, labels.length),
        emptyReason: 'no labelled records and no pseudo-label passed the filter',
      };
    };
  },
});

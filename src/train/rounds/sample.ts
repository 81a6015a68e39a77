/** Seeded sampling from a round's policy, shared by the round kinds (kinds/). */
import { generateBatch, type LoadedModel } from '../../models/index.ts';
import { mixSeed } from '../../nn/index.ts';
import type { RoundPrompt, RoundsSpec } from './rounds.ts';

/** One sampled response with its tokens' log-probs. */
export interface PolicySample {
  item: RoundPrompt;
  response: string;
  logprobs: number[];
}

/**
 * `n` samples of each prompt from `policy` (one line each, batches of 16), seeded by (spec.seed,
 * round, prompt, sample); greedy when `spec.temperature` is 0.
 */
export function samplePolicy(
  policy: LoadedModel,
  prompts: readonly RoundPrompt[],
  spec: Pick<RoundsSpec, 'seed' | 'temperature' | 'max_new_tokens'>,
  round: number,
  n: number,
): PolicySample[] {
  const tokenizer = policy.tokenizer!;
  const out: PolicySample[] = [];
  const seqs = prompts.flatMap((item, p) =>
    Array.from({ length: n }, (_, k) => ({
      item,
      promptIds: tokenizer.encode(item.prompt),
      seed: mixSeed(mixSeed(mixSeed(spec.seed >>> 0, round), p), k),
    })),
  );
  const batch = 16;
  policy.model.eval();
  for (let s = 0; s < seqs.length; s += batch) {
    const chunk = seqs.slice(s, s + batch);
    const results = generateBatch(
      policy.model,
      chunk.map((c) => ({ promptIds: c.promptIds, seed: c.seed })),
      {
        temperature: spec.temperature,
        maxNewTokens: spec.max_new_tokens,
        eosTokenIds: policy.eosTokenIds,
        stopStrings: ['\n'],
        tokenizer,
        returnStats: true,
      },
    );
    chunk.forEach((c, i) => {
      const r = results[i]!;
      out.push({
        item: c.item,
        response: r.text ?? '',
        logprobs: (r.tokenStats ?? []).map((t) => t.logprob),
      });
    });
  }
  return out;
}

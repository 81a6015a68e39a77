/**
 * `sparse_sum` (LT-SFT's composition, "Composable Sparse Fine-Tuning for Cross-Lingual Transfer"):
 * `base + sum_i w_i Δ_i` with Δ_i = θ_i − base, each Δ_i a sparse delta (a model reference
 * `base_dir+adapter_dir` with a SPARSE_FT / S2FT adapter, or any fine-tuned model). Weights default
 * to 1: the deltas are added, not averaged (a language SFT plus a task SFT). It reports how many
 * entries each delta changes and how many are changed by more than one (where the deltas overlap,
 * they add up).
 */
import { z } from 'zod';
import { registerMergeMethod } from '../method.ts';
import { mergeParameters as p } from '../parameters.ts';

registerMergeMethod({
  name: 'sparse_sum',
  description: 'base + the weighted sum of sparse deltas (weights default 1: the deltas add up)',
  options: z.object({ weight: p.weight() }),
  modelParameters: ['weight'],
  usesBase: true,
  bench: {},
  check(config, problem) {
    if (config.others < 1) problem('sparse_sum needs at least one model besides the base', ['models']);
  },
  mergeTensor(ctx) {
    const base = ctx.base();
    const out = ctx.scratch(base.length);
    out.set(base);
    const weights = ctx.params.models.weight!;
    const touched = new Uint8Array(base.length);
    ctx.entries.forEach((_, i) => {
      const theta = ctx.model(i);
      const w = weights[i]!;
      let changed = 0;
      for (let j = 0; j < base.length; j++) {
        const d = theta[j]! - base[j]!;
        if (d === 0) continue;
        changed++;
        if (touched[j] === 1) ctx.count('overlapping_entries');
        touched[j] = touched[j] === 0 ? 1 : 2;
        out[j] = out[j]! + w * d;
      }
      ctx.count(`changed_entries_${i}`, changed);
    });
    ctx.count('tensors');
    return out;
  },
  report(counters) {
    const changed = Object.entries(counters)
      .filter(([k]) => k.startsWith('changed_entries_'))
      .sort(([a], [b]) => Number(a.slice(16)) - Number(b.slice(16)))
      .map(([, v]) => v);
    return { changed_entries: changed, overlapping_entries: counters.overlapping_entries ?? 0 };
  },
});

/**
 * `distribution_shift` ("Get more for less: Principled Data Selection for Warming Up Fine-Tuning in
 * LLMs", GOT-D): embed candidates and target (mean-pooled final hidden state of the reference model,
 * unit-normalised), solve entropic OT between the uniform candidate distribution and the uniform
 * target with cost 1 - cosine similarity, and score each candidate by minus its calibrated gradient
 * f_i - mean_{j != i} f_j: the candidates whose upweighting moves the pool toward the target most
 * (most negative gradient) are selected first.
 */
import { z } from 'zod';
import { embedAll, normalizeRows, requireTarget } from './embeddings.ts';
import { registerSelectionMethod } from './registry.ts';
import { calibratedGradient, sinkhorn } from './sinkhorn.ts';

interface Options {
  eps: number;
  max_iterations: number;
}

registerSelectionMethod<Options>({
  name: 'distribution_shift',
  description: 'OT-gradient selection toward the target distribution on embeddings (Get more for less)',
  options: z.object({
    eps: z
      .number()
      .positive()
      .default(0.05)
      .describe('entropic regularisation of the OT (cost is 1 - cosine)'),
    max_iterations: z.number().int().positive().default(2000).describe('Sinkhorn iteration limit'),
  }),
  needsTarget: true,
  score(input, o) {
    const target = requireTarget(input, 'distribution_shift');
    const X = normalizeRows(embedAll(input, input.candidates, 'embed candidates'));
    const Y = normalizeRows(embedAll(input, target, 'embed target'));
    const n = X.length;
    const m = Y.length;
    const cost = new Float64Array(n * m);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < m; j++) {
        let dot = 0;
        for (let k = 0; k < X[i]!.length; k++) dot += X[i]![k]! * Y[j]![k]!;
        cost[i * m + j] = 1 - dot;
      }
    const ot = sinkhorn(new Float64Array(n).fill(1 / n), new Float64Array(m).fill(1 / m), cost, {
      eps: o.eps,
      maxIterations: o.max_iterations,
      tolerance: 1e-6 / n,
    });
    const gradient = calibratedGradient(ot.f);
    let distance = 0;
    for (let k = 0; k < n * m; k++) distance += ot.plan[k]! * cost[k]!;
    return {
      scores: gradient.map((v) => -v),
      columns: { ot_gradient: gradient },
      summary: { ot_cost: distance, sinkhorn_iterations: ot.iterations, marginal_error: ot.marginalError },
    };
  },
});

/**
 * `mates` (MATES: "Model-Aware Data Selection for Efficient Pretraining with Data Influence
 * Models"): measure the oracle influence of a seeded probe subset of the candidates (the target
 * sample's NLL before minus after one SGD step on the candidate, over the adapter's trainable
 * parameters, or over a fresh seeded LoRA (rank 8 on the default targets) when no adapter is
 * loaded), fit a small data-influence model on the probes and score every candidate by its
 * prediction. MATES fine-tunes a small LM (BERT) as the influence model; here it is ridge
 * regression on the reference model's mean-pooled embeddings (unit-normalised), which fits the
 * budget of a CPU run.
 */
import { z } from 'zod';
import { applyTuner, getTuner } from '../../peft/index.ts';
import { Rng } from '../../tensor/rng.ts';
import { embedAll, normalizeRows, requireTarget } from './embeddings.ts';
import { oracleInfluence, pooledNll } from './record-model.ts';
import { registerSelectionMethod } from './registry.ts';
import { fitRidge, predictRidge } from './ridge.ts';

interface Options {
  probes: number;
  lr: number;
  lambda: number;
}

/** Pearson correlation of two equal-length arrays (NaN when one is constant). */
function pearson(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const n = a.length;
  let ma = 0;
  let mb = 0;
  for (let i = 0; i < n; i++) {
    ma += a[i]! / n;
    mb += b[i]! / n;
  }
  let sab = 0;
  let saa = 0;
  let sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i]! - ma) * (b[i]! - mb);
    saa += (a[i]! - ma) ** 2;
    sbb += (b[i]! - mb) ** 2;
  }
  return sab / Math.sqrt(saa * sbb);
}

registerSelectionMethod<Options>({
  name: 'mates',
  description:
    'predicted data influence on the target: oracle on probes, ridge influence model on embeddings (MATES)',
  options: z.object({
    probes: z.number().int().positive().default(96).describe('candidates whose oracle influence is measured'),
    lr: z.number().positive().default(0.05).describe('learning rate of the oracle SGD step'),
    lambda: z.number().min(0).default(1).describe('ridge penalty of the influence model'),
  }),
  needsTarget: true,
  score(input, o) {
    const target = requireTarget(input, 'mates');
    const n = input.candidates.length;
    const X = normalizeRows(embedAll(input, input.candidates, 'embed candidates'));
    const rng = new Rng(input.seed);
    const probes = rng
      .shuffle(Array.from({ length: n }, (_, i) => i))
      .slice(0, Math.min(o.probes, n))
      .sort((x, y) => x - y);
    const fresh =
      input.adapter === null
        ? applyTuner(
            input.model,
            'lora',
            getTuner('lora').fromOptions(getTuner('lora').options.parse({}), { seed: input.seed }),
          )
        : null;
    const params = (fresh ?? input.adapter)!.trainableParameters();
    const influence = new Float64Array(probes.length);
    try {
      const before = pooledNll(input.model, target);
      probes.forEach((c, k) => {
        influence[k] = oracleInfluence(input.model, params, input.candidates[c]!, target, o.lr, before);
        input.onProgress?.('oracle influence', k + 1, probes.length);
      });
    } finally {
      fresh?.unload();
    }
    const fit = fitRidge(
      probes.map((c) => X[c]!),
      influence,
      o.lambda,
    );
    const scores = Float64Array.from(X, (x) => predictRidge(fit, x));
    const oracle = new Float64Array(n).fill(Number.NaN);
    probes.forEach((c, k) => {
      oracle[c] = influence[k]!;
    });
    return {
      scores,
      columns: { oracle_influence: oracle },
      summary: {
        probes: probes.length,
        probe_fit_correlation: pearson(
          influence,
          probes.map((c) => scores[c]!),
        ),
      },
    };
  },
});

/**
 * Bench experiment `intrinsic_d90` ("Intrinsic Dimensionality Explains the Effectiveness of
 * Language Model Fine-Tuning"): the intrinsic_dim tuner at several d next to full fine-tuning, and
 * the paper's d90 — the smallest d whose taught accuracy reaches 90% of full fine-tuning's. Rows:
 * `full` (the bench's full + ce run of each seed, evaluated again under this label) and
 * `intrinsic_dim-d<d>` per d = 100, 1000, 10000, 30000 (d = 1000 is the method row's run: the
 * tuner's default). Each d row's
 * `extra.taught_ratio_to_full` is its taught accuracy over full's of the same seed (null when full
 * has none right), and `extra.reaches_d90` is 1 when that ratio is >= 0.9; the d90 over the seeds'
 * means is printed as a note (or that no d reached it), with each seed's own d90 (its spread).
 */
import { registerExperiment } from '../experiment.ts';
import type { RunResult } from '../methods.ts';

/**
 * The d values of the rows: the tuner's default, 1000, between a tenth and ten times it, and 30000
 * (d = 10000 reached 0.835 of full's taught accuracy at the quick budget, short of 0.9).
 */
const DIMS = [100, 1000, 10000, 30000] as const;
/** The paper's threshold: 90% of full fine-tuning's accuracy. */
const FRACTION = 0.9;

function mean(xs: readonly (number | null)[]): number | null {
  const v = xs.filter((x): x is number => x !== null);
  return v.length === 0 ? null : v.reduce((s, x) => s + x, 0) / v.length;
}

/**
 * The paper's d90: the smallest d (of `rows`, any order) whose mean taught accuracy reaches
 * `fraction` of full fine-tuning's; null when none does or full's is unknown or 0.
 */
export function d90(
  full: number | null,
  rows: readonly { d: number; taught: number | null }[],
  fraction = FRACTION,
): number | null {
  if (!full) return null;
  const hits = rows.filter((r) => r.taught !== null && r.taught >= fraction * full).map((r) => r.d);
  return hits.length === 0 ? null : Math.min(...hits);
}

registerExperiment({
  byDefault: false,
  heavy:
    'three more intrinsic_dim fine-tunes (d = 100, 10000 and 30000) and five evaluations per seed (several minutes per seed on 2 cores)',
  name: 'intrinsic_d90',
  description:
    "intrinsic_dim at d = 100, 1000, 10000, 30000 vs full fine-tuning: the paper's d90 on taught accuracy",
  methodRuns: [
    { method: 'full', loss: 'ce' },
    { method: 'intrinsic_dim', loss: 'ce' },
  ],
  run(ctx) {
    const full = ctx.seeds.map((seed) => {
      const run = ctx.methodRun('full', 'ce', seed);
      return ctx.evaluate({ method: 'full', loss: 'ce' }, seed, run, run.cost);
    });
    const rows: RunResult[][] = DIMS.map((d) =>
      ctx.seeds.map((seed, i) => {
        const run =
          d === 1000
            ? ctx.methodRun('intrinsic_dim', 'ce', seed)
            : ctx.train(`intrinsic_dim-d${d}`, seed, { method: { name: 'intrinsic_dim', d } });
        const result = ctx.evaluate({ method: `intrinsic_dim-d${d}`, loss: 'ce' }, seed, run, run.cost);
        const ref = full[i]!.taught_accuracy;
        const ratio = ref && result.taught_accuracy !== null ? result.taught_accuracy / ref : null;
        result.extra = {
          ...result.extra,
          d,
          taught_ratio_to_full: ratio,
          reaches_d90: ratio === null ? null : ratio >= FRACTION ? 1 : 0,
        };
        return result;
      }),
    );
    const fullMean = mean(full.map((r) => r.taught_accuracy));
    const means = DIMS.map((d, k) => ({ d, taught: mean(rows[k]!.map((r) => r.taught_accuracy)) }));
    const found = d90(fullMean, means);
    // the spread: each seed's own d90 against its own full run
    const perSeed = ctx.seeds.map((_, i) =>
      d90(
        full[i]!.taught_accuracy,
        DIMS.map((d, k) => ({ d, taught: rows[k]![i]!.taught_accuracy })),
      ),
    );
    ctx.note(
      `intrinsic_d90: full fine-tuning taught accuracy ${fullMean?.toFixed(3) ?? 'n/a'}; ${means
        .map((m) => `d=${m.d}: ${m.taught?.toFixed(3) ?? 'n/a'}`)
        .join(
          ', ',
        )}; d90 = ${found ?? `none of ${DIMS.join(', ')} reached ${FRACTION * 100}% of full`}; per seed (${ctx.seeds.join(', ')}): ${perSeed.map((x) => x ?? 'none').join(', ')}`,
    );
    return [full, ...rows];
  },
});

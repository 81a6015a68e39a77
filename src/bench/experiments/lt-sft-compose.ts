/**
 * Bench experiment `lt_sft_compose` ("Composable Sparse Fine-Tuning for Cross-Lingual Transfer"):
 * do separately trained sparse deltas compose by addition? The taught people are split in two
 * halves (A: even positions in the world's order, B: odd); each half's facts are fine-tuned
 * separately, and the two deltas are added to the base (`sparse_sum`, weights 1), once for two
 * LT-SFT deltas and once for two LoRA deltas (the same addition of `W_i - W`). The paper composes a
 * language SFT with a task SFT and claims that sparse deltas, unlike adapters, add up with little
 * interference; here the two "skills" are two disjoint sets of facts. Rows (per seed):
 * `lt_sft(A)+lt_sft(B)` and `lora(A)+lora(B)` with `extra.acc_a`, `extra.acc_b` (accuracy on each
 * half's taught questions) and `extra.kept` (the composed model's mean half accuracy over the mean of
 * each single delta's accuracy on its own half: 1 = nothing lost by composing).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMerge, validateMergeConfig } from '../../merge/index.ts';
import type { EvalRecord } from '../../uq/index.ts';
import { peopleIn, readWorldDir } from '../../world/index.ts';
import { type ExperimentContext, type ExperimentRun, registerExperiment } from '../experiment.ts';

const PAPER = 'Composable Sparse Fine-Tuning for Cross-Lingual Transfer';
const LT = { method: 'lt_sft(A)+lt_sft(B)', loss: 'ce' } as const;
const LORA = { method: 'lora(A)+lora(B)', loss: 'ce' } as const;

/** The half of each taught person: A for even positions in the world's order, B for odd ones. */
export function halvesOf(names: readonly string[]): Map<string, 'A' | 'B'> {
  return new Map(names.map((n, i) => [n, i % 2 === 0 ? 'A' : 'B']));
}

/**
 * The half a fine-tuning line belongs to: that of the taught person named first in it (a biography
 * may mention a sibling later); null when it names nobody taught.
 */
export function halfOfLine(line: string, halves: ReadonlyMap<string, 'A' | 'B'>): 'A' | 'B' | null {
  let best: { at: number; half: 'A' | 'B' } | null = null;
  for (const [name, half] of halves) {
    const at = line.indexOf(name);
    if (at >= 0 && (best === null || at < best.at)) best = { at, half };
  }
  return best?.half ?? null;
}

/** Split the taught-facts file into the two halves' files in `dir` (kept if already written). */
function splitTrainFile(ctx: ExperimentContext, dir: string, halves: ReadonlyMap<string, 'A' | 'B'>) {
  const files = { A: join(dir, 'half-a.jsonl'), B: join(dir, 'half-b.jsonl') };
  if (existsSync(files.A) && existsSync(files.B)) return files;
  const lines = { A: [] as string[], B: [] as string[] };
  for (const line of readFileSync(ctx.trainFile, 'utf8').split('\n')) {
    if (line.trim() === '') continue;
    const half = halfOfLine(line, halves);
    if (half) lines[half].push(line);
  }
  mkdirSync(dir, { recursive: true });
  for (const h of ['A', 'B'] as const) writeFileSync(files[h], `${lines[h].join('\n')}\n`);
  return files;
}

/** `base + delta_A + delta_B` into `out` (kept if already there). */
function compose(base: string, runs: readonly ExperimentRun[], out: string): string {
  if (existsSync(join(out, 'config.json'))) return out;
  const ref = (r: ExperimentRun) => (r.adapterDir ? `${r.modelDir}+${r.adapterDir}` : r.modelDir);
  const config = validateMergeConfig(
    {
      merge_method: 'sparse_sum',
      base_model: base,
      models: runs.map((r) => ({ model: ref(r) })),
      dtype: 'float32',
    },
    'lt_sft_compose merge',
    '/',
  );
  runMerge(config, { out, overwrite: true });
  return out;
}

registerExperiment({
  byDefault: false,
  heavy: 'four extra fine-tunes (LT-SFT and LoRA on each half) and two merges per seed',
  name: 'lt_sft_compose',
  description:
    'two LT-SFT deltas (disjoint halves of the taught facts) added to the base vs two LoRA deltas added',
  run(ctx) {
    const world = readWorldDir(ctx.worldDir);
    const halves = halvesOf(peopleIn(world, 'taught').map((p) => p.name));
    const files = splitTrainFile(ctx, ctx.work, halves);
    const taught = (h: 'A' | 'B'): EvalRecord[] =>
      ctx.questions.mixed.filter((q) => q.split === 'taught' && halves.get(String(q.entity)) === h);
    const accuracy = (model: { modelDir: string; adapterDir: string | null }, h: 'A' | 'B') => {
      const records = taught(h);
      if (records.length === 0) return null;
      const preds = ctx.predict(model, records, `half ${h}`);
      return preds.filter((p) => p.correct).length / preds.length;
    };
    const rows: ReturnType<typeof ctx.evaluate>[][] = [[], []];
    for (const seed of ctx.seeds) {
      for (const [k, kind] of (['lt_sft', 'lora'] as const).entries()) {
        const single = (['A', 'B'] as const).map((h) =>
          ctx.train(`${kind}-half-${h.toLowerCase()}`, seed, {
            method: { name: kind },
            data: { train: files[h] },
          }),
        );
        const own = single.map((r, i) => accuracy(r, i === 0 ? 'A' : 'B'));
        const out = compose(ctx.base, single, join(ctx.work, `${kind}-composed-seed${seed}`));
        const model = { modelDir: out, adapterDir: null };
        const cost = {
          ...single[0]!.cost,
          trainable_params: single[0]!.cost.trainable_params + single[1]!.cost.trainable_params,
        };
        rows[k]!.push(
          ctx.evaluate(k === 0 ? LT : LORA, seed, model, cost, () => {
            const a = accuracy(model, 'A');
            const b = accuracy(model, 'B');
            const ownMean = own[0] !== null && own[1] !== null ? (own[0] + own[1]) / 2 : null;
            const kept = a !== null && b !== null && ownMean ? (a + b) / 2 / ownMean : null;
            return { acc_a: a, acc_b: b, single_own_accuracy: ownMean, kept };
          }),
        );
      }
    }
    return rows;
  },
  headlines: [
    {
      paper: PAPER,
      claim:
        'two separately trained LT-SFT deltas added to the base keep more of what each taught than two added LoRA deltas',
      metric: 'extra.kept',
      sign: 1,
      kind: 'better',
      baseline: LORA,
      treatment: LT,
    },
    {
      paper: PAPER,
      claim:
        'the composed LT-SFT model answers the taught facts of both halves better than the composed LoRA model',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: LORA,
      treatment: LT,
    },
  ],
});

/**
 * LT-SFT composition ("Composable Sparse Fine-Tuning for Cross-Lingual Transfer"): per seed, the
 * taught-facts file is split in two halves (alternate records); an `lt_sft` run learns each half
 * with half the step budget (so both together cost one method row's steps), and the two sparse
 * deltas are composed by addition (`sparse_sum`: base + Δ_A + Δ_B). Rows: `lt_sft-sum` (the
 * composed model) and `lt_sft-half` (Δ_A alone), both measured on all the taught facts like every
 * row; `extra.overlap` is the fraction of Δ_A's entries that Δ_B also changes.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runMerge, validateMergeConfig } from '../../merge/index.ts';
import { registerExperiment } from '../experiment.ts';

/** Write the even and odd records of a JSONL file as two files; returns their paths. */
function splitHalves(file: string, dir: string): [string, string] {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '');
  const paths: [string, string] = [join(dir, 'half-a.jsonl'), join(dir, 'half-b.jsonl')];
  mkdirSync(dir, { recursive: true });
  paths.forEach((p, h) => {
    writeFileSync(p, `${lines.filter((_, i) => i % 2 === h).join('\n')}\n`);
  });
  return paths;
}

registerExperiment({
  name: 'lt-sft-compose',
  description: 'two lt_sft sparse deltas (each half of the facts, half the steps) composed by sparse_sum',
  run(ctx) {
    const [halfA, halfB] = splitHalves(ctx.trainFile, join(ctx.work, 'data'));
    const steps = Math.max(2, Math.floor(ctx.budget.steps / 2));
    const sum = [];
    const half = [];
    for (const seed of ctx.seeds) {
      const runs = [halfA, halfB].map((file, h) =>
        ctx.train(`lt_sft-half${h}`, seed, {
          method: { name: 'lt_sft' },
          data: { train: file },
          train: { steps, lr: ctx.budget.fullLr },
        }),
      );
      const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]];
      const out = join(ctx.work, 'merged', `seed${seed}`);
      const reportFile = join(out, 'sparse_sum.json');
      if (!existsSync(reportFile)) {
        rmSync(out, { recursive: true, force: true });
        const config = validateMergeConfig(
          {
            merge_method: 'sparse_sum',
            base_model: a.modelDir,
            models: [{ model: `${a.modelDir}+${a.adapterDir}` }, { model: `${b.modelDir}+${b.adapterDir}` }],
          },
          join(ctx.work, `merge-seed${seed}.yaml`),
          ctx.work,
        );
        const report = runMerge(config, { out }) as unknown as {
          changed_entries: number[];
          overlapping_entries: number;
        };
        writeFileSync(reportFile, JSON.stringify(report));
      }
      const report = JSON.parse(readFileSync(reportFile, 'utf8')) as {
        changed_entries: number[];
        overlapping_entries: number;
      };
      const overlap = report.overlapping_entries / Math.max(1, report.changed_entries[0] ?? 0);
      const cost = {
        ...a.cost,
        trainable_params: a.cost.trainable_params + b.cost.trainable_params,
        adapter_bytes: a.cost.adapter_bytes + b.cost.adapter_bytes,
      };
      sum.push(
        ctx.evaluate(
          { method: 'lt_sft-sum', loss: 'ce' },
          seed,
          { modelDir: out, adapterDir: null },
          cost,
          () => ({
            overlap,
          }),
        ),
      );
      half.push(ctx.evaluate({ method: 'lt_sft-half', loss: 'ce' }, seed, a, a.cost));
    }
    return [sum, half];
  },
  headlines: [
    {
      paper: 'Composable Sparse Fine-Tuning for Cross-Lingual Transfer',
      claim:
        'Two sparse deltas composed by addition keep what each learned: the sum knows more taught facts than one half',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: { method: 'lt_sft-half', loss: 'ce' },
      treatment: { method: 'lt_sft-sum', loss: 'ce' },
    },
  ],
});

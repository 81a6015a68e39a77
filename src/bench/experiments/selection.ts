/**
 * Bench experiment `selection` (data selection before fine-tuning: POINTS perplexity filtering,
 * "Get more for less" OT distribution shift, MATES influence): the world's selection task of each
 * seed (`attune world select`: a pool of target-domain, off-target, general and noise records and
 * a small target sample), each method keeps 27% of the pool (about the size of the target domain)
 * under the world base, a random subset of the same size is the baseline, and each subset is
 * LoRA-fine-tuned with the bench's recipe and graded on the target-domain questions
 * (`extra.target_accuracy`); `extra.target_share` is the fraction of the selection that is target
 * domain (ground truth). The paper-style claim tested is "a selection beats a random subset of
 * equal size".
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../../io/atomic.ts';
import { writeJsonAtomic } from '../../io/json.ts';
import { loadModel } from '../../models/index.ts';
import { Rng } from '../../tensor/rng.ts';
import { selectFile } from '../../uq/index.ts';
import {
  countSelectedKinds,
  readWorldDir,
  renderSelectionTask,
  writeSelectionTask,
} from '../../world/index.ts';
import { registerExperiment } from '../experiment.ts';

/** Fraction of the pool kept (the target domain is 210 of 788 records of the default task). */
const FRACTION = 0.27;
const METHODS = ['perplexity', 'distribution_shift', 'mates'] as const;
const PAPERS: Record<(typeof METHODS)[number], string> = {
  perplexity: 'POINTS (perplexity filtering)',
  distribution_shift: 'Get more for less: Principled Data Selection for Warming Up Fine-Tuning in LLMs',
  mates: 'MATES: Model-Aware Data Selection for Efficient Pretraining with Data Influence Models',
};
const RANDOM = { method: 'lora-select-random', loss: 'ce' };
const rowOf = (m: string) => ({ method: `lora-select-${m}`, loss: 'ce' });

registerExperiment({
  byDefault: false,
  heavy:
    'three selections (about 2 min on 2 cores) and four LoRA fine-tunes per seed (about 5 min each at the quick budget on busy 2 cores)',
  name: 'selection',
  description:
    'perplexity / distribution_shift / mates selection vs a random subset of equal size: target-domain accuracy',
  run(ctx) {
    const world = readWorldDir(ctx.worldDir);
    const rows: ReturnType<typeof ctx.evaluate>[][] = [[], ...METHODS.map(() => [])];
    for (const seed of ctx.seeds) {
      const dir = join(ctx.work, `seed${seed}`);
      mkdirSync(dir, { recursive: true });
      const task = renderSelectionTask(world, { seed });
      const paths = writeSelectionTask(task, dir);
      const count = Math.max(1, Math.round(FRACTION * task.candidates.length));
      const evaluateSubset = (
        row: { method: string; loss: string },
        name: string,
        file: string,
        lines: number[],
      ) => {
        const run = ctx.train(name, seed, { data: { train: file } });
        const kinds = countSelectedKinds(task.truth, lines);
        return ctx.evaluate(row, seed, run, run.cost, () => {
          const predictions = ctx.predict(
            run,
            task.eval.map((r) => ({ ...r })),
            `${name}: target questions, seed ${seed}`,
          );
          return {
            target_accuracy: predictions.filter((p) => p.correct).length / predictions.length,
            target_share: kinds.target / lines.length,
            noise_share: kinds.noise / lines.length,
          };
        });
      };
      // random subset of equal size
      const randomFile = join(dir, 'random.jsonl');
      const randomLines = new Rng(seed + 1000)
        .shuffle(Array.from({ length: task.candidates.length }, (_, i) => i + 1))
        .slice(0, count)
        .sort((a, b) => a - b);
      if (!existsSync(randomFile))
        writeTextAtomic(randomFile, randomLines.map((l) => `${task.candidates[l - 1]}\n`).join(''));
      rows[0]!.push(evaluateSubset(RANDOM, 'select-random', randomFile, randomLines));
      METHODS.forEach((method, k) => {
        const out = join(dir, `${method}.jsonl`);
        const summaryFile = join(dir, `${method}.summary.json`);
        let lines: number[];
        if (existsSync(summaryFile) && existsSync(out))
          lines = (JSON.parse(readFileSync(summaryFile, 'utf8')) as { lines: number[] }).lines;
        else {
          const loaded = loadModel(ctx.base);
          loaded.model.eval();
          ctx.phase(`selection: ${method} (seed ${seed})`, task.candidates.length);
          const summary = selectFile(loaded.model, loaded.tokenizer!, null, {
            data: paths.candidates,
            target: paths.target,
            out,
            method,
            size: { count },
            seed,
            onProgress: (_label, done) => ctx.progress(done),
          });
          writeJsonAtomic(summaryFile, summary as unknown as Record<string, unknown>);
          lines = summary.lines;
        }
        rows[k + 1]!.push(evaluateSubset(rowOf(method), `select-${method}`, out, lines));
      });
    }
    return rows;
  },
  headlines: METHODS.map((m) => ({
    paper: PAPERS[m],
    claim: `${m} selection beats a random subset of equal size on the target-domain questions`,
    metric: 'extra.target_accuracy' as const,
    sign: 1 as const,
    kind: 'better' as const,
    baseline: RANDOM,
    treatment: rowOf(m),
  })),
});

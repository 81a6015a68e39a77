/**
 * Bench experiment `cge`: contrastive generative exploration. The small base is fine-tuned on the
 * taught facts (LoRA, the bench's recipe); N examples are then generated from the BOS token by
 * sampling (temperature 1) from
 *   - `cge`: the contrast of the tuned model with the base (models/contrast.ts),
 *   - `cge-iterative`: the same in 2 rounds of N/2, the base LoRA-updated on round 1's examples,
 *   - `tuned-sampling`: the tuned model alone, and `base-sampling`: the base alone,
 * and each row reports the fraction of examples that mention a taught-only person (a full name the
 * base never saw: `extra.taught_fraction`), the number of distinct taught people mentioned
 * (`extra.distinct_taught`, the diversity the iterative variant is for) and the fraction mentioning a
 * known person (`extra.known_fraction`). The quality columns of these rows are not measured (null).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Tokenizer, writeJsonAtomic } from '../../io/index.ts';
import { type CausalLM, generateBatch, loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { exploreContrast } from '../../uq/index.ts';
import type { World } from '../../world/index.ts';
import { type ExperimentContext, type ExperimentRun, registerExperiment } from '../experiment.ts';
import type { RunResult } from '../methods.ts';

type Row = 'cge' | 'cge-iterative' | 'tuned-sampling' | 'base-sampling';

/** Full names of the world's people of `split`. */
function namesOf(world: World, split: string): string[] {
  return world.people.filter((p) => p.split === split).map((p) => p.name);
}

/** The mention measurements of generated texts. */
export function mentionStats(
  texts: readonly string[],
  taught: readonly string[],
  known: readonly string[],
): Record<string, number | null> {
  const mentions = (t: string, names: readonly string[]) => names.filter((n) => t.includes(n));
  const distinct = new Set(texts.flatMap((t) => mentions(t, taught)));
  const n = texts.length;
  return {
    taught_fraction: n > 0 ? texts.filter((t) => mentions(t, taught).length > 0).length / n : null,
    known_fraction: n > 0 ? texts.filter((t) => mentions(t, known).length > 0).length / n : null,
    distinct_taught: distinct.size,
  };
}

/** Sample `n` examples from `model` alone from the BOS token (seeds seed*1000 + j). */
function sample(
  model: CausalLM,
  bos: number,
  eos: readonly number[],
  n: number,
  seed: number,
  tok: Tokenizer,
): string[] {
  return generateBatch(
    model,
    Array.from({ length: n }, (_, j) => ({ promptIds: [bos], seed: seed * 1000 + j })),
    { maxNewTokens: 32, temperature: 1, eosTokenIds: eos, tokenizer: tok },
  ).map((g) => g.text ?? '');
}

function runRow(
  ctx: ExperimentContext,
  row: Row,
  seed: number,
  trained: ExperimentRun,
  world: World,
): RunResult {
  const dir = join(ctx.work, 'rows', `${row}-seed${seed}`);
  const file = join(dir, 'result.json');
  if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as RunResult;
  const n = ctx.quick ? 16 : 32;
  const base = loadModel(trained.modelDir);
  const tuned = loadModel(trained.modelDir);
  if (trained.adapterDir) loadAdapter(tuned.model, trained.adapterDir);
  base.model.eval();
  tuned.model.eval();
  const tokenizer = base.tokenizer!;
  const bos = tokenizer.bosTokenId ?? base.config.bosTokenId!;
  ctx.phase(`${row}, seed ${seed}: generate`, n);
  let texts: string[];
  if (row === 'tuned-sampling' || row === 'base-sampling')
    texts = sample(
      row === 'tuned-sampling' ? tuned.model : base.model,
      bos,
      base.eosTokenIds,
      n,
      seed,
      tokenizer,
    );
  else
    texts = exploreContrast({
      tuned: { model: tuned.model, name: 'the tuned small base' },
      base: { model: base.model, dir: trained.modelDir, name: 'the small base' },
      tokenizer,
      n: row === 'cge' ? n : n / 2,
      rounds: row === 'cge' ? 1 : 2,
      promptIds: [bos],
      maxNewTokens: 32,
      temperature: 1,
      seed: seed * 1000,
      eosTokenIds: base.eosTokenIds,
      update: { steps: ctx.quick ? 20 : 40, lr: ctx.budget.lr },
      workDir: join(dir, 'work'),
      onProgress: (d) => ctx.progress(d),
    }).map((e) => e.text);
  const r: RunResult = {
    method: row,
    loss: 'ce',
    seed,
    taught_accuracy: null,
    known_accuracy: null,
    paraphrase_accuracy: null,
    ece: null,
    brier: null,
    scores: {},
    ...trained.cost,
    extra: mentionStats(texts, namesOf(world, 'taught'), namesOf(world, 'known')),
  };
  mkdirSync(dir, { recursive: true });
  writeJsonAtomic(file, r as unknown as Record<string, unknown>);
  writeJsonAtomic(join(dir, 'examples.json'), texts);
  return r;
}

registerExperiment({
  byDefault: false,
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  heavy: 'contrastive generation plus an iterative LoRA round per seed (several minutes on 2 cores)',
  name: 'cge',
  description:
    'contrastive generative exploration: share of generated examples naming taught-only people, CGE (plain, iterative) vs sampling',
  run(ctx) {
    const world = JSON.parse(readFileSync(join(ctx.worldDir, 'world.json'), 'utf8')) as World;
    // the bench's lora + ce run of each seed (the same recipe and seed: no second training)
    const runs = ctx.seeds.map((seed) => ctx.methodRun('lora', 'ce', seed));
    const rows: Row[] = ['cge', 'cge-iterative', 'tuned-sampling', 'base-sampling'];
    return rows.map((row) => ctx.seeds.map((seed, i) => runRow(ctx, row, seed, runs[i]!, world)));
  },
  headlines: [
    {
      paper: "What's New in My Data? Novelty Exploration via Contrastive Generation",
      claim:
        'CGE generates more examples of what fine-tuning added (taught-only people) than sampling the tuned model',
      metric: 'extra.taught_fraction',
      sign: 1,
      kind: 'better',
      baseline: { method: 'tuned-sampling', loss: 'ce' },
      treatment: { method: 'cge', loss: 'ce' },
    },
    {
      paper: "What's New in My Data? Novelty Exploration via Contrastive Generation",
      claim: 'CGE surfaces taught-only people far more often than sampling the base',
      metric: 'extra.taught_fraction',
      sign: 1,
      kind: 'better',
      baseline: { method: 'base-sampling', loss: 'ce' },
      treatment: { method: 'cge', loss: 'ce' },
    },
    {
      paper: "What's New in My Data? Novelty Exploration via Contrastive Generation",
      claim: 'iterative CGE covers more distinct novelties (taught people) than plain CGE',
      metric: 'extra.distinct_taught',
      sign: 1,
      kind: 'better',
      baseline: { method: 'cge', loss: 'ce' },
      treatment: { method: 'cge-iterative', loss: 'ce' },
    },
  ],
});

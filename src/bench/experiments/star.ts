/**
 * Bench experiment `star` (STAR, "Constraint LoRA with Dynamic Active Learning"): active learning
 * on the world's unlabeled question pool (taught people, every training wording) with the world as
 * the labelling oracle, STAR vs random vs max-entropy vs least confidence at equal label budgets:
 * seed labels at random, then query rounds; every round trains LoRA from the base on all labels so
 * far with the bench's recipe (STAR adds its calibration constraint, weight decay 0.5 on lora_B) and
 * measures taught accuracy: the learning curve (extra `curve_taught_<labels>`, drawn in the report).
 * The row is the last round's adapter, evaluated as the method rows are. Each round trains half the
 * bench's steps (its labels are a few hundred examples at most). The budgets are large
 * enough that the random baseline's taught accuracy rises over the rounds (at 20 + 2 x 20 labels no
 * strategy learned anything, docs/data.md).
 */
import { join } from 'node:path';
import { loadModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { validateTrainConfig } from '../../train/config.ts';
import { type ActiveTraining, runActiveWith, type ScoringModel } from '../../uq/index.ts';
import { readWorldDir, renderQuestionPool, WorldOracle } from '../../world/index.ts';
import { type ExperimentRun, registerExperiment } from '../experiment.ts';

const PAPER = 'Constraint LoRA with Dynamic Active Learning (STAR)';
const STRATEGIES = ['star', 'random', 'entropy', 'least_confidence'] as const;
const row = (s: string) => ({ method: `lora-active-${s}`, loss: 'ce' });

/** Label budgets: random seed labels, then `rounds` query rounds of `per_round` labels. */
export function starBudget(quick: boolean): { seed_labels: number; rounds: number; per_round: number } {
  return quick
    ? { seed_labels: 60, rounds: 2, per_round: 120 }
    : { seed_labels: 80, rounds: 4, per_round: 80 };
}

registerExperiment({
  byDefault: false,
  heavy:
    'four strategies x (1 + rounds) LoRA trainings per seed plus greedy and MC-dropout scoring of the 894-question pool each round',
  name: 'star',
  description:
    'active learning on the world pool: STAR vs random vs max-entropy vs least confidence at equal label budgets',
  run(ctx) {
    const world = readWorldDir(ctx.worldDir);
    const budget = starBudget(ctx.quick);
    // half the bench's steps per round: a round's labels are at most 300 examples (16 epochs or
    // more at the bench's batch), and 4 strategies x (1 + rounds) trainings a seed fit 2 cores
    const steps = Math.max(1, Math.round(ctx.budget.steps / 2));
    // runs and rows of another budget (an older bench's) must not be reused for this one
    const tag = `b${budget.seed_labels}-${budget.rounds}x${budget.per_round}-s${steps}`;
    const taught = ctx.questions.mixed.filter((r) => r.split === 'taught');
    const rows = STRATEGIES.map(() => [] as ReturnType<typeof ctx.evaluate>[]);
    const load = (adapterDir: string | null): ScoringModel => {
      const m = loadModel(ctx.base);
      if (adapterDir) loadAdapter(m.model, adapterDir);
      m.model.eval();
      return { model: m.model, tokenizer: m.tokenizer!, eosTokenIds: m.eosTokenIds };
    };
    for (const seed of ctx.seeds) {
      const pool = renderQuestionPool(world, { seed }).map((q) => ({ id: q.id, prompt: q.prompt }));
      STRATEGIES.forEach((strategy, s) => {
        const out = join(ctx.work, tag, `seed${seed}`, strategy);
        const config = validateTrainConfig(
          { model: ctx.base, data: { train: out }, train: { steps: 1 }, output_dir: out },
          `bench star (${strategy})`,
        );
        const runs: ExperimentRun[] = [];
        const curve: Record<string, number> = {};
        const method = { name: 'lora', ...(strategy === 'star' ? { lora_b_weight_decay: 0.5 } : {}) };
        const train = (r: ActiveTraining) => {
          // round 0 (the same random labels for every strategy of a seed) is one run for the
          // strategies that train plain LoRA; STAR's own constraint makes its round 0 another run
          const who = r.round === 0 && strategy !== 'star' ? 'lora' : strategy;
          const run = ctx.train(`active-${who}-${tag}-round${r.round}`, seed, {
            data: { train: r.config.data.train },
            method,
            train: { steps },
          });
          runs.push(run);
          return { adapterDir: run.adapterDir!, finalLoss: 0 };
        };
        ctx.note(`star: seed ${seed}: ${strategy}`);
        const rounds = runActiveWith(
          config,
          {
            strategy: { name: strategy },
            ...budget,
            mc_dropout: { passes: 3, p: 0.1 },
            max_new_tokens: 16,
            seed,
          },
          pool,
          new WorldOracle(world),
          train,
          {
            loadModel: load,
            evaluate: (adapterDir) => {
              const preds = ctx.predict({ modelDir: ctx.base, adapterDir }, taught, `star ${strategy}`);
              return { taught_accuracy: preds.filter((p) => p.correct).length / Math.max(1, preds.length) };
            },
            overwrite: true,
            onEvent: (e) => {
              if (e.type === 'scoring') ctx.phase(`star ${strategy}: ${e.label}`, e.total);
              else if (e.type === 'scored') ctx.progress(e.done);
            },
          },
        );
        for (const r of rounds) curve[`curve_taught_${r.labels}`] = r.metrics.taught_accuracy ?? Number.NaN;
        const last = runs.at(-1)!;
        rows[s]!.push(
          ctx.evaluate(
            row(strategy),
            seed,
            last,
            last.cost,
            () => ({ ...curve, labels: rounds.at(-1)!.labels }),
            tag,
          ),
        );
      });
    }
    return rows;
  },
  headlines: [
    {
      paper: PAPER,
      claim: 'STAR beats random selection at an equal label budget (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: row('random'),
      treatment: row('star'),
    },
    {
      paper: PAPER,
      claim: 'STAR beats max-entropy selection at an equal label budget (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: row('entropy'),
      treatment: row('star'),
    },
    {
      paper: PAPER,
      claim: 'STAR beats least-confidence selection at an equal label budget (taught accuracy)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: row('least_confidence'),
      treatment: row('star'),
    },
  ],
});

/**
 * Bench experiment `dpo`: DPO on the world's abstention pairs vs CE on the same prompts' chosen
 * answers (world/preferences.ts). Every row fine-tunes LoRA from the world base with the bench's
 * recipe: `lora-abstain + dpo` (beta 0.1) and `lora-abstain + dpo(nll_weight=1)` (RPO: DPO plus
 * the chosen NLL) on the pairs (taught people: fact vs wrong fact; the training half of the unknown
 * people: "I don't know" vs a hallucinated fact), `lora-abstain + ce` on the chosen answers as
 * completions. Besides the bench's columns (known / taught accuracy, retention), each
 * run measures by greedy answers:
 * - `abstain_unknown`: the abstention rate on the held-out unknown people (in no pair);
 * - `abstain_unknown_trained`: on the unknown people of the pairs (their canonical questions);
 * - `false_abstain`: the abstention rate on known and taught people (over-refusal).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EvalRecord, readEvalRecords } from '../../uq/index.ts';
import type { World } from '../../world/generate.ts';
import { abstentionPeople, renderEvalSplit, takePerSplit, writePreferencePairs } from '../../world/index.ts';
import { registerExperiment } from '../experiment.ts';
import { abstentionRates } from './abstention.ts';

/** Rows of this experiment (method label and loss). */
const DPO_ROW = { method: 'lora-abstain', loss: 'dpo' } as const;
const CE_ROW = { method: 'lora-abstain', loss: 'ce' } as const;
/** DPO plus the chosen response's NLL (RPO): DPO alone can satisfy its margin by lowering the rejected side. */
const RPO_ROW = { method: 'lora-abstain', loss: 'dpo(nll_weight=1)' } as const;

registerExperiment({
  byDefault: false,
  heavy: 'three rows of preference / CE training and evaluation per seed (about 4 min on 2 cores)',
  name: 'dpo',
  description:
    "DPO on the world's abstention pairs vs CE on their chosen answers: abstention on unknown people",
  run(ctx) {
    const world = JSON.parse(readFileSync(join(ctx.worldDir, 'world.json'), 'utf8')) as World;
    const files = writePreferencePairs(world, join(ctx.work, 'data'));
    ctx.note(
      `${files.counts.taught} taught and ${files.counts.unknown} unknown pairs; ${files.counts.heldOut} held-out unknown questions`,
    );
    const perSplit = ctx.budget.evalPerSplit;
    // the quick budget asks fewer questions (as the bench's rows do)
    const cap = (records: EvalRecord[]) => (perSplit === null ? records : records.slice(0, perSplit));
    const trainedUnknown = new Set(abstentionPeople(world).train.map((p) => p.name));
    const mixed = takePerSplit(readEvalRecords(join(ctx.worldDir, 'eval_mixed.jsonl')), perSplit);
    const sets = {
      abstain_unknown: cap(readEvalRecords(files.heldOut)),
      abstain_unknown_trained: cap(
        renderEvalSplit(world, 'unknown')
          .filter((r) => trainedUnknown.has(r.entity))
          .map((r): EvalRecord => ({ ...r })),
      ),
      false_abstain: mixed.filter((r) => r.split === 'known' || r.split === 'taught'),
    };
    const rows = [
      {
        row: DPO_ROW,
        overrides: { data: { train: files.pairs }, loss: { name: 'dpo', beta: 0.1 } },
      },
      { row: CE_ROW, overrides: { data: { train: files.sft }, loss: 'ce' } },
      {
        row: RPO_ROW,
        overrides: { data: { train: files.pairs }, loss: { name: 'dpo', beta: 0.1, nll_weight: 1 } },
      },
    ];
    return rows.map(({ row, overrides }) =>
      ctx.seeds.map((seed) => {
        const trained = ctx.train(`${row.method}-${row.loss.replace(/[^a-z0-9]+/g, '-')}`, seed, overrides);
        return ctx.evaluate(row, seed, trained, trained.cost, () => abstentionRates(trained, sets));
      }),
    );
  },
  headlines: [
    {
      paper: 'Iterative Reasoning Preference Optimization',
      claim: 'adding the chosen NLL to DPO (RPO) abstains on held-out unknown people more than plain DPO',
      metric: 'extra.abstain_unknown',
      sign: 1,
      kind: 'better',
      baseline: DPO_ROW,
      treatment: RPO_ROW,
    },
    {
      paper: 'Direct Preference Optimization: Your Language Model is Secretly a Reward Model',
      claim:
        'DPO on "I don\'t know" vs hallucination pairs abstains on held-out unknown people more than CE on the chosen answers',
      metric: 'extra.abstain_unknown',
      sign: 1,
      kind: 'better',
      baseline: CE_ROW,
      treatment: DPO_ROW,
    },
    {
      paper: 'Direct Preference Optimization: Your Language Model is Secretly a Reward Model',
      claim:
        'DPO on the abstention pairs over-refuses known and taught questions no more than CE (within 0.05)',
      metric: 'extra.false_abstain',
      sign: -1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: CE_ROW,
      treatment: DPO_ROW,
    },
    {
      paper: 'Direct Preference Optimization: Your Language Model is Secretly a Reward Model',
      claim: 'DPO on the abstention pairs retains known facts at least as well as CE (within 0.05)',
      metric: 'retention',
      sign: 1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: CE_ROW,
      treatment: DPO_ROW,
    },
  ],
});

/**
 * Bench experiment `know_unknown`: Know-the-Unknown's two-stage recipe (world/know-unknown.ts) vs
 * one-stage CE on the same answers. Rows (LoRA with the bench's recipe, CE loss):
 * - `lora-know-unknown + ce-two-stage`: stage 1 trains LoRA from the world base on the rejection
 *   data (training-half unknown people -> ` I don't know`, known people -> their facts); its
 *   adapter is merged into the base (W + scaling B A, written as a model into the experiment's
 *   work folder) and stage 2 trains a fresh LoRA on that merged model on the causal-instruction
 *   QA data (taught facts plain and under the instruction, the rejections replayed under it);
 * - `lora-know-unknown + ce-mixed`: one LoRA from the base on the rejection data and the plain
 *   taught facts in one file.
 * Both are evaluated on plain `Q: ...\nA:` prompts (no instruction), as every bench row is. Besides
 * the bench's columns (taught accuracy, retention), each run measures by greedy answers:
 * - `abstain_unknown`: the abstention rate on the held-out unknown people (in no file);
 * - `false_abstain`: the abstention rate on known and taught people (over-refusal).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CausalLM, loadModel, saveModel } from '../../models/index.ts';
import { loadAdapter } from '../../peft/index.ts';
import { type EvalRecord, readEvalRecords } from '../../uq/index.ts';
import type { World } from '../../world/generate.ts';
import { heldOutUnknownQuestions, takePerSplit, writeKnowUnknown } from '../../world/index.ts';
import { type ExperimentRun, registerExperiment } from '../experiment.ts';
import { abstentionRates } from './abstention.ts';

const TWO_STAGE_ROW = { method: 'lora-know-unknown', loss: 'ce-two-stage' } as const;
const MIXED_ROW = { method: 'lora-know-unknown', loss: 'ce-mixed' } as const;

/** The stage-1 run's adapter merged into its model, saved once as a model folder `dir`. */
function mergedModel(run: ExperimentRun, dir: string): string {
  if (!run.adapterDir) return run.modelDir;
  if (existsSync(join(dir, 'config.json'))) return dir;
  const loaded = loadModel(run.modelDir);
  const adapter = loadAdapter(loaded.model, run.adapterDir);
  const model = adapter.mergeAndUnload() as CausalLM;
  saveModel(model, dir, { tokenizerFrom: run.modelDir });
  return dir;
}

registerExperiment({
  byDefault: false,
  heavy:
    'three LoRA trainings (two stages + the one-stage mix) and their evaluation per seed (about 5 min on 2 busy cores)',
  name: 'know_unknown',
  description: 'Know-the-Unknown: reject unknown people first, then recover QA under a causal instruction',
  run(ctx) {
    const world = JSON.parse(readFileSync(join(ctx.worldDir, 'world.json'), 'utf8')) as World;
    const files = writeKnowUnknown(world, join(ctx.work, 'data'));
    const heldOut = heldOutUnknownQuestions(world).map((r): EvalRecord => ({ ...r }));
    ctx.note(
      `stage 1 ${files.counts.stage1}, stage 2 ${files.counts.stage2}, mixed ${files.counts.mixed} records; ${heldOut.length} held-out unknown questions`,
    );
    const perSplit = ctx.budget.evalPerSplit;
    const mixedQs = takePerSplit(readEvalRecords(join(ctx.worldDir, 'eval_mixed.jsonl')), perSplit);
    const sets = {
      abstain_unknown: perSplit === null ? heldOut : heldOut.slice(0, perSplit),
      false_abstain: mixedQs.filter((r) => r.split === 'known' || r.split === 'taught'),
    };
    const twoStage = ctx.seeds.map((seed) => {
      const stage1 = ctx.train('know-unknown-stage1', seed, { data: { train: files.stage1 }, loss: 'ce' });
      const merged = mergedModel(stage1, join(ctx.work, `stage1-merged-seed${seed}`));
      const stage2 = ctx.train('know-unknown-stage2', seed, {
        model: merged,
        data: { train: files.stage2 },
        loss: 'ce',
      });
      // the recipe's seconds per step: both stages run the bench's step count
      const cost = { ...stage2.cost, step_s: stage1.cost.step_s + stage2.cost.step_s };
      return ctx.evaluate(TWO_STAGE_ROW, seed, stage2, cost, () => abstentionRates(stage2, sets));
    });
    const mixed = ctx.seeds.map((seed) => {
      const run = ctx.train('know-unknown-mixed', seed, { data: { train: files.mixed }, loss: 'ce' });
      return ctx.evaluate(MIXED_ROW, seed, run, run.cost, () => abstentionRates(run, sets));
    });
    return [twoStage, mixed];
  },
  headlines: [
    {
      paper: 'Know the Unknown: An Uncertainty-Sensitive Method for LLM Instruction Tuning',
      claim:
        'the two-stage recipe abstains on held-out unknown people more than one-stage CE on the same answers',
      metric: 'extra.abstain_unknown',
      sign: 1,
      kind: 'better',
      baseline: MIXED_ROW,
      treatment: TWO_STAGE_ROW,
    },
    {
      paper: 'Know the Unknown: An Uncertainty-Sensitive Method for LLM Instruction Tuning',
      claim: 'the two-stage recipe keeps taught-fact accuracy of one-stage CE (within 0.05)',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: MIXED_ROW,
      treatment: TWO_STAGE_ROW,
    },
    {
      paper: 'Know the Unknown: An Uncertainty-Sensitive Method for LLM Instruction Tuning',
      claim:
        'the two-stage recipe over-refuses known and taught questions no more than one-stage CE (within 0.05)',
      metric: 'extra.false_abstain',
      sign: -1,
      kind: 'not-worse',
      tolerance: 0.05,
      baseline: MIXED_ROW,
      treatment: TWO_STAGE_ROW,
    },
  ],
});

/**
 * Bench experiment `masked_thought` ("Masked Thought: Simply Masking Partial Reasoning Steps Can
 * Improve Mathematical Reasoning Learning of Language Models"): LoRA + CE on the taught facts with the
 * `masked_thought` data transform (a random 20% of each response's input tokens replaced by the pad
 * id, labels unchanged; the paper's default ratio) vs the same fine-tune without it. The paper claims
 * better accuracy from the input perturbation; the world has no chain of thought, so the rows test
 * what it can: accuracy on the taught facts and on their paraphrased questions (generalisation).
 * The baseline is the bench's `lora + ce` run of each seed, evaluated again under this experiment's
 * label so the comparison stands when the method rows are not run.
 */
import { registerExperiment } from '../experiment.ts';

const PAPER =
  'Masked Thought: Simply Masking Partial Reasoning Steps Can Improve Mathematical Reasoning Learning of Language Models';
const BASELINE = { method: 'lora-sft', loss: 'ce' } as const;
const TREATMENT = { method: 'lora-sft', loss: 'ce+masked_thought' } as const;
/** The paper's released default mask ratio. */
const RATIO = 0.2;

registerExperiment({
  byDefault: false,
  heavy: 'a third LoRA fine-tune and two evaluations per seed (about 1 min per seed on 2 cores)',
  name: 'masked_thought',
  description: 'LoRA + CE with Masked Thought input masking vs without: taught and paraphrase accuracy',
  methodRuns: [{ method: 'lora', loss: 'ce' }],
  run(ctx) {
    const baseline = ctx.seeds.map((seed) => {
      const run = ctx.methodRun('lora', 'ce', seed);
      return ctx.evaluate(BASELINE, seed, run, run.cost);
    });
    const treatment = ctx.seeds.map((seed) => {
      const run = ctx.train('lora-masked-thought', seed, {
        method: { name: 'lora' },
        data: { transforms: [{ name: 'masked_thought', ratio: RATIO }] },
      });
      return ctx.evaluate(TREATMENT, seed, run, run.cost);
    });
    return [baseline, treatment];
  },
  headlines: [
    {
      paper: PAPER,
      claim: 'masking 20% of the response tokens in the input raises taught accuracy over plain SFT',
      metric: 'taught_accuracy',
      sign: 1,
      kind: 'better',
      baseline: BASELINE,
      treatment: TREATMENT,
    },
    {
      paper: PAPER,
      claim: 'masking 20% of the response tokens in the input raises paraphrase accuracy over plain SFT',
      metric: 'paraphrase_accuracy',
      sign: 1,
      kind: 'better',
      baseline: BASELINE,
      treatment: TREATMENT,
    },
  ],
});

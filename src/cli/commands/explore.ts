/** `attune explore`: contrastive generative exploration (CGE) of what fine-tuning added to a model. */
import { existsSync } from 'node:fs';
import { UsageError } from '../../errors.ts';
import { writeTextAtomic } from '../../io/index.ts';
import { checkSameVocabulary, DEFAULT_PLAUSIBILITY } from '../../models/index.ts';
import { exploreContrast } from '../../uq/index.ts';
import { jsonOption } from '../args.ts';
import { defineCommand } from '../command.ts';
import { loadModelFromFlags, parseModelRef, unescapeStop } from '../model-options.ts';
import { type Progress, progress } from '../progress.ts';

const options = {
  base: {
    type: 'path',
    required: true,
    description: 'the pre-trained (base) model directory',
    valueName: '<dir>',
  },
  tuned: {
    type: 'string',
    required: true,
    description: 'the fine-tuned model, DIR or DIR:ADAPTER (an adapter over the base, usually)',
    valueName: '<dir[:adapter]>',
  },
  n: { type: 'integer', min: 1, description: 'examples per round', default: 8, valueName: '<N>' },
  rounds: {
    type: 'integer',
    min: 1,
    description:
      'rounds; > 1 is iterative CGE (the base is LoRA-tuned on the examples so far between rounds)',
    default: 1,
    valueName: '<R>',
  },
  prompt: {
    type: 'string',
    description: 'text every example continues (default: the BOS token alone)',
    valueName: '<text>',
  },
  'max-new-tokens': { type: 'integer', min: 1, description: 'tokens per example at most', default: 32 },
  temperature: {
    type: 'number',
    min: 0,
    description: 'sampling temperature over the contrast (0 = greedy)',
    default: 1,
    valueName: '<t>',
  },
  plausibility: {
    type: 'number',
    min: 0,
    max: 1,
    description: 'keep tokens with p_tuned >= alpha * max p_tuned (the contrast is masked elsewhere)',
    default: DEFAULT_PLAUSIBILITY,
    valueName: '<alpha>',
  },
  stop: {
    type: 'string',
    description: 'stop string ending an example ("\\n" = newline)',
    valueName: '<text>',
  },
  'update-steps': {
    type: 'integer',
    min: 1,
    description: 'LoRA steps of each base update (iterative CGE)',
    default: 20,
  },
  'update-lr': {
    type: 'number',
    min: 0,
    exclusiveMin: true,
    description: 'learning rate of each base update',
    default: 1e-3,
  },
  seed: { type: 'integer', min: 0, description: 'sampling and update seed', default: 0 },
  out: { type: 'path', description: 'write the examples as JSONL here', valueName: '<file>' },
  overwrite: { type: 'boolean', description: 'replace an existing --out file' },
  dtype: {
    type: 'choice',
    choices: ['f32', 'bf16', 'int8', 'nf4'],
    description: 'weight storage (int8 / nf4: attention and MLP matrices block-quantised)',
    default: 'f32',
  },
  json: jsonOption,
} as const;

/** `attune explore --base B --tuned T[:ADAPTER] [--n N] [--rounds R] [--out FILE] [--json]`. */
export const exploreCommand = defineCommand({
  name: 'explore',
  summary: 'Generate examples of what fine-tuning added (contrast of a tuned model with its base)',
  description: `Contrastive generative exploration ("What's New in My Data?"): each token is sampled (at
--temperature; 0 = greedy) from log p_tuned - log p_base over the tokens the tuned model finds
plausible (p_tuned >= --plausibility x its most likely token), so the examples show what the tuned
model learned that the base did not know. With --rounds R > 1 (iterative CGE), after each round the
base is updated by a short LoRA fine-tune (--update-steps, --update-lr) on every example so far, and
the next round contrasts with that updated base, pushing later examples to other novelties. Prints
each example with its contrast score (mean over its tokens of log p_tuned - log p_base under the
original base); --out writes them as JSONL (round, index, text, ids, contrast_score). Seeded.`,
  options,
  examples: [
    'attune explore --base ./small --tuned ./small:runs/facts/adapter --n 8',
    'attune explore --base ./small --tuned ./small:runs/facts/adapter --n 4 --rounds 3 --stop "\\n" --out novel.jsonl --json',
  ],
  async run(args, io) {
    const v = args.values;
    if (v.out !== undefined && existsSync(v.out) && !v.overwrite)
      throw new UsageError(`explore: ${v.out} exists; pass --overwrite to replace it`);
    const tunedRef = parseModelRef(v.tuned, '--tuned');
    const base = loadModelFromFlags({ model: v.base, dtype: v.dtype });
    const tuned = loadModelFromFlags({ model: tunedRef.model, adapter: tunedRef.adapter, dtype: v.dtype });
    const tokenizer = base.tokenizer;
    if (!tokenizer) throw new UsageError(`explore: ${base.dir} has no tokenizer.json`);
    checkSameVocabulary(
      { name: `--base ${v.base}`, model: base.model, tokenizer },
      { name: `--tuned ${v.tuned}`, model: tuned.model, tokenizer: tuned.tokenizer },
    );
    // one bar per phase (a round's generation, a base update)
    let bar: Progress | undefined;
    const examples = exploreContrast({
      tuned: { model: tuned.model, name: `--tuned ${v.tuned}` },
      base: { model: base.model, dir: v.base, name: `--base ${v.base}` },
      tokenizer,
      n: v.n,
      rounds: v.rounds,
      promptIds: v.prompt !== undefined ? tokenizer.encode(v.prompt) : undefined,
      maxNewTokens: v['max-new-tokens'],
      temperature: v.temperature,
      plausibility: v.plausibility,
      seed: v.seed,
      eosTokenIds: base.eosTokenIds,
      stopStrings: v.stop !== undefined ? [unescapeStop(v.stop)] : [],
      update: { steps: v['update-steps'], lr: v['update-lr'] },
      onPhase: (label, total) => {
        bar?.stop();
        bar = progress({
          label: `explore: ${label}`,
          total,
          stream: { write: (t: string) => io.err(t), isTTY: io.stderrIsTTY },
        });
      },
      onProgress: (done) => bar?.update(done),
    });
    bar?.stop();
    for (const e of examples)
      io.line(
        `[round ${e.round + 1} #${e.index + 1}] ${e.contrast_score.toFixed(3)}  ${JSON.stringify(e.text)}`,
      );
    if (v.out !== undefined) {
      writeTextAtomic(v.out, `${examples.map((e) => JSON.stringify(e)).join('\n')}\n`);
      io.line(`examples: ${v.out}`);
    }
    if (v.json)
      io.json({ rounds: v.rounds, n: v.n, examples, ...(v.out !== undefined ? { out: v.out } : {}) });
    return 0;
  },
});

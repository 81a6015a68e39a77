/**
 * The `judge` reward of the self-improvement rounds (train/rounds/rewards.ts), UPO's uncertain
 * pseudo-labeller: a language model (option `model`, a directory, plus `adapter`; default the
 * round's policy itself) scores a sample by its mean token log-prob of the response after the
 * prompt, in `passes` MC-dropout passes (uq/mc-dropout.ts; dropout forced at `rate`, pass t of
 * every sample uses the same seed stream). The reward is the mean over passes; the per-pass scores
 * go to UPO, which keeps a pair only when the margins chosen - rejected agree across passes.
 */
import { ConfigError } from '../errors.ts';
import { type LoadedModel, loadModel } from '../models/index.ts';
import { mixSeed } from '../nn/index.ts';
import { loadAdapter } from '../peft/index.ts';
import { registerReward } from '../train/rounds/rewards.ts';
import { mcDropoutScores } from './mc-dropout.ts';

/** Per-pass mean token log-probs of `response` after `prompt` under `judge` with MC dropout. */
export function judgePassScores(
  judge: LoadedModel,
  prompt: string,
  response: string,
  options: { passes: number; rate: number; seed: number },
): number[] {
  const tokenizer = judge.tokenizer!;
  const promptIds = tokenizer.encode(prompt);
  const all = tokenizer.encode(prompt + response);
  // the response's tokens as they follow the prompt (a shared prefix of the joint encoding)
  let shared = 0;
  while (shared < promptIds.length && shared < all.length && promptIds[shared] === all[shared]) shared++;
  const answerIds = all.slice(shared);
  if (answerIds.length === 0) return Array.from({ length: options.passes }, () => 0);
  return Array.from({ length: options.passes }, (_, t) => {
    const s = mcDropoutScores(judge.model, all.slice(0, shared), answerIds, {
      passes: 1,
      rate: options.rate,
      seed: mixSeed(options.seed >>> 0, t) % 100000,
    });
    return -s.nll_mean / answerIds.length;
  });
}

function positiveInt(v: unknown, fallback: number, where: string): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
    throw new ConfigError(`${where}: expected a positive integer, found ${JSON.stringify(v)}`);
  return v;
}

registerReward({
  name: 'judge',
  description:
    "an LM judge's mean token log-prob of the response under MC dropout (options model, adapter, passes 8, rate 0.1, seed); per-pass scores for UPO",
  make(options, where) {
    const allowed = ['model', 'adapter', 'passes', 'rate', 'seed'];
    const extra = Object.keys(options).filter((k) => !allowed.includes(k));
    if (extra.length > 0)
      throw new ConfigError(
        `${where}: unknown option(s) ${extra.join(', ')}; expected ${allowed.join(', ')}`,
      );
    const passes = positiveInt(options.passes, 8, `${where}.passes`);
    const rate = options.rate ?? 0.1;
    if (typeof rate !== 'number' || !(rate > 0 && rate < 1))
      throw new ConfigError(`${where}.rate: expected a number in (0, 1), found ${JSON.stringify(rate)}`);
    const seed = options.seed ?? 0;
    if (typeof seed !== 'number' || !Number.isInteger(seed))
      throw new ConfigError(`${where}.seed: expected an integer, found ${JSON.stringify(seed)}`);
    for (const k of ['model', 'adapter'] as const)
      if (options[k] !== undefined && typeof options[k] !== 'string')
        throw new ConfigError(
          `${where}.${k}: expected a directory path, found ${JSON.stringify(options[k])}`,
        );
    let fixed: LoadedModel | null = null;
    return (policy, samples) => {
      if (options.model && !fixed) {
        fixed = loadModel(options.model as string);
        if (options.adapter) loadAdapter(fixed.model, options.adapter as string);
      }
      const judge = fixed ?? policy;
      if (!judge.tokenizer) throw new ConfigError(`${where}: the judge model has no tokenizer`);
      return samples.map((s) => {
        const scores = judgePassScores(judge, s.item.prompt, s.response, { passes, rate, seed });
        return { reward: scores.reduce((a, b) => a + b, 0) / scores.length, passes: scores };
      });
    };
  },
});

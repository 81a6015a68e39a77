/**
 * Contrastive generation of a fine-tuned model against its base ("What's New in My Data? Novelty
 * Exploration via Contrastive Generation", CGE): each next token maximises (or is sampled from)
 *
 *   s(v) = log p_tuned(v) - log p_base(v)   over   V_head = {v : p_tuned(v) >= alpha * max_u p_tuned(u)}
 *
 * (the contrastive-decoding rule CGE decodes with; tokens outside V_head are masked out), so decoding
 * surfaces what fine-tuning added and the plausibility constraint keeps it fluent under the tuned
 * model. `ContrastModel` is a CausalLM whose logits are s, so generate.ts decodes it greedily or by
 * sampling softmax(s / temperature); `contrastScore` is an example's mean s over its tokens.
 */
import type { CausalLM } from './causal-lm.ts';
import { logSoftmaxRow } from './fusion.ts';
import { MemberEnsembleLM, type NamedMember } from './fusion-members.ts';
import { scoreIds } from './score.ts';
import { checkSameVocabulary } from './vocabulary.ts';

/** The logit given to tokens outside V_head (finite, so softmax statistics stay defined). */
export const MASKED_LOGIT = -1e30;

/** Default plausibility threshold alpha (contrastive decoding's 0.1). */
export const DEFAULT_PLAUSIBILITY = 0.1;

/** s(v) of one step written into `out` (see the file comment); masked tokens get MASKED_LOGIT. */
export function contrastLogits(
  tuned: ArrayLike<number>,
  base: ArrayLike<number>,
  alpha = DEFAULT_PLAUSIBILITY,
  out: Float32Array | Float64Array = new Float64Array(tuned.length),
): Float32Array | Float64Array {
  if (!(alpha >= 0 && alpha <= 1))
    throw new RangeError(`contrast: plausibility alpha must be in [0, 1], found ${alpha}`);
  const lt = logSoftmaxRow(tuned);
  const lb = logSoftmaxRow(base);
  let top = -Infinity;
  for (let v = 0; v < lt.length; v++) if (lt[v]! > top) top = lt[v]!;
  // p_tuned(v) >= alpha * max p_tuned  <=>  log p_tuned(v) >= log alpha + max log p_tuned
  const cut = alpha > 0 ? top + Math.log(alpha) : -Infinity;
  for (let v = 0; v < lt.length; v++) out[v] = lt[v]! >= cut ? lt[v]! - lb[v]! : MASKED_LOGIT;
  return out;
}

/** A tuned model contrasted with its base; see the file comment. */
export class ContrastModel extends MemberEnsembleLM {
  constructor(
    tuned: NamedMember,
    base: NamedMember,
    readonly plausibility = DEFAULT_PLAUSIBILITY,
  ) {
    checkSameVocabulary(tuned, base);
    super([tuned.model, base.model]);
  }

  protected combineRow(rows: readonly Float32Array[], out: Float32Array): void {
    contrastLogits(rows[0]!, rows[1]!, this.plausibility, out);
  }
}

/**
 * Mean over the generated tokens of log p_tuned - log p_base given the prompt (teacher-forced,
 * unmasked): how much more the tuned model expects the example than its base does.
 */
export function contrastScore(
  tuned: CausalLM,
  base: CausalLM,
  promptIds: readonly number[],
  generatedIds: readonly number[],
): number {
  if (generatedIds.length === 0) return 0;
  const ids = [...promptIds, ...generatedIds];
  const t = scoreIds(tuned, ids).tokens;
  const b = scoreIds(base, ids).tokens;
  let sum = 0;
  for (let i = promptIds.length; i < ids.length; i++) sum += t[i]!.logprob! - b[i]!.logprob!;
  return sum / generatedIds.length;
}

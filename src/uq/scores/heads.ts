/**
 * Learned-head scores (uq/heads.ts): each reads the answer's mean hidden state and confidence
 * through a head fitted on held-out graded answers (`attune uq fit-head`, applied with
 * `eval --head DIR`).
 */
import { UsageError } from '../../errors.ts';
import type { HeadKind } from '../heads.ts';
import { headScore } from '../heads.ts';
import { type ExtraPassContext, registerExtraPassScore } from './registry.ts';

/** exp(mean log-prob) of the answer tokens (scores.ts's sequenceConfidence; 1 when empty). */
function confidenceOf(logprobs: readonly number[]): number {
  return logprobs.length === 0 ? 1 : Math.exp(logprobs.reduce((s, v) => s + v, 0) / logprobs.length);
}

function scoreWith(kind: HeadKind, name: string) {
  return (ctx: ExtraPassContext): number => {
    const file = ctx.heads?.find((h) => h.head.kind === kind);
    if (!file)
      throw new UsageError(
        `${name}: needs a fitted ${kind} head (attune uq fit-head --kind ${kind}, then eval --head DIR)`,
      );
    return headScore(file.head, ctx.internals().meanHidden, confidenceOf(ctx.tokens.logprobs));
  };
}

registerExtraPassScore({
  name: 'evidential_vacuity',
  description:
    'K / S of the Dirichlet alpha = softplus(W h + b) + 1 over (correct, wrong), h = mean hidden state; head fitted with the evidential MSE loss + annealed KL',
  requires: 'head',
  headKind: 'evidential',
  computeExtra: scoreWith('evidential', 'evidential_vacuity'),
});
registerExtraPassScore({
  name: 'deup',
  description:
    'e^(h) - a: a regressor of the held-out 0/1 error of the greedy answer minus the aleatoric estimate a = 1 - confidence (DEUP)',
  requires: 'head',
  headKind: 'deup',
  computeExtra: scoreWith('deup', 'deup'),
});
registerExtraPassScore({
  name: 'bayescap',
  description:
    'sigma of the identity cap mu = confidence + w.h + b, log sigma^2 = v.h + c, fitted by Gaussian NLL of correctness + identity loss (BayesCap)',
  requires: 'head',
  headKind: 'bayescap',
  computeExtra: scoreWith('bayescap', 'bayescap'),
});

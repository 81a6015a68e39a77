/**
 * Density scores on the answer's mean hidden state (LM-Polygraph's MahalanobisDistanceSeq and
 * RelativeMahalanobisDistanceSeq; definitions and the ridge in uq/density.ts). They need a density
 * fitted on training data (`attune uq fit-density`, applied with `eval --density FILE`); relative
 * MD also needs that density fitted with `--background`.
 */
import { UsageError } from '../../errors.ts';
import { mahalanobisDistance, relativeMahalanobisDistance } from '../density.ts';
import { type ExtraPassContext, registerExtraPassScore } from './registry.ts';

function densityOf(ctx: ExtraPassContext, score: string) {
  if (!ctx.density)
    throw new UsageError(
      `${score}: needs a fitted density (attune uq fit-density, then eval --density FILE)`,
    );
  return ctx.density;
}

registerExtraPassScore({
  name: 'mahalanobis',
  description:
    'sqrt((h - mu)^T Sigma^-1 (h - mu)), h = mean final hidden state of prompt + answer, (mu, Sigma + ridge) fitted on training data',
  requires: 'density',
  computeExtra: (ctx) =>
    mahalanobisDistance(densityOf(ctx, 'mahalanobis').inDomain, ctx.internals().meanHidden),
});
registerExtraPassScore({
  name: 'relative_mahalanobis',
  description: 'MD(h) - MD_0(h), MD_0 under a Gaussian fitted on background data (fit-density --background)',
  requires: 'density',
  computeExtra(ctx) {
    const density = densityOf(ctx, 'relative_mahalanobis');
    if (!density.background)
      throw new UsageError('relative_mahalanobis: the density was fitted without --background data');
    return relativeMahalanobisDistance(density.inDomain, density.background, ctx.internals().meanHidden);
  },
});

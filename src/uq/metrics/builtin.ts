/**
 * The built-in uncertainty metrics, registered in the order tables print them (definitions in
 * METHODS.md section 1 and docs/uq.md; implementations in ranking.ts, selective.ts, calibration.ts).
 * AUROC and AUPR detect wrong answers (positive = wrong, score = uncertainty).
 */
import { brier, ece, mce, nll } from './calibration.ts';
import { aupr, auroc } from './ranking.ts';
import { registerUqMetric } from './registry.ts';
import { auarc, aurc, prr } from './selective.ts';

const wrong = (correct: Uint8Array) => correct.map((c) => 1 - c);

registerUqMetric({
  name: 'auroc',
  description: 'AUROC of detecting wrong answers by the uncertainty (ties by average rank)',
  needs: 'ranking',
  better: 'higher',
  compute: (i) => auroc(i.uncertainty, wrong(i.correct)),
});
registerUqMetric({
  name: 'aupr',
  description: 'average precision of detecting wrong answers (as scikit-learn)',
  needs: 'ranking',
  better: 'higher',
  compute: (i) => aupr(i.uncertainty, wrong(i.correct)),
});
registerUqMetric({
  name: 'prr',
  description: 'prediction-rejection ratio (LM-Polygraph), quality = correctness',
  needs: 'ranking',
  better: 'higher',
  compute: (i) => prr(i.uncertainty, i.correct),
});
registerUqMetric({
  name: 'aurc',
  description: 'area under the risk-coverage curve (error rate of the k most confident, mean over k)',
  needs: 'ranking',
  better: 'lower',
  compute: (i) => aurc(i.uncertainty, i.correct),
});
registerUqMetric({
  name: 'auarc',
  description: 'area under the accuracy-rejection curve (accuracy of the k most confident, mean over k)',
  needs: 'ranking',
  better: 'higher',
  compute: (i) => auarc(i.uncertainty, i.correct),
});
registerUqMetric({
  name: 'ece',
  description: 'expected calibration error, equal-width bins',
  needs: 'calibration',
  better: 'lower',
  compute: (i) => ece(i.confidence!, i.correct, { bins: i.bins }),
});
registerUqMetric({
  name: 'mce',
  description: 'maximum calibration error over the equal-width bins',
  needs: 'calibration',
  better: 'lower',
  compute: (i) => mce(i.confidence!, i.correct, { bins: i.bins }),
});
registerUqMetric({
  name: 'brier',
  description: 'Brier score: mean (confidence - correct)^2',
  needs: 'calibration',
  better: 'lower',
  compute: (i) => brier(i.confidence!, i.correct),
});
registerUqMetric({
  name: 'nll',
  description: 'negative log-likelihood of correctness (probabilities clipped to [1e-12, 1 - 1e-12])',
  needs: 'calibration',
  better: 'lower',
  compute: (i) => nll(i.confidence!, i.correct),
});

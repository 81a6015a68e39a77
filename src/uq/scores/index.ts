/** Uncertainty scores; importing this registers the built-in ones in report order. */
import './log-probability.ts';
import './entropy.ts';
import './margin.ts';
import './divergence.ts';
import './sampling.ts';
import './p-true.ts';
import './verbalized.ts';
import './rauq.ts';
import './mahalanobis.ts';
import './heads.ts';

export * from './registry.ts';

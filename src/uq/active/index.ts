/** Active learning: `attune active` (STAR and the random, entropy, least-confidence baselines; docs/data.md). */
import './strategies/index.ts';

export * from './config.ts';
export * from './evaluate.ts';
export * from './loop.ts';
export * from './mix.ts';
export * from './oracle.ts';
export * from './pool.ts';
export * from './score.ts';
export * from './strategy.ts';

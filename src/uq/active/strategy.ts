/**
 * The active-learning strategy registry: `strategy: {name, ...options}` (or just the name) in an
 * `attune active` config names one. A strategy scores every unlabeled candidate (higher = ask for its
 * label first); the loop queries the top `per_round` (mix.ts topKIndices, ties by pool order). A new
 * strategy is one file in strategies/ plus one import line in strategies/index.ts.
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import type { PoolItem } from './pool.ts';
import type { GreedyAnswer } from './score.ts';

/** Scores of one model on the candidates, computed on first use and cached for the round. */
export interface ModelScores {
  /** Greedy answers with their NLL and summed entropy. */
  greedy(): readonly GreedyAnswer[];
  /** MC dropout (the config's passes and rate) on the greedy answers: mean NLL, summed predictive entropy. */
  mcDropout(): { nll: Float64Array; entropy: Float64Array };
}

/** What a strategy sees in a query round. */
export interface StrategyContext {
  /** The unlabeled candidates, in pool order. */
  candidates: readonly PoolItem[];
  /** Query iteration: 0 in the first round that queries by the strategy. */
  iter: number;
  /** Seed of this round's random choices. */
  seed: number;
  /** The base model. */
  base: ModelScores;
  /** The current model: the last round's adapter on the base (the base itself before any). */
  current: ModelScores;
}

/** A registered strategy. */
export interface ActiveStrategy<O = Record<string, unknown>> extends RegistryEntry {
  /** One score per candidate; the highest are queried. */
  scores(ctx: StrategyContext, options: O): Float64Array;
}

/** Every strategy a config can name. */
export const activeStrategies = new Registry<ActiveStrategy>('active-learning strategy', 'strategy');

/** Make a strategy available as `strategy: {name: <name>, ...}`. */
export function registerStrategy<S extends z.ZodObject>(entry: {
  name: string;
  description: string;
  options: S;
  scores(ctx: StrategyContext, options: z.output<S>): Float64Array;
}): void {
  activeStrategies.register(entry as unknown as ActiveStrategy);
}

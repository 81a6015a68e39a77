/**
 * The optimizer registry: `optimizer: {name: adamw, ...}` in a training config names one. Each
 * optimizer file registers its options (torch.optim's names) and how to build it over parameter
 * groups; the trainer decides the groups (no weight decay on biases and norm weights).
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';
import type { Optimizer, ParamGroup } from './optimizer.ts';

/** A registered optimizer. */
export interface OptimizerFactory<O = Record<string, unknown>> extends RegistryEntry {
  /** Build it over `groups` with peak learning rate `lr` and its validated options. */
  create(groups: ParamGroup[], lr: number, options: O): Optimizer;
}

/** Every optimizer a config can name. */
export const optimizers = new Registry<OptimizerFactory>('optimizer', 'optimizer');

/** Make an optimizer available as `optimizer: {name: <name>, ...}`. */
export function registerOptimizer<S extends z.ZodObject>(factory: {
  name: string;
  description: string;
  options: S;
  create(groups: ParamGroup[], lr: number, options: z.output<S>): Optimizer;
}): void {
  optimizers.register(factory as unknown as OptimizerFactory);
}

/** Build the optimizer `choice` ({name, ...options}, validated) over `groups`. */
export function createOptimizer(
  choice: { name: string } & Record<string, unknown>,
  groups: ParamGroup[],
  lr: number,
): Optimizer {
  const { name, ...options } = optimizers.parse(choice);
  return optimizers.get(name).create(groups, lr, options);
}

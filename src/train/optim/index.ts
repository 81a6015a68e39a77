/** Optimizers and gradient clipping. */
export * from './adamw.ts';
export * from './clip.ts';
export * from './optimizer.ts';
export * from './registry.ts';
export * from './sgd.ts';
export * from './sm3.ts';

/** tensor/: Tensor, creation, autograd, scopes, RNG and every op. */
export * from './autograd.ts';
export * from './checkpoint.ts';
export * from './creation.ts';
export * from './dtype.ts';
export * from './linalg/index.ts';
export * from './ops/index.ts';
export { type PoolStats, pool } from './pool.ts';
export * from './quant.ts';
export * from './rng.ts';
export { keep, scope, scopeDepth } from './scope.ts';
export * from './tensor.ts';

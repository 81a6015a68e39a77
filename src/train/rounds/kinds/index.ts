/** Round kinds (`rounds.kind:`); importing this registers every built-in kind, in this order. */
import './on-policy.ts';
import './upo.ts';
import './list.ts';
import './mcts.ts';

export * from './list.ts';
export * from './mcts.ts';
export * from './on-policy.ts';
export * from './registry.ts';
export * from './upo.ts';

/** Batch transforms; importing this registers every built-in one. */
import './masked-thought.ts';
import './token-weight.ts';

export * from './masked-thought.ts';
export * from './registry.ts';
export * from './token-weight.ts';

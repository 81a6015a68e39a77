/** Self-improvement rounds: on-policy preference pairs, UPO, LiST, MCTS step pairs (docs/training.md); kinds in kinds/. */
export * from './config.ts';
export * from './kinds/index.ts';
export * from './mcts.ts';
export * from './pairs.ts';
export * from './rewards.ts';
export * from './rounds.ts';
export * from './sample.ts';

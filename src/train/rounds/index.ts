/** Self-improvement rounds: on-policy preference pairs, UPO, LiST self-training (docs/training.md). */
export * from './config.ts';
export * from './mcts.ts';
export * from './pairs.ts';
export * from './rewards.ts';
export * from './rounds.ts';

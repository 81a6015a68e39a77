/** train/: the trainer, its YAML config, losses, optimizers, LR schedules and checkpoints. */
export * from './checkpoint.ts';
export * from './config.ts';
export * from './config-docs.ts';
export * from './distill.ts';
export * from './losses/index.ts';
export * from './optim/index.ts';
export * from './precision.ts';
export * from './rounds/index.ts';
export * from './schedule.ts';
export * from './step.ts';
export * from './teacher-cache.ts';
export * from './trainer.ts';

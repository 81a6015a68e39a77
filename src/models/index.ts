/** models/: architectures built from nn/, model directories, generation and scoring. */
export * from './architecture.ts';
export * from './generate.ts';
export * from './llama/config.ts';
export * from './llama/kv-cache.ts';
export * from './llama/model.ts';
export * from './load.ts';
export * from './sampling.ts';
export * from './score.ts';

/** models/: architectures built from nn/, the model_type registry, model directories, generation and scoring. */
export * from './architecture.ts';
export * from './builtin.ts';
export * from './causal-lm.ts';
export * from './contrast.ts';
export * from './fusion.ts';
export * from './fusion-members.ts';
export * from './generate.ts';
export * from './gpt2/config.ts';
export * from './gpt2/model.ts';
export * from './kv-cache.ts';
export * from './llama/config.ts';
export * from './llama/model.ts';
export * from './load.ts';
export * from './registry.ts';
export * from './sampling.ts';
export * from './score.ts';
export * from './weights-check.ts';

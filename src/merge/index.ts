/** merge/: model merging (mergekit-style YAML, streamed tensor by tensor over safetensors inputs). */
export * from './combine.ts';
export * from './compress.ts';
export * from './config.ts';
export * from './engine.ts';
export * from './greedy-soup.ts';
export * from './memory.ts';
export * from './methods.ts';
export * from './plan.ts';
export * from './port.ts';
export * from './reference.ts';
export * from './select.ts';
export * from './settings.ts';
export * from './sparsify.ts';
export * from './writer.ts';

/** merge/: model merging (mergekit-style YAML, streamed tensor by tensor over safetensors inputs). */
// registers the built-in merge methods
import './methods/index.ts';

export * from './combine.ts';
export * from './compress.ts';
export * from './compress-select.ts';
export * from './config.ts';
export * from './engine.ts';
export * from './greedy-soup.ts';
export * from './memory.ts';
export * from './method.ts';
export * from './method-docs.ts';
export * from './parameters.ts';
export * from './plan.ts';
export * from './port.ts';
export * from './reference.ts';
export * from './select.ts';
export * from './settings.ts';
export * from './sparsify.ts';
export * from './task-arithmetic.ts';
export * from './tensor-inputs.ts';
export * from './writer.ts';

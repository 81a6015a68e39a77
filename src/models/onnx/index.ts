/** ONNX export of decoders (transformers.js / onnxruntime layout). */
export * from './decoder.ts';
export * from './export.ts';
export * from './gpt2.ts';
export * from './llama.ts';

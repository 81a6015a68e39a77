/** ONNX export of decoders (transformers.js / onnxruntime layout). */
export * from './export.ts';
export * from './llama.ts';

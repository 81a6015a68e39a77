/** io/: safetensors files and checkpoints, Hugging Face folder files (configs, tokenizer, chat template). */
export * from './atomic.ts';
export * from './byte-tokenizer.ts';
export * from './chat-template.ts';
export * from './checkpoint.ts';
export * from './gguf/index.ts';
export * from './hf.ts';
export * from './json.ts';
export * from './onnx/index.ts';
export * from './safetensors.ts';
export * from './tokenizer.ts';

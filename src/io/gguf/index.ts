/** io/gguf: GGUF files for llama.cpp / Ollama — the writer, models and LoRA adapters in llama.cpp's layout. */
export * from './arch.ts';
export * from './encode.ts';
export * from './lora.ts';
export * from './model.ts';
export * from './types.ts';
export * from './vocab.ts';
export * from './writer.ts';

/** peft/: tuners (full fine-tuning, LoRA) behind one interface, and PEFT adapter directories. */
export * from './corda.ts';
export * from './dora.ts';
export * from './full.ts';
export * from './lora.ts';
export * from './lora-convert.ts';
export * from './lora-files.ts';
export * from './lora-init.ts';
export * from './lora-linear.ts';
export * from './lora-r.ts';
export * from './lora-sb.ts';
export * from './lora-xs.ts';
export * from './targets.ts';
export * from './tuner.ts';

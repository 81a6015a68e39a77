/** peft/: tuners (full fine-tuning, LoRA) behind one interface, and PEFT adapter directories. */
export * from './dora.ts';
export * from './full.ts';
export * from './hft.ts';
export * from './layer-freeze.ts';
export * from './layer-groups.ts';
export * from './lora.ts';
export * from './lora-convert.ts';
export * from './lora-files.ts';
export * from './lora-init.ts';
export * from './lora-linear.ts';
export * from './partial-full.ts';
export * from './sparse-delta-linear.ts';
export * from './sparse-ft.ts';
export * from './targets.ts';
export * from './top-k.ts';
export * from './tuner.ts';

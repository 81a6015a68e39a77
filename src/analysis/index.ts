/** analysis/: weight analysis of fine-tuned models (intruder dimensions). */
export * from './intruders.ts';
export * from './lora-delta.ts';

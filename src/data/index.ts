/** data/: JSONL formats, chat templates, tokenization with label masking, batching. */
export * from './batching.ts';
export * from './chat.ts';
export * from './dataset.ts';
export * from './jsonl.ts';
export * from './preference.ts';
export * from './self-to-supervised.ts';
export * from './tokenize.ts';
export * from './transforms/index.ts';

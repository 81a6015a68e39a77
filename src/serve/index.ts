/** serve/: the OpenAI-compatible server (`attune serve`), its decode loop and its load test. */
export * from './engine.ts';
export * from './load-test.ts';
export * from './multi-lora.ts';
export * from './openai-requests.ts';
export * from './openai-responses.ts';
export * from './server.ts';
export * from './uncertainty.ts';

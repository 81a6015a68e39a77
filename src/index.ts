/**
 * Attune's public API: `import { ... } from 'attune'`. Each layer of DESIGN.md adds its exports
 * here as it lands; nothing inside src/ imports this file.
 */
export { type BackendInfo, backendInfo, type Kernels, kernels, setBackend } from './backend/index.ts';
export * from './errors.ts';
export * from './io/index.ts';
export * from './models/index.ts';
export * from './nn/index.ts';
export * from './peft/index.ts';
export * from './tensor/index.ts';

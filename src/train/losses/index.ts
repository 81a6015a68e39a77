/** Token losses; importing this registers every built-in loss. */
import './ce.ts';
import './dpo.ts';
import './ua-clm.ts';

export * from './ce.ts';
export * from './dpo.ts';
export * from './reference-logps.ts';
export * from './registry.ts';
export * from './ua-clm.ts';

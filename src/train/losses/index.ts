/** Token losses; importing this registers every built-in loss. */
import './ce.ts';
import './dpo.ts';
import './first.ts';
import './ua-clm.ts';

export * from './ce.ts';
export * from './dpo.ts';
export * from './first.ts';
export * from './reference-logps.ts';
export * from './registry.ts';
export * from './ua-clm.ts';

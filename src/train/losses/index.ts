/** Token losses; importing this registers every built-in loss. */
import './ce.ts';
import './first.ts';
import './ua-clm.ts';

export * from './ce.ts';
export * from './first.ts';
export * from './registry.ts';
export * from './ua-clm.ts';

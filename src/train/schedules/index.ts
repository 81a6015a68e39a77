/** Learning-rate schedules; importing this registers the built-in ones. */
import './constant.ts';
import './cosine.ts';
import './linear.ts';

export * from './registry.ts';

/** Data selection (attune data select): the method registry, the built-in methods, the file driver. */
import './perplexity.ts';
import './distribution-shift.ts';
import './mates.ts';

export { meanNll, oracleInfluence, pooledNll, recordEmbedding } from './record-model.ts';
export * from './registry.ts';
export * from './ridge.ts';
export * from './select-file.ts';
export * from './sinkhorn.ts';

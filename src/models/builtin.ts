/** The architectures Attune ships, registered once (import this module to use the registry). */
import { gpt2Architecture } from './gpt2/architecture.ts';
import { llamaArchitecture } from './llama/architecture.ts';
import { registerArchitecture } from './registry.ts';

registerArchitecture(llamaArchitecture);
registerArchitecture(gpt2Architecture);

export { gpt2Architecture, llamaArchitecture };

/** The architectures Attune ships, registered once (import this module to use the registry). */
import { llamaArchitecture } from './llama/architecture.ts';
import { registerArchitecture } from './registry.ts';

registerArchitecture(llamaArchitecture);

export { llamaArchitecture };

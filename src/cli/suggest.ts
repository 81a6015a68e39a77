/** "Did you mean ...?" for the CLI: the one implementation lives in config/suggest.ts. */
export { closest, editDistance } from '../config/suggest.ts';

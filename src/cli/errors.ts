/** Errors particular to the CLI. */
import { AttuneError } from '../errors.ts';

/** A part of Attune that this build or checkout does not have yet (or that failed to load). */
export class UnavailableError extends AttuneError {}

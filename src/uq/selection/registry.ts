/**
 * The data-selection methods of `attune data select`: each scores every candidate record (higher =
 * selected first) from the reference model and, for methods that need one, a target-domain sample.
 * A method is one file in this folder with a `registerSelectionMethod` call plus one import line in
 * index.ts.
 */
import type { z } from 'zod';
import { Registry } from '../../config/registry.ts';
import type { TokenizedExample } from '../../data/index.ts';
import type { Tokenizer } from '../../io/index.ts';
import type { CausalLM } from '../../models/index.ts';
import type { Adapter } from '../../peft/index.ts';

/** What a selection method is given. */
export interface SelectionInput {
  model: CausalLM;
  tokenizer: Tokenizer;
  /** The adapter loaded on the model, if any (MATES trains it for the oracle step). */
  adapter: Adapter | null;
  /** Every candidate, tokenized as fine-tuning would see it. */
  candidates: readonly TokenizedExample[];
  /** The target-domain sample (null when none was given). */
  target: readonly TokenizedExample[] | null;
  seed: number;
  /** A loop over records: `label` names it, called with (done, total). */
  onProgress?: (label: string, done: number, total: number) => void;
}

/** A method's scores, one per candidate, and what it wants to report beside them. */
export interface SelectionScores {
  /** Higher = selected first. */
  scores: Float64Array;
  /** Per-candidate extra columns of the scores file (e.g. perplexity). */
  columns?: Record<string, Float64Array>;
  /** Method facts for the --json summary (probe count, fit quality...). */
  summary?: Record<string, number | string>;
}

/** One selection method. */
export interface SelectionMethod<O = Record<string, unknown>> {
  name: string;
  description: string;
  /** Its options (a zod object with defaults). */
  options: z.ZodObject;
  /** Whether it needs --target. */
  needsTarget: boolean;
  score(input: SelectionInput, options: O): SelectionScores;
}

/** The registry of selection methods. */
export const selectionMethods = new Registry<SelectionMethod>('selection method', 'method');

/** Register a selection method (its file adds one import line to index.ts). */
export function registerSelectionMethod<O>(method: SelectionMethod<O>): void {
  selectionMethods.register(method as unknown as SelectionMethod);
}

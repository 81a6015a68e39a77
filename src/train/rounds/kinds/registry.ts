/**
 * Round kinds (`rounds.kind:`): how one round of `attune rounds` turns the current policy into its
 * training data. A kind declares its options (fields of the `rounds:` section, each with a default
 * and a `.describe()` line), whether it trains on preference pairs or on records, whether it needs
 * a reward, its own config checks, and `start`, which checks a run once and returns the builder of
 * each round's data. The rounds schema, the config checks, the runner (rounds.ts), `--help` and the
 * generated docs iterate this registry: a new kind is one file in this folder calling
 * `registerRoundKind` plus one import line in kinds/index.ts (docs/extending.md).
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../../../config/registry.ts';
import { ConfigError } from '../../../errors.ts';
import type { LoadedModel } from '../../../models/index.ts';
import type { RewardFn, RoundPrompt, RoundsEvent, RoundsOptions, RoundsSpec } from '../rounds.ts';

/** What a kind's config check sees: the validated `rounds:` section and its reward (paths resolved). */
export interface RoundKindConfig {
  /** The config file, for messages (`FILE: rounds.reward: ...`). */
  where: string;
  section: Record<string, unknown>;
  reward: ({ name: string } & Record<string, unknown>) | null;
}

/** A run of rounds as a kind's `start` sees it. */
export interface RoundsRun {
  spec: RoundsSpec;
  prompts: readonly RoundPrompt[];
  /** The reward (always set when the kind `needsReward`). */
  reward: RewardFn | undefined;
  options: RoundsOptions;
}

/** One round as a kind's round builder sees it. */
export interface RoundInput {
  round: number;
  /** The round's policy (it has a tokenizer). */
  policy: LoadedModel;
  emit: (event: RoundsEvent) => void;
}

/** What one round built: the runner writes `samples` and `rows`, then trains on `rows`. */
export interface RoundData {
  /** The lines of round-<r>/samples.jsonl (graded samples, labels, search evaluations). */
  samples: readonly unknown[];
  /** Samples drawn, for the summary (default: samples.length). */
  sampled?: number;
  /** Pairs built or labels made, before any filter. */
  candidates: number;
  /** The lines of round-<r>/train.jsonl. */
  rows: readonly unknown[];
  /** Rows the round itself contributed (default: rows.length; list also trains on 'labelled'). */
  kept?: number;
  /** Mean reward of the samples, or mean confidence of the labels. */
  meanScore: number;
  /** Tree-search nodes expanded (mcts), shown in the summary when set. */
  nodes?: number;
  /** Why nothing is left to train on, the error after `rounds: round <r>: ` when `rows` is empty. */
  emptyReason: string;
}

/** A registered round kind. */
export interface RoundKind extends RegistryEntry {
  /**
   * 'pairs': rows {prompt, chosen, rejected} for a pair loss (one whose data has groupSize 2, e.g.
   * dpo); 'records': rows {prompt, completion} for a token loss (e.g. ce).
   */
  readonly trainsOn: 'pairs' | 'records';
  /** What the rows are called in the loss error ('pseudo-labels'); default 'pairs' / 'records'. */
  readonly rowsName?: string;
  /** Whether `rounds.reward` is required. */
  readonly needsReward: boolean;
  /** Checks beyond the options schema; a ConfigError naming the field. */
  validate?(config: RoundKindConfig): void;
  /** The spec fields of its validated options (default: the options as they are). */
  toSpec?(options: Record<string, unknown>): Partial<RoundsSpec>;
  /** Check the run (a ConfigError naming the field) and return the builder of each round's data. */
  start(run: RoundsRun): (input: RoundInput) => RoundData;
}

/** Every kind `rounds.kind` can name. */
export const roundKinds = new Registry<RoundKind>('round kind', 'rounds.kind');

/**
 * Make a kind available as `rounds.kind: <name>`. Its options are fields of the flat `rounds:`
 * section: a name already used by a common field or another kind is refused when a config is
 * validated (rounds/config.ts roundsSchema).
 */
export function registerRoundKind<S extends z.ZodObject>(
  kind: Omit<RoundKind, 'options' | 'toSpec'> & {
    options: S;
    toSpec?(options: z.output<S>): Partial<RoundsSpec>;
  },
): void {
  roundKinds.register(kind as unknown as RoundKind);
}

/** Names and descriptions of the registered kinds. */
export function listRoundKinds(): { name: string; description: string }[] {
  return roundKinds.list().map((k) => ({ name: k.name, description: k.description }));
}

/** A ConfigError unless the run samples at least 2 responses per prompt (kinds that pair samples). */
export function needTwoSamples(kind: string, spec: Pick<RoundsSpec, 'samples'>): void {
  if (spec.samples < 2)
    throw new ConfigError(
      `rounds.samples: ${kind} needs at least 2 samples per prompt, found ${spec.samples}`,
    );
}

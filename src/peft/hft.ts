/**
 * Half Fine-Tuning (HFT: "Half Fine-Tuning for Large Language Models"), registered as the tuner
 * 'hft' (peft_type "HFT"). Each stage, in every transformer layer, half of the attention block's
 * matrices and half of the MLP block's (by parameter count) train and the other half is frozen.
 *
 * The per-layer rule (METHODS.md leaves it open): per (layer, block) the block's matrices (a matrix
 * with its bias is one unit) form subsets; among those whose parameter count is closest to half the
 * block's, one is drawn uniformly with `Rng(mix(seed, stage, layer, block))`. So llama's attention
 * with grouped KV trains q+k, q+v, o+k or o+v (exactly half), and its three equal MLP matrices one
 * or two (each of the six subsets equally likely). Blocks of more than 12 units are drawn greedily
 * (random order, taken while within half).
 * Norms and everything outside the layers (embeddings, final norm, head) follow `other`
 * (default frozen).
 *
 * `stages` (default 1: one draw per run, the paper's setting for one SFT run) splits the run into
 * equal parts by step, each with its own draw; the draw is a pure function of (seed, stage), so a
 * resumed run redraws the same halves and nothing is checkpointed for it. The optimizer covers the
 * union of the stages' halves; in each stage the others are frozen (no gradient buffer, skipped by
 * the optimizer). The adapter saves the union (partial-full.ts).
 */
import { z } from 'zod';
import { FormatError } from '../errors.ts';
import { type Module, mixSeed } from '../nn/index.ts';
import { Rng } from '../tensor/index.ts';
import { layerGroups, type ParamUnit } from './layer-groups.ts';
import { checkTrainableDtypes, PartialFullAdapter, trainedParametersFromJson } from './partial-full.ts';
import { registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** The peft_type of hft adapter directories (Attune's own). */
export const HFT_PEFT_TYPE = 'HFT';

export interface HftConfig {
  /** Number of equal stages, each with its own draw (default 1). */
  stages?: number;
  /** Norms, embeddings, final norm and head: 'freeze' (default) or 'train'. */
  other?: 'freeze' | 'train';
  /** Seed of the draws (the run's train.seed). */
  seed?: number;
  /** Exactly these parameters, in one stage (an adapter directory being loaded). */
  trainedParameters?: string[];
}

/** The hft options of a training config. */
export const hftOptions = z.object({
  stages: z
    .number()
    .int()
    .positive()
    .default(1)
    .describe('equal parts of the run, each freezing a freshly drawn half (1: one draw per run)'),
  other: z
    .enum(['freeze', 'train'])
    .default('freeze')
    .describe('norms, embeddings, final norm and LM head: frozen or always trained'),
});

const BLOCK_IDS = { attention: 0, mlp: 1 } as const;

/** Exhaustive subset search up to this many units per block (2^n subsets); greedy above it. */
const EXHAUSTIVE_UNITS = 12;

/**
 * Units of one block taken for training: a subset whose parameter count is closest to half the
 * block's, uniformly at random among the closest; see the file comment.
 */
function drawHalf(units: readonly ParamUnit[], rng: Rng): ParamUnit[] {
  if (units.length === 0) return [];
  const half = units.reduce((s, u) => s + u.size, 0) / 2;
  if (units.length <= EXHAUSTIVE_UNITS) {
    let best = Number.POSITIVE_INFINITY;
    let ties: number[] = [];
    for (let mask = 0; mask < 1 << units.length; mask++) {
      let count = 0;
      for (let i = 0; i < units.length; i++) if (mask & (1 << i)) count += units[i]!.size;
      const gap = Math.abs(count - half);
      if (gap < best) {
        best = gap;
        ties = [mask];
      } else if (gap === best) ties.push(mask);
    }
    const mask = ties[rng.int(ties.length)]!;
    return units.filter((_, i) => mask & (1 << i));
  }
  // many units: take them in a random order while the count stays within half
  const taken: ParamUnit[] = [];
  let count = 0;
  for (const u of rng.shuffle([...units])) {
    if (count + u.size <= half) {
      taken.push(u);
      count += u.size;
    }
  }
  return taken;
}

/** The Hub names HFT trains on `model` in `stage` with `seed` (pure function of its arguments). */
export function hftSelection(
  model: Module,
  seed: number,
  stage: number,
  other: 'freeze' | 'train',
): Set<string> {
  const groups = layerGroups(model);
  const names = new Set<string>();
  groups.layers.forEach((units, layer) => {
    for (const block of ['attention', 'mlp'] as const) {
      const key = mixSeed(mixSeed(mixSeed(seed >>> 0, stage), layer), BLOCK_IDS[block]);
      for (const u of drawHalf(
        units.filter((x) => x.block === block),
        new Rng(key),
      ))
        for (const n of u.names) names.add(n);
    }
    if (other === 'train')
      for (const u of units)
        if (u.block === 'norm' || u.block === 'other') for (const n of u.names) names.add(n);
  });
  if (other === 'train')
    for (const n of [...groups.embeddings, ...groups.finalNorms, ...groups.head, ...groups.rest])
      names.add(n);
  return names;
}

/** The stage (0-based) step `step` (1-based) of `totalSteps` belongs to. */
export function hftStage(step: number, totalSteps: number, stages: number): number {
  return Math.min(stages - 1, Math.floor(((step - 1) * stages) / Math.max(1, totalSteps)));
}

/** HFT's adapter: a PartialFullAdapter that switches halves at stage boundaries. */
export class HftAdapter extends PartialFullAdapter {
  private stage = 0;

  /** Use the 'hft' tuner. */
  constructor(
    model: Module,
    private readonly perStage: readonly Set<string>[],
    json: Record<string, number | string>,
  ) {
    const union = new Set(perStage.flatMap((s) => [...s]));
    super('hft', HFT_PEFT_TYPE, model, union, snapshotTrainable(model), json, perStage[0]);
  }

  /** The stage whose half trains now. */
  get currentStage(): number {
    return this.stage;
  }

  /** Train stage `stage`'s half (freezing the rest). */
  setStage(stage: number): void {
    this.stage = stage;
    this.setActive(this.perStage[stage]!);
  }

  /** Switch to the stage of `step` when it changes. */
  beginStep(step: number, totalSteps: number): void {
    const s = hftStage(step, totalSteps, this.perStage.length);
    if (s !== this.stage) this.setStage(s);
  }
}

/** The 'hft' tuner. */
export const hftTuner: Tuner<HftConfig> = {
  name: 'hft',
  description: 'Half Fine-Tuning: per layer, a seeded random half of the attention and MLP matrices trains',
  peftType: HFT_PEFT_TYPE,
  options: hftOptions,
  inPlace: true,
  fromOptions(options, context): HftConfig {
    const o = hftOptions.parse(options);
    return { stages: o.stages, other: o.other, seed: context.seed };
  },
  configFromAdapterJson(json, file) {
    if (json.peft_type !== HFT_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "HFT"`);
    return { trainedParameters: trainedParametersFromJson(json, file) };
  },
  apply(model, config = {}) {
    const stages = config.stages ?? 1;
    const other = config.other ?? 'freeze';
    const seed = config.seed ?? 0;
    const perStage = config.trainedParameters
      ? [new Set(config.trainedParameters)]
      : Array.from({ length: stages }, (_, s) => hftSelection(model, seed, s, other));
    for (const s of perStage) checkTrainableDtypes('hft', model, s);
    return new HftAdapter(model, perStage, { stages, other, seed });
  },
};

registerTuner('hft', hftTuner);

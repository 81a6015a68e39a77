/**
 * Batch transforms (`data.transforms: [{name, ...options}]`): a registered rule that rewrites a
 * training micro-batch just before its forward pass — the input ids (Masked Thought) or per-token
 * loss weights — never the labels. A transform is a pure function of the batch, the run's seed and
 * the step, so a resumed run draws exactly what the uninterrupted one drew (nothing to checkpoint).
 */
import type { z } from 'zod';
import { Registry, type RegistryEntry } from '../../config/registry.ts';

/** The flat, row-major view of one micro-batch a transform rewrites in place ([B*T] each). */
export interface TransformableBatch {
  /** Input ids [B*T]; a transform may overwrite entries. */
  inputIds: Int32Array;
  /** Labels [B*T], aligned with inputIds (-100 = not trained); read-only for transforms. */
  readonly labels: Int32Array;
  /** Per position: the example index (-1 on padding). */
  readonly exampleOf: Int32Array;
  /** Per position: the position inside its example (-1 on padding). */
  readonly positionOf: Int32Array;
  /** Per position: the loss weight of the label at that position (absent = 1 everywhere). */
  weights?: Float32Array;
}

/** Where in the run a micro-batch is: transforms key their random draws on this. */
export interface TransformContext {
  /** The run's seed (train.seed). */
  seed: number;
  /** The optimizer step (1-based). */
  step: number;
  /** The id padding uses (the default mask id of Masked Thought). */
  padTokenId: number;
}

/** A transform built from its validated options. */
export interface BatchTransform {
  readonly name: string;
  /** It sets `weights` (the loss must accept per-token weights: `TokenLoss.acceptsWeights`). */
  readonly setsWeights?: boolean;
  /** Rewrite `batch` in place. */
  apply(batch: TransformableBatch, context: TransformContext): void;
}

/** A registered transform: name, description, options schema and how to build it. */
export interface BatchTransformFactory extends RegistryEntry {
  create(options: Record<string, unknown>): BatchTransform;
}

/** Every transform `data.transforms` can name. */
export const batchTransforms = new Registry<BatchTransformFactory>('data transform', 'data.transforms');

/** Make a transform available as `data.transforms: [{name: <name>, ...}]`. */
export function registerBatchTransform<S extends z.ZodObject>(factory: {
  name: string;
  description: string;
  options: S;
  create(options: z.output<S>): BatchTransform;
}): void {
  batchTransforms.register(factory as unknown as BatchTransformFactory);
}

/** Build the transforms of a config's `data.transforms` list (each already validated by the schema). */
export function createBatchTransforms(
  choices: readonly ({ name: string } & Record<string, unknown>)[],
): BatchTransform[] {
  return choices.map((choice, i) => {
    const { name, ...options } = batchTransforms.parse(choice, `data.transforms.${i}`);
    return batchTransforms.get(name).create(options);
  });
}

/**
 * A uniform draw in [0, 1) that depends only on (seed, step, example, position): the same token of
 * the same example at the same step always gets the same draw, whatever batch it lands in.
 */
export function tokenUniform(seed: number, step: number, example: number, position: number): number {
  let h = hash32(seed >>> 0, step);
  h = hash32(h, example);
  h = hash32(h, position);
  return h / 4294967296;
}

/** splitmix-style mix of a 32-bit state and a counter. */
function hash32(state: number, counter: number): number {
  let z = (state ^ Math.imul(counter + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

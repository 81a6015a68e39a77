/**
 * Layer freezing (Telly, "... layer-wise pre-trained representations ..."), registered as the
 * tuner 'layer_freeze' (peft_type "LAYER_FREEZE"): the embeddings and the bottom K transformer
 * layers are frozen, the layers above train in place. Which layers train is `freeze_first_n` (K) or
 * an explicit `train_layers` list (negative indices count from the top: -1 is the last layer); with
 * neither, the bottom half is frozen. Every parameter of a trained layer trains (its norms too);
 * the embeddings, the final norm and an untied LM head each have a switch (a tied head is the
 * embedding matrix and follows `train_embeddings`). Frozen parameters get no gradient and stay
 * bit-identical. Files: partial-full.ts (only the trained tensors).
 */
import { z } from 'zod';
import { ConfigError, FormatError } from '../errors.ts';
import type { Module } from '../nn/index.ts';
import { layerGroups } from './layer-groups.ts';
import { checkTrainableDtypes, PartialFullAdapter, trainedParametersFromJson } from './partial-full.ts';
import { registerTuner, snapshotTrainable, type Tuner } from './tuner.ts';

/** The peft_type of layer_freeze adapter directories (Attune's own). */
export const LAYER_FREEZE_PEFT_TYPE = 'LAYER_FREEZE';

export interface LayerFreezeConfig {
  /** Freeze the bottom K layers (null: see trainLayers; both null: half the layers). */
  freezeFirstN?: number | null;
  /** Train exactly these layers (negative: from the top). Exclusive with freezeFirstN. */
  trainLayers?: number[] | null;
  trainEmbeddings?: boolean;
  trainFinalNorm?: boolean;
  trainHead?: boolean;
  /** Exactly these parameters (an adapter directory being loaded); overrides the rest. */
  trainedParameters?: string[];
}

/** The layer_freeze options of a training config. */
export const layerFreezeOptions = z.object({
  freeze_first_n: z
    .number()
    .int()
    .min(0)
    .nullable()
    .default(null)
    .describe('freeze the bottom K transformer layers (null with train_layers null: half of them)'),
  train_layers: z
    .array(z.number().int())
    .min(1)
    .nullable()
    .default(null)
    .describe('train exactly these layers (negative counts from the top); instead of freeze_first_n'),
  train_embeddings: z.boolean().default(false).describe('train the token (and position) embeddings'),
  train_final_norm: z.boolean().default(true).describe('train the norm after the last layer'),
  train_head: z
    .boolean()
    .default(true)
    .describe('train an untied LM head (a tied one follows train_embeddings)'),
});

/** The Hub names `config` trains on `model`; throws a ConfigError naming the bad field. */
export function layerFreezeSelection(model: Module, config: LayerFreezeConfig): Set<string> {
  if (config.trainedParameters) return new Set(config.trainedParameters);
  const groups = layerGroups(model);
  const n = groups.layers.length;
  if (n === 0) throw new ConfigError('layer_freeze: the model has no transformer layers (layers.N / h.N)');
  const trained = new Set<number>();
  const { freezeFirstN = null, trainLayers = null } = config;
  if (freezeFirstN !== null && trainLayers !== null)
    throw new ConfigError('layer_freeze: give freeze_first_n or train_layers, not both');
  if (trainLayers !== null) {
    for (const l of trainLayers) {
      const i = l < 0 ? n + l : l;
      if (!Number.isInteger(l) || i < 0 || i >= n)
        throw new ConfigError(`layer_freeze: train_layers entry ${l} is outside the model's ${n} layers`);
      trained.add(i);
    }
  } else {
    const k = freezeFirstN ?? Math.floor(n / 2);
    if (!Number.isInteger(k) || k < 0 || k > n)
      throw new ConfigError(`layer_freeze: freeze_first_n must be an integer in [0, ${n}], found ${k}`);
    for (let i = k; i < n; i++) trained.add(i);
  }
  const names = new Set<string>();
  for (const i of trained) for (const u of groups.layers[i]!) for (const name of u.names) names.add(name);
  if (config.trainEmbeddings ?? false) for (const name of groups.embeddings) names.add(name);
  if (config.trainFinalNorm ?? true) for (const name of groups.finalNorms) names.add(name);
  if (config.trainHead ?? true) for (const name of groups.head) names.add(name);
  return names;
}

/** The 'layer_freeze' tuner. */
export const layerFreezeTuner: Tuner<LayerFreezeConfig> = {
  name: 'layer_freeze',
  description:
    'layer freezing (Telly): freeze the embeddings and the bottom K layers, train the rest in place',
  peftType: LAYER_FREEZE_PEFT_TYPE,
  options: layerFreezeOptions,
  inPlace: true,
  fromOptions(options): LayerFreezeConfig {
    const o = layerFreezeOptions.parse(options);
    return {
      freezeFirstN: o.freeze_first_n,
      trainLayers: o.train_layers,
      trainEmbeddings: o.train_embeddings,
      trainFinalNorm: o.train_final_norm,
      trainHead: o.train_head,
    };
  },
  configFromAdapterJson(json, file) {
    if (json.peft_type !== LAYER_FREEZE_PEFT_TYPE)
      throw new FormatError(file, `peft_type is ${JSON.stringify(json.peft_type)}, expected "LAYER_FREEZE"`);
    return { trainedParameters: trainedParametersFromJson(json, file) };
  },
  apply(model, config = {}) {
    const names = layerFreezeSelection(model, config);
    checkTrainableDtypes('layer_freeze', model, names);
    const json = {
      freeze_first_n: config.freezeFirstN ?? null,
      train_layers: config.trainLayers ?? null,
      train_embeddings: config.trainEmbeddings ?? false,
      train_final_norm: config.trainFinalNorm ?? true,
      train_head: config.trainHead ?? true,
    };
    return new PartialFullAdapter(
      'layer_freeze',
      LAYER_FREEZE_PEFT_TYPE,
      model,
      names,
      snapshotTrainable(model),
      json,
    );
  },
};

registerTuner('layer_freeze', layerFreezeTuner);

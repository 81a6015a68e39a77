/**
 * A decoder's parameters grouped the way selective fine-tuning picks them: per transformer layer
 * (`model.layers.N.` in llama, `transformer.h.N.` in GPT-2), each layer's matrices in units (one
 * Linear / Conv1D: its weight with its bias) of the attention block, the MLP block, and its norms;
 * everything outside the layers (embeddings, final norm, LM head) apart.
 */
import { LayerNorm, type Module, RMSNorm } from '../nn/index.ts';

/** Which part of a layer a unit belongs to. */
export type BlockKind = 'attention' | 'mlp' | 'norm' | 'other';

/** One module's parameters (a matrix with its bias, or a norm's weight and bias). */
export interface ParamUnit {
  /** The module's dotted path. */
  module: string;
  /** Hub names of its parameters. */
  names: string[];
  /** Number of values. */
  size: number;
  block: BlockKind;
}

/** A model's parameters by layer. */
export interface LayerGroups {
  /** layers[i]: the units of transformer layer i. */
  layers: ParamUnit[][];
  /** Parameters outside the layers: embeddings (and a tied head), the final norm, an untied head. */
  embeddings: string[];
  finalNorms: string[];
  head: string[];
  /** Anything else outside the layers. */
  rest: string[];
}

const LAYER_PATH = /^(.*?(?:^|\.)(?:layers|h)\.(\d+))\.(.+)$/;

/** Group `model`'s parameters by layer and block; see the file comment. */
export function layerGroups(model: Module): LayerGroups {
  const modules = new Map(model.namedModules());
  const groups: LayerGroups = { layers: [], embeddings: [], finalNorms: [], head: [], rest: [] };
  const units = new Map<string, ParamUnit>();
  for (const [name, p] of model.namedParameters()) {
    const dot = name.lastIndexOf('.');
    const modulePath = dot < 0 ? '' : name.slice(0, dot);
    const m = modules.get(modulePath);
    const isNorm = m instanceof RMSNorm || m instanceof LayerNorm;
    const match = LAYER_PATH.exec(name);
    if (!match) {
      if (isNorm) groups.finalNorms.push(name);
      else if (/(^|\.)(embed_tokens|wte|wpe|embed_positions)\./.test(name)) groups.embeddings.push(name);
      else if (/(^|\.)lm_head\./.test(name)) groups.head.push(name);
      else groups.rest.push(name);
      continue;
    }
    const layer = Number(match[2]);
    const inLayer = match[3]!;
    const block: BlockKind = isNorm
      ? 'norm'
      : /^(self_attn|attn|attention)\./.test(inLayer)
        ? 'attention'
        : /^(mlp|ffn|feed_forward)\./.test(inLayer)
          ? 'mlp'
          : 'other';
    let unit = units.get(modulePath);
    if (!unit) {
      unit = { module: modulePath, names: [], size: 0, block };
      units.set(modulePath, unit);
      while (groups.layers.length <= layer) groups.layers.push([]);
      groups.layers[layer]!.push(unit);
    }
    unit.names.push(name);
    unit.size += p.size;
  }
  return groups;
}

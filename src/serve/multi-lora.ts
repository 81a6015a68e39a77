/**
 * Several LoRA adapters over one base model, chosen per batch row.
 *
 * Each adapter is read with the lora tuner (`loadAdapter`: all of its validation, PEFT's target
 * rules: a list by name suffix, a string as a full-match regex, 'all-linear'), its matrices are
 * copied out by what they adapt — a Linear, an Embedding, or the LM head — and the tuner is
 * unloaded again, so the base is left as it was. Every module any adapter adapts is then replaced
 * by a per-row layer (multi-lora-layers.ts), and adapters of the head install one head override.
 * The LM head is adapted by an `lm_head` LoRA (untied; or on a tied model the head alone, PEFT's
 * default) and by a LoRA of the tied embedding with ensure_weight_tying (then both its input and
 * its output side); a LoRA of a tied embedding without it changes the input side only, as in the
 * tuner. Per-module ranks and alphas (rank_pattern / alpha_pattern) are served as they are.
 *
 * Refused, with the adapter's file named: DoRA, KaSA and the base-rewriting inits (PiSSA, OLoRA,
 * CorDA) change the base weights every adapter shares or the layer's math; lora_bias, and
 * modules_to_save (whole trained modules); GPT-2's Conv1D layers (fan_in_fan_out). Merge such an
 * adapter into a model (attune export --merge) and serve that.
 */
import { join } from 'node:path';
import { ConfigError, FormatError } from '../errors.ts';
import { readJsonObject } from '../io/index.ts';
import type { CausalLM } from '../models/index.ts';
import { Embedding, Linear } from '../nn/index.ts';
import {
  ADAPTER_CONFIG_FILE,
  isMutatingInit,
  LoraAdapter,
  type LoraConfig,
  loadAdapter,
  loraConfigFromAdapterJson,
} from '../peft/index.ts';
import { Tensor } from '../tensor/index.ts';
import {
  AdapterRouter,
  type EmbeddingDelta,
  type LoraDelta,
  MultiLoraEmbedding,
  MultiLoraLinear,
  multiLoraHead,
} from './multi-lora-layers.ts';

export {
  AdapterRouter,
  MultiLoraEmbedding,
  MultiLoraLinear,
  multiLoraHead,
  type RowGroup,
} from './multi-lora-layers.ts';

/** The module name a served adapter lists for its LM-head update. */
const HEAD = 'lm_head';

/** A served adapter: its name, directory and the modules it adapts ('lm_head' for the head). */
export interface ServedAdapter {
  name: string;
  dir: string;
  modules: string[];
}

/** The adapters installed over one model, and the router the decode loop sets. */
export interface AdapterSet {
  router: AdapterRouter;
  adapters: ServedAdapter[];
  /** Index of the adapter called `name`, or -1 when there is none. */
  indexOf(name: string): number;
}

/** One adapter's updates, by what they adapt. */
interface AdapterDeltas {
  linear: Map<string, LoraDelta>;
  embeddings: Map<string, EmbeddingDelta>;
  head: LoraDelta | null;
}

/**
 * Read each adapter (name -> directory) and install them all over `model` (see the file comment).
 * Validates every adapter before changing the model; one serve cannot run is a ConfigError naming
 * its file and what to do instead.
 */
export function installAdapters(
  model: CausalLM,
  adapters: readonly { name: string; dir: string }[],
): AdapterSet {
  const router = new AdapterRouter();
  const perAdapter = adapters.map(({ name, dir }) => ({ name, dir, deltas: readLoraDeltas(model, dir) }));
  const linears = new Map<string, MultiLoraLinear>();
  const tables = new Map<string, MultiLoraEmbedding>();
  const heads = new Map<number, LoraDelta>();
  perAdapter.forEach(({ dir, deltas }, index) => {
    const where = join(dir, ADAPTER_CONFIG_FILE);
    for (const [path, delta] of deltas.linear) {
      let layer = linears.get(path);
      if (!layer) {
        const base = model.getSubmodule(path);
        if (!(base instanceof Linear))
          throw new ConfigError(`${where}: module '${path}' is not a Linear layer`);
        layer = new MultiLoraLinear(base, router);
        linears.set(path, layer);
      }
      layer.deltas.set(index, delta);
    }
    for (const [path, delta] of deltas.embeddings) {
      let layer = tables.get(path);
      if (!layer) {
        const base = model.getSubmodule(path);
        if (!(base instanceof Embedding))
          throw new ConfigError(`${where}: module '${path}' is not an Embedding`);
        layer = new MultiLoraEmbedding(base, router);
        tables.set(path, layer);
      }
      layer.deltas.set(index, delta);
    }
    if (deltas.head) heads.set(index, deltas.head);
  });
  for (const [path, layer] of linears) model.setSubmodule(path, layer);
  for (const [path, layer] of tables) model.setSubmodule(path, layer);
  if (heads.size > 0) model.lmHeadOverride = multiLoraHead(model, router, heads);
  const served = perAdapter.map(({ name, dir, deltas }) => ({
    name,
    dir,
    modules: [...deltas.embeddings.keys(), ...deltas.linear.keys(), ...(deltas.head ? [HEAD] : [])],
  }));
  return { router, adapters: served, indexOf: (name) => served.findIndex((a) => a.name === name) };
}

/** Refuse what the per-row layers do not compute (see the file comment): a FormatError naming `file`. */
function refuseUnservable(config: LoraConfig, fanInFanOut: boolean, file: string): void {
  const merge = 'merge it into the base (attune export --merge) and serve the merged model';
  const why = config.useDora
    ? "'use_dora' is true: DoRA rescales each adapted layer's output by its own magnitude"
    : config.kasa
      ? "'kasa_config' is set: KaSA truncates the base weights every adapter shares"
      : config.init !== undefined && isMutatingInit(config.init)
        ? `'init_lora_weights' is "${config.init}": the adapter applies to a rewritten (residual) base, not the one served`
        : config.loraBias
          ? "'lora_bias' is true: a trained bias on lora_B is not applied per row"
          : config.modulesToSave
            ? `'modules_to_save' is ${JSON.stringify(config.modulesToSave)}: whole trained modules are not swapped per row`
            : fanInFanOut
              ? "'fan_in_fan_out' is true: GPT-2's Conv1D layers are not served with per-row adapters"
              : null;
  if (why !== null) throw new FormatError(file, `serve runs plain LoRA / rsLoRA adapters; ${why}; ${merge}`);
}

/** An untracked f32 copy of a matrix, transposed when `transpose`. */
function f32Copy(t: Tensor, transpose = false): Tensor {
  const [rows, cols] = t.shape as [number, number];
  const src = t.data as ArrayLike<number>;
  if (!transpose) return Tensor.wrap(Float32Array.from(src), [rows, cols]);
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j]!;
  return Tensor.wrap(out, [cols, rows]);
}

/** The updates of the adapter in `dir`, read through the lora tuner (which is then unloaded). */
function readLoraDeltas(model: CausalLM, dir: string): AdapterDeltas {
  const file = join(dir, ADAPTER_CONFIG_FILE);
  const json = readJsonObject(file, 'a PEFT adapter config');
  if (json.peft_type !== 'LORA')
    throw new FormatError(
      file,
      `serve runs LoRA adapters only, found peft_type ${JSON.stringify(json.peft_type)}`,
    );
  const config = loraConfigFromAdapterJson(json, file, { allowFanInFanOut: true, allowVariants: true });
  refuseUnservable(config, json.fan_in_fan_out === true, file);
  const adapter = loadAdapter(model, dir);
  try {
    if (!(adapter instanceof LoraAdapter))
      throw new ConfigError(`${file}: serve runs LoRA adapters only, found the '${adapter.method}' method`);
    const head = model.lmHeadWeight();
    const out: AdapterDeltas = { linear: new Map(), embeddings: new Map(), head: null };
    for (const [path, layer] of adapter.layers()) {
      const delta = {
        a: f32Copy(layer.lora_A.weight),
        b: f32Copy(layer.lora_B.weight),
        scaling: layer.scaling,
      };
      // the LM head (an untied lm_head, or a tied model's head-only LoRA) is applied by the head override
      if (layer.weight === head) out.head = delta;
      else out.linear.set(path, delta);
    }
    for (const [path, e] of adapter.embeddingLayers()) {
      const A = e.lora_embedding_A;
      const B = e.lora_embedding_B;
      out.embeddings.set(path, { aT: f32Copy(A, true), b: f32Copy(B), scaling: e.scaling });
      // PEFT's tied head adapter: lora_A = lora_embedding_B^T, lora_B = lora_embedding_A^T
      if (e.weight === head && adapter.config.ensureWeightTying)
        out.head = { a: f32Copy(B, true), b: f32Copy(A, true), scaling: e.scaling };
    }
    return out;
  } finally {
    adapter.unload();
  }
}

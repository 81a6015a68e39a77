/**
 * What a LoRA adapter with a base-rewriting init (PiSSA, OLoRA, CorDA) can be saved as, besides its own
 * files (whose config names the init, so loading re-initialises the original base to the residual
 * and then reads A and B, as PEFT does):
 * - `savePlainLora`: PEFT's conversion to a plain LoRA against the ORIGINAL base
 *   (`save_pretrained(path_initial_model_for_weight_conversion=...)`, LoraModel.subtract_mutated_init):
 *   W + dW = W_res + s B A with W = W_res + s B0 A0 gives dW = s (B A - B0 A0) = s [B | -B0] [A ; A0],
 *   a rank-2r LoRA with lora_A = [A ; A0] [2r, in], lora_B = [B, -B0] [out, 2r], r doubled and
 *   lora_alpha doubled (times sqrt 2 with rsLoRA) so the scaling is unchanged, init_lora_weights
 *   true. Any LoRA tool (merge, port, PEFT) then applies it to the original model.
 * - `saveResidualModel`: the residual base W_res as a model directory, what PEFT's PiSSA guide saves
 *   with `peft_model.unload().save_pretrained(...)`; the adapter's own A and B apply to it once its
 *   config says `init_lora_weights: true`.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError } from '../errors.ts';
import {
  isJsonObject,
  type JsonObject,
  writeDirAtomic,
  writeJsonAtomic,
  writeSafetensors,
} from '../io/index.ts';
import { type CausalLM, isCausalLM, type SaveModelOptions, saveModel } from '../models/index.ts';
import { type Matrix64, Tensor } from '../tensor/index.ts';
import { type LoraAdapter, loraKey } from './lora.ts';
import { isMutatingInit } from './lora-init.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, type SaveAdapterOptions } from './tuner.ts';

function checkConvertible(adapter: LoraAdapter, what: string): void {
  if (adapter.config.kasa) {
    throw new ConfigError(
      `lora: ${what} is not defined for a KaSA adapter (its update B diag(lambda) A applies to the truncated base); merge it with attune export --merge`,
    );
  }
  if (!isMutatingInit(adapter.config.init)) {
    throw new ConfigError(
      `lora: ${what} needs an adapter initialised with pissa, pissa_niter_N, olora or corda; this one uses init '${adapter.config.init}', whose files already apply to the original base`,
    );
  }
}

/** `t` (2-D, f32 or f64) with the rows of `m` appended below (`negate`: their negatives). */
function concatRows(t: Tensor, m: Matrix64, negate: boolean): Tensor {
  const out =
    t.dtype === 'f64' ? new Float64Array(t.size + m.data.length) : new Float32Array(t.size + m.data.length);
  out.set(t.data as Float32Array | Float64Array);
  for (let i = 0; i < m.data.length; i++) out[t.size + i] = negate ? -m.data[i]! : m.data[i]!;
  return Tensor.wrap(out, [t.shape[0]! + m.rows, t.shape[1]!], { track: false });
}

/** `t` [rows, c] with the columns of `m` [rows, k] appended on the right, negated. */
function concatNegatedColumns(t: Tensor, m: Matrix64): Tensor {
  const rows = t.shape[0]!;
  const c = t.shape[1]!;
  const k = m.cols;
  const src = t.data as Float32Array | Float64Array;
  const out = t.dtype === 'f64' ? new Float64Array(rows * (c + k)) : new Float32Array(rows * (c + k));
  for (let i = 0; i < rows; i++) {
    out.set(src.subarray(i * c, (i + 1) * c), i * (c + k));
    for (let j = 0; j < k; j++) out[i * (c + k) + c + j] = -m.data[i * k + j]!;
  }
  return Tensor.wrap(out, [rows, c + k], { track: false });
}

/**
 * The rank-2r plain LoRA tensors equivalent, on the original base, to `adapter` (PiSSA / OLoRA)
 * on its residual base: lora_A = [A ; A0], lora_B = [B, -B0] under PEFT's keys. Untracked copies.
 */
export function plainLoraState(adapter: LoraAdapter): Map<string, Tensor> {
  checkConvertible(adapter, 'the conversion to a plain LoRA');
  if (adapter.config.useDora) {
    throw new ConfigError(
      'lora: a DoRA adapter cannot be converted to a plain LoRA (PEFT converts lora_A / lora_B only and its magnitude does not carry over)',
    );
  }
  const out = new Map<string, Tensor>();
  for (const [path, l] of adapter.layers()) {
    const init = l.initialLora!;
    out.set(loraKey(path, 'lora_A'), concatRows(l.lora_A.weight, init.a, false));
    out.set(loraKey(path, 'lora_B'), concatNegatedColumns(l.lora_B.weight, init.b));
  }
  return out;
}

/** `pattern` (a rank_pattern / alpha_pattern object) with every value doubled; `{}` when absent. */
function doubledPattern(pattern: unknown): JsonObject {
  if (!isJsonObject(pattern)) return {};
  return Object.fromEntries(Object.entries(pattern).map(([k, v]) => [k, 2 * (v as number)]));
}

/**
 * The adapter_config.json of `plainLoraState`, changed as PEFT's save_pretrained does with
 * path_initial_model_for_weight_conversion: init_lora_weights true, r doubled, lora_alpha doubled
 * (times sqrt 2 with rsLoRA, whose scaling is alpha / sqrt r), rank_pattern / alpha_pattern values
 * doubled (PEFT refuses rsLoRA with patterns); every other field as the adapter writes it.
 */
export function plainLoraConfigJson(adapter: LoraAdapter, options: SaveAdapterOptions = {}): JsonObject {
  checkConvertible(adapter, 'the conversion to a plain LoRA');
  const json = adapter.adapterConfigJson(options);
  const c = adapter.config;
  const rankPattern = doubledPattern(json.rank_pattern);
  const alphaPattern = doubledPattern(json.alpha_pattern);
  if (c.useRslora && (Object.keys(rankPattern).length || Object.keys(alphaPattern).length)) {
    throw new ConfigError(
      'lora: the conversion to a plain LoRA of an rsLoRA adapter with rank_pattern or alpha_pattern is not defined (PEFT refuses it too)',
    );
  }
  json.r = 2 * c.r;
  json.lora_alpha = c.useRslora ? c.loraAlpha * Math.SQRT2 : 2 * c.loraAlpha;
  json.init_lora_weights = true;
  if ('rank_pattern' in json) json.rank_pattern = rankPattern;
  if ('alpha_pattern' in json) json.alpha_pattern = alphaPattern;
  return json;
}

/**
 * Write the plain-LoRA conversion of `adapter` (see the file comment) as the folder `dir`: both
 * files are computed (and the adapter checked) first, then the folder is written atomically,
 * replacing an existing `dir` only once complete.
 */
export function savePlainLora(adapter: LoraAdapter, dir: string, options: SaveAdapterOptions = {}): void {
  const tensors = plainLoraState(adapter);
  const json = plainLoraConfigJson(adapter, options);
  mkdirSync(dirname(dir), { recursive: true });
  writeDirAtomic(dir, (tmp) => {
    writeSafetensors(join(tmp, ADAPTER_WEIGHTS_FILE), tensors, { format: 'pt' });
    writeJsonAtomic(join(tmp, ADAPTER_CONFIG_FILE), json);
  });
}

/**
 * Write the residual base (every adapted weight W - s B0 A0, the rest as it is) of an unmerged
 * PiSSA / OLoRA adapter's model as a model directory (saveModel's files).
 */
export function saveResidualModel(adapter: LoraAdapter, dir: string, options: SaveModelOptions = {}): void {
  checkConvertible(adapter, 'saving the residual model');
  if (adapter.merged) throw new ConfigError('lora: unmerge the adapter before saving the residual model');
  const model = adapter.model;
  if (!isCausalLM(model)) throw new ConfigError('lora: saving the residual model needs a causal LM');
  const layers = adapter.layers();
  // the replaced layers hold the same (residual) weight Parameters: save the model through them
  for (const [path, l] of layers) model.setSubmodule(path, l.base);
  try {
    saveModel(model as CausalLM, dir, options);
  } finally {
    for (const [path, l] of layers) model.setSubmodule(path, l);
  }
}

/**
 * LoRA on the LM head. The models apply their head through `CausalLM.logits` / `scoreTokens`, the
 * latter a fused kernel that takes the [vocab, hidden] matrix and never calls the head module, so
 * a tuner that adapts the head sets `model.lmHeadOverride` (models/causal-lm.ts):
 *
 * - `lm_head` (a Linear) adapted by a LoraLinear: the fused path applies W + scaling B A (tracked,
 *   so the kernel's weight gradient reaches A and B through the matmul); full logits of a few
 *   positions run the layer itself, h W^T + scaling (h A^T) B^T. LoRA dropout on the head cannot
 *   be applied inside the fused kernel, so a training forward with active dropout there is refused.
 * - a tied embedding adapted by a LoraEmbedding with `ensure_weight_tying`: the head applies the
 *   adapted table W + scaling (B A)^T, as PEFT's tied lm_head adapter (lora_A = B^T, lora_B = A^T).
 * - a tied embedding replaced by a modules_to_save copy without `ensure_weight_tying`: the head
 *   keeps applying the original table (PEFT's default: only the input side is the copy).
 *
 * When the adapter is merged, W already holds the update and the override returns W.
 */
import { ConfigError } from '../errors.ts';
import type { CausalLM, LmHeadOverride } from '../models/index.ts';
import { add, matmul, mulScalar, readElement, type Tensor, Tensor as TensorClass } from '../tensor/index.ts';
import type { LoraEmbedding } from './lora-embedding.ts';
import type { LoraLinear } from './lora-linear.ts';

/** `t` as a float tensor: itself when f32 / f64, else an untracked f32 copy of a bf16 tensor. */
function asFloat(t: Tensor): Tensor {
  if (t.dtype !== 'bf16') return t;
  const d = t.data;
  const out = TensorClass.alloc(t.shape, 'f32', false);
  const o = out.data as Float32Array;
  for (let i = 0; i < o.length; i++) o[i] = readElement(d, i);
  return out;
}

/** The head override of an `lm_head` LoraLinear (see the file comment). */
export function loraLinearHead(path: string, layer: LoraLinear): LmHeadOverride {
  return {
    weight: () => {
      if (layer.merged) return layer.weight;
      if (layer.lora_dropout.activeRate() !== 0) {
        throw new ConfigError(
          `lora: lora_dropout on the LM head '${path}' cannot be applied in the fused loss kernel (it applies W + scaling B A as one matrix); set lora_dropout to 0 or leave '${path}' out of target_modules`,
        );
      }
      const ba = matmul(layer.lora_B.weight, layer.lora_A.weight);
      return add(asFloat(layer.weight), layer.scaling === 1 ? ba : mulScalar(ba, layer.scaling));
    },
    logits: (hidden) => layer.forward(hidden),
  };
}

/** The head override of a tied embedding adapted by a LoraEmbedding with ensure_weight_tying. */
export function tiedLoraEmbeddingHead(model: CausalLM, layer: LoraEmbedding): LmHeadOverride {
  return {
    weight: () => (layer.merged ? layer.weight : add(asFloat(layer.weight), layer.delta())),
    logits: (hidden) => {
      const base = matmul(hidden, layer.weight, { transB: true, precision: model.lmHeadPrecision });
      if (layer.merged) return base;
      // h (W + s A^T B^T)^T = h W^T + s (h B) A
      const hb = matmul(hidden, layer.lora_embedding_B);
      const up = matmul(hb, layer.lora_embedding_A);
      return add(base, layer.scaling === 1 ? up : mulScalar(up, layer.scaling));
    },
  };
}

/** A head that keeps applying `weight` (a tied table whose input side a modules_to_save copy replaced). */
export function fixedHead(model: CausalLM, weight: Tensor): LmHeadOverride {
  return {
    weight: () => weight,
    logits: (hidden) => matmul(hidden, weight, { transB: true, precision: model.lmHeadPrecision }),
  };
}

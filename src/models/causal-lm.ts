/**
 * `CausalLM`: what every layer above models/ may use of a model, whatever its architecture (the
 * llama family, GPT-2, ...). A model is a Module (parameters under the Hub's names, train/eval,
 * freeze, setSubmodule for tuners) that maps token ids to final hidden states, applies its LM head
 * (full logits of a few positions, or the fused per-token scoring path that never holds
 * [N, vocab]), creates a KV cache for generation, and names its dropout sites and the linear
 * modules tuners may adapt. Architectures extend this class; the `model_type` registry
 * (registry.ts) builds them from config.json.
 */
import { Conv1D, checkpointModule, Dropout, Linear, Module, type Parameter } from '../nn/index.ts';

export { mixSeed } from '../nn/index.ts';

import {
  type ComputePrecision,
  type LinearCrossEntropyResult,
  linearCrossEntropy,
  matmul,
  reshape,
  scope,
  type Tensor,
} from '../tensor/index.ts';
import type { AttentionProbe } from './attention-probe.ts';
import { KvCache, type KvCaches } from './kv-cache.ts';
import type { SequencePrefix } from './sequence-prefix.ts';

/** The parsed config.json fields the layers above models/ use (architectures add their own). */
export interface CausalLMConfig {
  /** config.json `model_type` (llama, mistral, qwen2, gpt2). */
  modelType: string;
  vocabSize: number;
  hiddenSize: number;
  /** Width of the feed-forward layer. */
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Key/value heads (= numHeads without grouped-query attention). */
  numKvHeads: number;
  headDim: number;
  /** Longest sequence the positions support (`max_position_embeddings`, GPT-2's `n_positions`). */
  maxPositionEmbeddings: number;
  /** Whether the LM head is the token embedding matrix. */
  tieWordEmbeddings: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  padTokenId: number | null;
  /** The raw config.json object, written back as-is (with our edits) by saveModel. */
  raw: Record<string, unknown>;
}

/** Element type of a model's matrices. */
export type ModelDtype = 'f32' | 'bf16' | 'f64';

/** How an architecture builds a model from its parsed config. */
export interface ModelBuildOptions {
  /** Element type of the matrices (norms stay f32 unless f64). bf16 weights are frozen storage. */
  dtype?: ModelDtype;
  /** 'random' draws HF's initialisation N(0, initializer_range) from `seed`; 'zeros' is for loading. */
  init?: 'random' | 'zeros';
  seed?: number;
  /**
   * Rate of residual-stream dropout. Llama: default 0 (the Hub's Llama has none); GPT-2: replaces
   * the config's `resid_pdrop` when given.
   */
  residualDropout?: number;
  /**
   * Called with each parameter right after the random init filled it (in init order): how
   * `createModel` quantises the base matrices one at a time (`model_dtype: int8 | nf4`), so the
   * whole bf16 model is never resident at once.
   */
  onParameterInit?: (model: CausalLM, name: string, p: Parameter) => void;
}

export interface ForwardOptions {
  /**
   * KV cache: one (batch 1), or one per batch row (batched decoding of sequences of different
   * lengths; each row's positions continue from its own cache). New keys/values are appended and
   * attention reads the row's whole cache.
   */
  cache?: KvCaches | null;
  /** Opt-in: record each layer's previous-token attention (attention-probe.ts; batch 1, no cache). */
  attentionProbe?: AttentionProbe;
}

/**
 * What a tuner that changes the LM head's matrix puts on a model (`CausalLM.lmHeadOverride`): LoRA
 * on `lm_head`, or on a tied embedding whose adapter also applies to the head. Both are
 * differentiable in the tuner's parameters.
 */
export interface LmHeadOverride {
  /** The [vocab, hidden] matrix the fused scoring path applies (e.g. W + scaling B A). */
  weight(): Tensor;
  /** Full logits for hidden states [..., hidden] -> [..., vocab] (e.g. h W^T + scaling (h A^T) B^T). */
  logits(hidden: Tensor): Tensor;
}

/** A causal language model of any architecture; see the file comment. */
export abstract class CausalLM extends Module {
  abstract readonly config: CausalLMConfig;
  /**
   * Precision of the LM head's GEMMs, `logits()` and the fused scoring path `scoreTokens` (set by
   * `setComputePrecision`): 'bf16' = bf16 inputs with f32 accumulation, softmax statistics in f32.
   */
  lmHeadPrecision: ComputePrecision = 'f32';
  /**
   * Virtual tokens before every sequence (prompt / prefix tuning set it; sequence-prefix.ts): they
   * take positions 0..n-1, and `forwardHidden` returns the real tokens' positions only. Null: none.
   */
  sequencePrefix: SequencePrefix | null = null;
  /**
   * Activation checkpointing (`train.activation_checkpointing`): each decoder layer keeps only its
   * input during a recorded forward and is recomputed in backward (nn/checkpoint.ts). Off by default;
   * never used with a KV cache (inference records no tape anyway).
   */
  activationCheckpointing = false;
  /**
   * Set by a tuner that adapts the LM head (peft/lora-head.ts): `logits`, `scoreTokens` and
   * `headMatrix` then apply it instead of `lmHeadWeight()`. Null: the head is `lmHeadWeight()`.
   */
  lmHeadOverride: LmHeadOverride | null = null;

  /**
   * ids [B, T] (i32) -> final hidden states [B, T, hidden] (after the last norm). With a cache,
   * positions continue from the cache length.
   */
  abstract forwardHidden(ids: Tensor, options?: ForwardOptions): Tensor;

  /** The [vocab, hidden] matrix of the LM head (the embedding matrix when tied). */
  abstract lmHeadWeight(): Tensor;

  /**
   * One decoder layer of `forwardHidden`: `forward(input)` in a scope (its intermediates freed as
   * soon as the layer is done, except those the tape keeps), checkpointed when
   * `activationCheckpointing` is on and there is no cache.
   */
  protected runLayer(layer: Module, input: Tensor, cache: unknown, forward: (x: Tensor) => Tensor): Tensor {
    if (this.activationCheckpointing && !cache)
      return scope(() => checkpointModule(layer, (x) => scope(() => forward(x)), input));
    return scope(() => forward(input));
  }

  /**
   * Register the untied LM head `lm_head` (a bias-free [vocab, hidden] Linear, zeros until loaded),
   * or return null when the config ties it to the token embedding.
   */
  protected registerLmHead(config: CausalLMConfig, dtype: ModelDtype): Linear | null {
    if (config.tieWordEmbeddings) return null;
    return this.registerModule(
      'lm_head',
      new Linear(config.hiddenSize, config.vocabSize, { bias: false, dtype, init: 'zeros' }),
    );
  }

  /** Element type of the activations: f64 for a reference (f64) model, else f32. */
  abstract activationDtype(): 'f32' | 'f64';

  protected override applyComputePrecision(precision: ComputePrecision): void {
    this.lmHeadPrecision = precision;
  }

  /**
   * The [vocab, hidden] matrix the LM head applies now: `lmHeadWeight()`, or a tuner's adapted
   * head (`lmHeadOverride`, e.g. W + scaling B A, tracked for its gradient).
   */
  headMatrix(): Tensor {
    return this.lmHeadOverride ? this.lmHeadOverride.weight() : this.lmHeadWeight();
  }

  /** Full logits for hidden states [..., hidden] -> [..., vocab] (use on few positions only). */
  logits(hidden: Tensor): Tensor {
    if (this.lmHeadOverride) return this.lmHeadOverride.logits(hidden);
    return matmul(hidden, this.lmHeadWeight(), { transB: true, precision: this.lmHeadPrecision });
  }

  /**
   * Per-token gold log-prob, entropy, top-1/top-2 log-probs and argmax through the fused LM head
   * (never [N, vocab]). hidden [N, hidden] (or [B, T, hidden]), labels i32 [N] (-100 = not scored).
   */
  scoreTokens(hidden: Tensor, labels: Tensor): LinearCrossEntropyResult {
    const flat = hidden.rank === 2 ? hidden : reshape(hidden, [-1, this.config.hiddenSize]);
    return linearCrossEntropy(flat, this.headMatrix(), labels, { precision: this.lmHeadPrecision });
  }

  /** An empty KV cache for one sequence of up to `capacity` tokens (grows when exceeded). */
  createKvCache(capacity = 256): KvCache {
    const { numLayers, numKvHeads, headDim } = this.config;
    return new KvCache({ numLayers, numKvHeads, headDim }, capacity, this.activationDtype());
  }

  /**
   * The model's random state: every dropout site's masks are keyed by (its seed, `key`). The
   * trainer sets the step before each optimizer step; MC dropout sets one key per pass.
   */
  setDropoutKey(key: number): void {
    for (const [, d] of this.dropoutSites()) d.setKey(key);
  }

  /** The key last set with setDropoutKey (0 before any). */
  dropoutKey(): number {
    return this.dropoutSites()[0]?.[1].key ?? 0;
  }

  /** Every dropout site (attention, residual, embedding, adapter inputs) with its module name. */
  dropoutSites(): [string, Dropout][] {
    return this.namedModules().filter((e): e is [string, Dropout] => e[1] instanceof Dropout);
  }

  /**
   * The linear modules tuners may adapt (Linear, or GPT-2's Conv1D in its [in, out] layout) with
   * their dotted names, in tree order; the LM head is left out.
   */
  linearModules(): [string, Linear | Conv1D][] {
    const head = this.lmHeadWeight();
    return this.namedModules().filter(
      (e): e is [string, Linear | Conv1D] =>
        (e[1] instanceof Linear || e[1] instanceof Conv1D) && e[1].weight !== head,
    );
  }
}

/** Whether `m` is a causal LM built by models/. */
export function isCausalLM(m: unknown): m is CausalLM {
  return m instanceof CausalLM;
}

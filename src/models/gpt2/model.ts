/**
 * GPT-2 (`GPT2LMHeadModel`) with the Hub's module tree, so parameter names are exactly the Hub's:
 * `transformer.wte.weight`, `transformer.h.0.attn.c_attn.weight`, `transformer.ln_f.bias`, ...
 *
 * Learned positions (`wpe`), pre-norm blocks with LayerNorm (weight and bias), fused `c_attn`
 * (q, k, v split from one [in, 3 * hidden] projection), the config's activation (`gelu_new` is the
 * tanh approximation), every projection a `Conv1D` whose weight stays in the stored [in, out]
 * layout (one GEMM without a transposed operand), and the LM head tied to `wte` (transformers
 * always ties it for GPT-2 unless `tie_word_embeddings` is false). Dropout sites are transformers':
 * `drop` (embd_pdrop) after the embeddings, `attn.attn_dropout` (attn_pdrop) on the attention
 * probabilities, `attn.resid_dropout` and `mlp.dropout` (resid_pdrop) on the two residual branches;
 * they are active in training mode and can be forced on at inference (MC dropout).
 */

import { ConfigError } from '../../errors.ts';
import { Conv1D, Dropout, Embedding, LayerNorm, type Linear, Module, ModuleList } from '../../nn/index.ts';
import {
  add,
  type ComputePrecision,
  fromArray,
  gelu,
  layerNorm,
  Rng,
  relu,
  reshape,
  silu,
  slice,
  type Tensor,
} from '../../tensor/index.ts';
import { type AttentionProbe, recordPrevTokenAttention } from '../attention-probe.ts';
import { CausalLM, type ForwardOptions, type ModelBuildOptions } from '../causal-lm.ts';
import { advanceCaches, cacheStarts, type KvCaches } from '../kv-cache.ts';
import {
  dropLeading,
  layerAttention,
  type PrefixKeyValues,
  planPrefix,
  prependEmbeddings,
} from '../sequence-prefix.ts';
import { GPT2_ACTIVATIONS, type Gpt2Config } from './config.ts';

interface BlockContext {
  cache: KvCaches | null;
  /** Prefix keys/values to attend before the tokens (no-cache path; sequence-prefix.ts). */
  prefixKv: PrefixKeyValues[] | null;
  layerIndex: number;
  probe: AttentionProbe | null;
}

type Conv1DOptions = ConstructorParameters<typeof Conv1D>[2];

/** Causal self-attention with a fused q, k, v projection. */
export class Gpt2Attention extends Module {
  readonly c_attn: Conv1D;
  readonly c_proj: Conv1D;
  /** Dropout site of the attention probabilities (rate and seed; applied inside the kernel). */
  readonly attn_dropout: Dropout;
  /** Precision of the attention products (set with the layers' by `setComputePrecision`). */
  computePrecision: ComputePrecision = 'f32';
  readonly resid_dropout: Dropout;

  constructor(
    readonly config: Gpt2Config,
    conv: Conv1DOptions,
    residualDropout: number,
    rng: Rng,
  ) {
    super();
    const d = config.hiddenSize;
    this.c_attn = this.registerModule('c_attn', new Conv1D(d, 3 * d, conv));
    this.c_proj = this.registerModule('c_proj', new Conv1D(d, d, conv));
    this.attn_dropout = this.registerModule('attn_dropout', new Dropout(config.attnPdrop, { rng }));
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(residualDropout, { rng }));
  }

  protected override applyComputePrecision(precision: ComputePrecision): void {
    this.computePrecision = precision;
  }

  /** x [B, T, hidden] -> [B, T, hidden]. */
  forward(x: Tensor, ctx: BlockContext): Tensor {
    const [B, T] = x.shape as [number, number, number];
    const { hiddenSize: d, numHeads, headDim } = this.config;
    const qkv = this.c_attn.forward(x);
    const q = reshape(slice(qkv, 2, 0, d), [B, T, numHeads, headDim]);
    const k = reshape(slice(qkv, 2, d, 2 * d), [B, T, numHeads, headDim]);
    const v = reshape(slice(qkv, 2, 2 * d, 3 * d), [B, T, numHeads, headDim]);
    const rate = this.attn_dropout.activeRate();
    const seed = rate > 0 ? this.attn_dropout.nextCallSeed() : 0;
    const scale = this.config.scaleAttnWeights ? 1 / Math.sqrt(headDim) : 1;
    const options = { causal: true, scale, dropout: rate, seed, precision: this.computePrecision };
    if (ctx.probe) recordPrevTokenAttention(ctx.probe, ctx.layerIndex, q, k, scale);
    const out = layerAttention(q, k, v, ctx.cache, ctx.layerIndex, options, ctx.prefixKv);
    return this.resid_dropout.forward(this.c_proj.forward(reshape(out, [B, T, d])));
  }
}

/** Feed-forward: dropout(c_proj(act(c_fc(x)))). */
export class Gpt2MLP extends Module {
  readonly c_fc: Conv1D;
  readonly c_proj: Conv1D;
  readonly dropout: Dropout;

  constructor(
    readonly config: Gpt2Config,
    conv: Conv1DOptions,
    residualDropout: number,
    rng: Rng,
  ) {
    super();
    const { hiddenSize: d, intermediateSize: f } = config;
    this.c_fc = this.registerModule('c_fc', new Conv1D(d, f, conv));
    this.c_proj = this.registerModule('c_proj', new Conv1D(f, d, conv));
    this.dropout = this.registerModule('dropout', new Dropout(residualDropout, { rng }));
  }

  /** x [..., hidden] -> [..., hidden]. */
  forward(x: Tensor): Tensor {
    const h = this.c_fc.forward(x);
    const kernel = GPT2_ACTIVATIONS[this.config.activation];
    const a =
      kernel === 'gelu_tanh'
        ? gelu(h, 'tanh')
        : kernel === 'gelu_erf'
          ? gelu(h, 'erf')
          : kernel === 'relu'
            ? relu(h)
            : silu(h);
    return this.dropout.forward(this.c_proj.forward(a));
  }
}

/** Pre-norm block: x + attn(ln_1(x)), then + mlp(ln_2(.)). */
export class Gpt2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: Gpt2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: Gpt2MLP;

  constructor(
    config: Gpt2Config,
    conv: Conv1DOptions,
    normDtype: 'f32' | 'f64',
    residualDropout: number,
    rng: Rng,
  ) {
    super();
    const { hiddenSize: d, layerNormEps: eps } = config;
    this.ln_1 = this.registerModule('ln_1', new LayerNorm(d, eps, { dtype: normDtype }));
    this.attn = this.registerModule('attn', new Gpt2Attention(config, conv, residualDropout, rng));
    this.ln_2 = this.registerModule('ln_2', new LayerNorm(d, eps, { dtype: normDtype }));
    this.mlp = this.registerModule('mlp', new Gpt2MLP(config, conv, residualDropout, rng));
  }

  /** x [B, T, hidden] -> [B, T, hidden]. */
  forward(x: Tensor, ctx: BlockContext): Tensor {
    const h = add(x, this.attn.forward(this.ln_1.forward(x), ctx));
    return add(h, this.mlp.forward(this.ln_2.forward(h)));
  }
}

/** The decoder stack (`transformer.` prefix on the Hub). */
export class Gpt2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<Gpt2Block>;
  readonly ln_f: LayerNorm;

  constructor(config: Gpt2Config, options: ModelBuildOptions, rng: Rng) {
    super();
    const dtype = options.dtype ?? 'f32';
    const normDtype = dtype === 'f64' ? 'f64' : 'f32';
    const { hiddenSize: d } = config;
    // a residual rate given at build time replaces the config's resid_pdrop
    const resid = options.residualDropout ? options.residualDropout : config.residPdrop;
    const conv: Conv1DOptions = { dtype, init: 'zeros' };
    this.wte = this.registerModule('wte', new Embedding(config.vocabSize, d, { dtype, init: 'zeros' }));
    this.wpe = this.registerModule(
      'wpe',
      new Embedding(config.maxPositionEmbeddings, d, { dtype, init: 'zeros' }),
    );
    this.drop = this.registerModule('drop', new Dropout(config.embdPdrop, { rng }));
    const blocks: Gpt2Block[] = [];
    for (let i = 0; i < config.numLayers; i++)
      blocks.push(new Gpt2Block(config, conv, normDtype, resid, rng));
    this.h = this.registerModule('h', new ModuleList(blocks));
    this.ln_f = this.registerModule('ln_f', new LayerNorm(d, config.layerNormEps, { dtype: normDtype }));
  }
}

/** GPT-2 with its LM head (tied to `transformer.wte`, or `lm_head` when untied). */
export class Gpt2LMHeadModel extends CausalLM {
  readonly transformer: Gpt2Model;
  readonly lm_head: Linear | null;

  constructor(
    readonly config: Gpt2Config,
    options: ModelBuildOptions = {},
  ) {
    super();
    const dtype = options.dtype ?? 'f32';
    const rng = new Rng(options.seed ?? 0);
    this.transformer = this.registerModule('transformer', new Gpt2Model(config, { ...options, dtype }, rng));
    this.lm_head = this.registerLmHead(config, dtype);
    if ((options.init ?? 'random') === 'random')
      this.initWeights(new Rng(options.seed ?? 0), options.onParameterInit);
  }

  /**
   * transformers' GPT-2 `_init_weights`: matrices and embeddings N(0, initializer_range), biases 0,
   * LayerNorms 1 / 0, and each residual output projection (`c_proj`) N(0, range / sqrt(2 n_layer)).
   */
  private initWeights(rng: Rng, onInit?: ModelBuildOptions['onParameterInit']): void {
    const range =
      typeof this.config.raw.initializer_range === 'number' ? this.config.raw.initializer_range : 0.02;
    const projStd = range / Math.sqrt(2 * this.config.numLayers);
    // by name: a parameter `onInit` replaces (quantises) is not kept alive by this loop
    for (const name of this.namedParameters().map(([n]) => n)) {
      const p = this.getParameter(name);
      if (/\.ln_(1|2|f)\./.test(name) || name.endsWith('.bias')) continue;
      const std = name.endsWith('c_proj.weight') ? projStd : range;
      p.fillWith(() => std * rng.normal());
      onInit?.(this, name, p);
    }
  }

  /** The [vocab, hidden] matrix of the LM head (`wte` when tied). */
  override lmHeadWeight(): Tensor {
    return this.lm_head ? this.lm_head.weight : this.transformer.wte.weight;
  }

  /** f64 for a reference (f64) model, else f32. */
  override activationDtype(): 'f32' | 'f64' {
    return this.transformer.ln_f.weight!.dtype === 'f64' ? 'f64' : 'f32';
  }

  /**
   * ids [B, T] (i32) -> final hidden states [B, T, hidden] (after ln_f). With a cache, positions
   * continue from the cache length.
   */
  override forwardHidden(ids: Tensor, options: ForwardOptions = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32')
      throw new RangeError(`Gpt2LMHeadModel: ids ${ids.describe()} must be [B, T] i32`);
    const [B, T] = ids.shape as [number, number];
    const cache = options.cache ?? null;
    const probe = options.attentionProbe ?? null;
    if (probe && cache) throw new RangeError('attentionProbe: records a whole sequence; pass no KV cache');
    if (probe && this.sequencePrefix) throw new RangeError('attentionProbe: not with a sequence prefix');
    const plan = planPrefix(this.sequencePrefix, cache, B, this.config.hiddenSize);
    const prefixKv = plan.keyValues;
    const starts = cacheStarts(cache, B).map((s) => s + plan.positionOffset);
    const start = Math.max(...starts);
    // an embedding prefix runs as `leading` more positions before the tokens
    const TT = T + plan.leading;
    if (start + TT > this.config.maxPositionEmbeddings) {
      throw new ConfigError(
        `config 'n_positions' = ${this.config.maxPositionEmbeddings} is shorter than the sequence (${start + TT} tokens); GPT-2 has no positions beyond it`,
      );
    }
    const positions = new Int32Array(B * TT);
    for (let b = 0; b < B; b++) for (let t = 0; t < TT; t++) positions[b * TT + t] = starts[b]! + t;
    const t = this.transformer;
    // through the module, so an adapter on wpe (a LoRA Embedding target) takes part
    const pos = t.wpe.forward(fromArray(positions, [B, TT], { dtype: 'i32' }));
    let x = t.drop.forward(add(prependEmbeddings(t.wte.forward(ids), plan), pos));
    t.h.at(0); // throws early for an empty stack
    let i = 0;
    for (const block of t.h) {
      // one scope per block: its intermediates are freed as soon as it is done, except those the
      // autograd tape keeps for backward
      const input = x;
      const layerIndex = i++;
      x = this.runLayer(block, input, cache, (h) => block.forward(h, { cache, layerIndex, probe, prefixKv }));
    }
    advanceCaches(cache, TT);
    return dropLeading(layerNorm(x, t.ln_f.weight, t.ln_f.bias, this.config.layerNormEps), plan);
  }
}

/**
 * The Llama family (llama, mistral, qwen2; SmolLM, TinyLlama, Llama 3.x) with the Hub's module
 * tree, so parameter names are exactly the Hub's: `model.layers.0.self_attn.q_proj.weight`.
 *
 * Activations keep the [B, T, heads, headDim] layout the projections produce, so attention and
 * RoPE never transpose. Dropout sites: attention probabilities (config `attention_dropout`) and the
 * residual stream (rate 0 unless set); both can be forced on at inference (MC dropout) with
 * `forceDropout(model, rate)` from nn/.
 */
import { Dropout, Embedding, Linear, Module, ModuleList, RMSNorm } from '../../nn/index.ts';
import {
  add,
  type ComputePrecision,
  Rng,
  reshape,
  rmsNorm,
  rope,
  ropeTables,
  swiglu,
  type Tensor,
  Tensor as TensorClass,
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
import { checkSequenceLength, type LlamaConfig } from './config.ts';

/** How a Llama is built (see ModelBuildOptions). */
export type LlamaBuildOptions = ModelBuildOptions;

interface LayerContext {
  positions: Int32Array;
  cos: Tensor;
  sin: Tensor;
  cache: KvCaches | null;
  layerIndex: number;
  probe: AttentionProbe | null;
  /** Prefix keys/values to attend before the tokens (no-cache path; sequence-prefix.ts). */
  prefixKv: PrefixKeyValues[] | null;
}

/** Grouped-query self-attention with rotary embeddings. */
export class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  /** Dropout site of the attention probabilities (rate and seed; applied inside the kernel). */
  readonly attn_dropout: Dropout;
  /** Precision of the attention products (set with the layers' by `setComputePrecision`). */
  computePrecision: ComputePrecision = 'f32';

  constructor(
    readonly config: LlamaConfig,
    linearOptions: (bias: boolean) => ConstructorParameters<typeof Linear>[2],
    rng: Rng,
  ) {
    super();
    const { hiddenSize: d, numHeads, numKvHeads, headDim } = config;
    this.q_proj = this.registerModule(
      'q_proj',
      new Linear(d, numHeads * headDim, linearOptions(config.qkvBias)),
    );
    this.k_proj = this.registerModule(
      'k_proj',
      new Linear(d, numKvHeads * headDim, linearOptions(config.qkvBias)),
    );
    this.v_proj = this.registerModule(
      'v_proj',
      new Linear(d, numKvHeads * headDim, linearOptions(config.qkvBias)),
    );
    this.o_proj = this.registerModule(
      'o_proj',
      new Linear(numHeads * headDim, d, linearOptions(config.oBias)),
    );
    this.attn_dropout = this.registerModule('attn_dropout', new Dropout(config.attentionDropout, { rng }));
  }

  protected override applyComputePrecision(precision: ComputePrecision): void {
    this.computePrecision = precision;
  }

  /** x [B, T, hidden] -> [B, T, hidden]. */
  forward(x: Tensor, ctx: LayerContext): Tensor {
    const [B, T] = x.shape as [number, number, number];
    const { numHeads, numKvHeads, headDim } = this.config;
    const q = rope(
      reshape(this.q_proj.forward(x), [B, T, numHeads, headDim]),
      ctx.cos,
      ctx.sin,
      ctx.positions,
    );
    const k = rope(
      reshape(this.k_proj.forward(x), [B, T, numKvHeads, headDim]),
      ctx.cos,
      ctx.sin,
      ctx.positions,
    );
    const v = reshape(this.v_proj.forward(x), [B, T, numKvHeads, headDim]);
    const rate = this.attn_dropout.activeRate();
    const seed = rate > 0 ? this.attn_dropout.nextCallSeed() : 0;
    const options = { causal: true, dropout: rate, seed, precision: this.computePrecision };
    if (ctx.probe) recordPrevTokenAttention(ctx.probe, ctx.layerIndex, q, k, 1 / Math.sqrt(headDim));
    const out = layerAttention(q, k, v, ctx.cache, ctx.layerIndex, options, ctx.prefixKv);
    return this.o_proj.forward(reshape(out, [B, T, numHeads * headDim]));
  }
}

/** SwiGLU feed-forward: down(silu(gate(x)) * up(x)). */
export class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;

  constructor(
    config: LlamaConfig,
    linearOptions: (bias: boolean) => ConstructorParameters<typeof Linear>[2],
  ) {
    super();
    const { hiddenSize: d, intermediateSize: f, mlpBias } = config;
    this.gate_proj = this.registerModule('gate_proj', new Linear(d, f, linearOptions(mlpBias)));
    this.up_proj = this.registerModule('up_proj', new Linear(d, f, linearOptions(mlpBias)));
    this.down_proj = this.registerModule('down_proj', new Linear(f, d, linearOptions(mlpBias)));
  }

  /** x [..., hidden] -> [..., hidden]. */
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

/** Pre-norm decoder block: x + attn(norm(x)), then + mlp(norm(.)). */
export class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  readonly resid_dropout: Dropout;

  constructor(
    config: LlamaConfig,
    linearOptions: (bias: boolean) => ConstructorParameters<typeof Linear>[2],
    normDtype: 'f32' | 'f64',
    residualDropout: number,
    rng: Rng,
  ) {
    super();
    this.self_attn = this.registerModule('self_attn', new LlamaAttention(config, linearOptions, rng));
    this.mlp = this.registerModule('mlp', new LlamaMLP(config, linearOptions));
    const eps = config.rmsNormEps;
    this.input_layernorm = this.registerModule(
      'input_layernorm',
      new RMSNorm(config.hiddenSize, eps, { dtype: normDtype }),
    );
    this.post_attention_layernorm = this.registerModule(
      'post_attention_layernorm',
      new RMSNorm(config.hiddenSize, eps, { dtype: normDtype }),
    );
    this.resid_dropout = this.registerModule('resid_dropout', new Dropout(residualDropout, { rng }));
  }

  /** x [B, T, hidden] -> [B, T, hidden]. */
  forward(x: Tensor, ctx: LayerContext): Tensor {
    const attn = this.self_attn.forward(this.input_layernorm.forward(x), ctx);
    const h = add(x, this.resid_dropout.forward(attn));
    const mlp = this.mlp.forward(this.post_attention_layernorm.forward(h));
    return add(h, this.resid_dropout.forward(mlp));
  }
}

/** The decoder stack (`model.` prefix on the Hub). */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;

  constructor(
    config: LlamaConfig,
    options: Required<Pick<LlamaBuildOptions, 'dtype'>> & LlamaBuildOptions,
    rng: Rng,
  ) {
    super();
    const dtype = options.dtype;
    const normDtype = dtype === 'f64' ? 'f64' : 'f32';
    const linearOptions = (bias: boolean) => ({ bias, dtype, init: 'zeros' as const });
    this.embed_tokens = this.registerModule(
      'embed_tokens',
      new Embedding(config.vocabSize, config.hiddenSize, { dtype, init: 'zeros' }),
    );
    const layers: LlamaDecoderLayer[] = [];
    for (let i = 0; i < config.numLayers; i++) {
      layers.push(new LlamaDecoderLayer(config, linearOptions, normDtype, options.residualDropout ?? 0, rng));
    }
    this.layers = this.registerModule('layers', new ModuleList(layers));
    this.norm = this.registerModule(
      'norm',
      new RMSNorm(config.hiddenSize, config.rmsNormEps, { dtype: normDtype }),
    );
  }
}

/** Llama with its LM head (`lm_head`, or the embedding matrix when tied). */
export class LlamaForCausalLM extends CausalLM {
  readonly model: LlamaModel;
  readonly lm_head: Linear | null;
  private ropeCos: Tensor | null = null;
  private ropeSin: Tensor | null = null;

  constructor(
    readonly config: LlamaConfig,
    options: LlamaBuildOptions = {},
  ) {
    super();
    const dtype = options.dtype ?? 'f32';
    const rng = new Rng(options.seed ?? 0);
    this.model = this.registerModule('model', new LlamaModel(config, { ...options, dtype }, rng));
    this.lm_head = this.registerLmHead(config, dtype);
    if ((options.init ?? 'random') === 'random')
      this.initWeights(new Rng(options.seed ?? 0), options.onParameterInit);
  }

  /** HF's `_init_weights`: matrices N(0, initializer_range), biases 0, norms 1 (`onInit` after each fill). */
  private initWeights(rng: Rng, onInit?: ModelBuildOptions['onParameterInit']): void {
    const std =
      typeof this.config.raw.initializer_range === 'number' ? this.config.raw.initializer_range : 0.02;
    // by name: a parameter `onInit` replaces (quantises) is not kept alive by this loop
    for (const name of this.namedParameters().map(([n]) => n)) {
      const p = this.getParameter(name);
      if (name.endsWith('layernorm.weight') || name.endsWith('norm.weight')) continue;
      if (name.endsWith('.bias')) continue;
      p.fillWith(() => std * rng.normal());
      onInit?.(this, name, p);
    }
  }

  /** The [vocab, hidden] matrix of the LM head (the embedding matrix when tied). */
  override lmHeadWeight(): Tensor {
    return this.lm_head ? this.lm_head.weight : this.model.embed_tokens.weight;
  }

  private tables(maxPos: number, dtype: 'f32' | 'f64'): { cos: Tensor; sin: Tensor } {
    if (!this.ropeCos || this.ropeCos.shape[0]! < maxPos || this.ropeCos.dtype !== dtype) {
      const size = Math.max(maxPos, this.config.maxPositionEmbeddings);
      const { cos, sin } = ropeTables(
        size,
        this.config.headDim,
        this.config.ropeTheta,
        this.config.ropeScaling ?? undefined,
      );
      this.ropeCos?.release();
      this.ropeSin?.release();
      if (dtype === 'f64') {
        this.ropeCos = TensorClass.wrap(Float64Array.from(cos.data as Float32Array), cos.shape, {
          track: false,
        });
        this.ropeSin = TensorClass.wrap(Float64Array.from(sin.data as Float32Array), sin.shape, {
          track: false,
        });
        cos.release();
        sin.release();
      } else {
        this.ropeCos = cos;
        this.ropeSin = sin;
      }
    }
    return { cos: this.ropeCos, sin: this.ropeSin! };
  }

  /**
   * ids [B, T] (i32) -> final hidden states [B, T, hidden] (after the last norm). With a cache,
   * positions continue from the cache length.
   */
  override forwardHidden(ids: Tensor, options: ForwardOptions = {}): Tensor {
    if (ids.rank !== 2 || ids.dtype !== 'i32')
      throw new RangeError(`LlamaForCausalLM: ids ${ids.describe()} must be [B, T] i32`);
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
    checkSequenceLength(this.config, start + TT);
    const positions = new Int32Array(B * TT);
    for (let b = 0; b < B; b++) for (let t = 0; t < TT; t++) positions[b * TT + t] = starts[b]! + t;
    const normWeight = this.model.norm.weight;
    const actDtype = normWeight.dtype === 'f64' ? 'f64' : 'f32';
    const { cos, sin } = this.tables(start + TT, actDtype);
    let x = prependEmbeddings(this.model.embed_tokens.forward(ids), plan);
    this.model.layers.at(0); // throws early for an empty stack
    let i = 0;
    for (const layer of this.model.layers) {
      const input = x;
      const layerIndex = i++;
      x = this.runLayer(layer, input, cache, (h) =>
        layer.forward(h, { positions, cos, sin, cache, layerIndex, probe, prefixKv }),
      );
    }
    advanceCaches(cache, TT);
    return dropLeading(rmsNorm(x, normWeight, this.config.rmsNormEps), plan);
  }

  /** f64 for a reference (f64) model, else f32. */
  override activationDtype(): 'f32' | 'f64' {
    return this.model.norm.weight.dtype === 'f64' ? 'f64' : 'f32';
  }
}

/**
 * A tiny Llama-shaped causal LM built from nn/ and tensor ops, for tests: embedding, pre-norm
 * blocks (RMSNorm, causal self-attention with RoPE, SwiGLU MLP), final norm and LM head, with
 * Hub-style parameter names. Not a test file itself.
 */
import { Dropout, Embedding, Linear, Module, ModuleList, RMSNorm } from '../../../src/nn/index.ts';
import {
  add,
  attention,
  crossEntropy,
  Rng,
  reshape,
  rope,
  ropeTables,
  swiglu,
  type Tensor,
} from '../../../src/tensor/index.ts';

export interface TinyConfig {
  vocab: number;
  dim: number;
  heads: number;
  layers: number;
  hidden: number;
  maxPos: number;
  seed: number;
  /** Residual dropout rate (default 0). */
  dropout?: number;
}

class SelfAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(
    readonly cfg: TinyConfig,
    rng: Rng,
  ) {
    super();
    const d = cfg.dim;
    this.q_proj = this.registerModule('q_proj', new Linear(d, d, { bias: false, rng }));
    this.k_proj = this.registerModule('k_proj', new Linear(d, d, { bias: false, rng }));
    this.v_proj = this.registerModule('v_proj', new Linear(d, d, { bias: false, rng }));
    this.o_proj = this.registerModule('o_proj', new Linear(d, d, { bias: false, rng }));
  }
  /** x [B, T, d] -> [B, T, d]. */
  forward(x: Tensor, cos: Tensor, sin: Tensor, positions: Int32Array): Tensor {
    const [B, T, d] = x.shape as [number, number, number];
    const H = this.cfg.heads;
    const split = (t: Tensor): Tensor => reshape(t, [B, T, H, d / H]);
    const q = rope(split(this.q_proj.forward(x)), cos, sin, positions);
    const k = rope(split(this.k_proj.forward(x)), cos, sin, positions);
    const v = split(this.v_proj.forward(x));
    const o = attention(q, k, v, { causal: true });
    return this.o_proj.forward(reshape(o, [B, T, d]));
  }
}

class Mlp extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  constructor(cfg: TinyConfig, rng: Rng) {
    super();
    this.gate_proj = this.registerModule('gate_proj', new Linear(cfg.dim, cfg.hidden, { bias: false, rng }));
    this.up_proj = this.registerModule('up_proj', new Linear(cfg.dim, cfg.hidden, { bias: false, rng }));
    this.down_proj = this.registerModule('down_proj', new Linear(cfg.hidden, cfg.dim, { bias: false, rng }));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

class Block extends Module {
  input_layernorm: RMSNorm;
  self_attn: SelfAttention;
  post_attention_layernorm: RMSNorm;
  mlp: Mlp;
  dropout: Dropout;
  constructor(cfg: TinyConfig, rng: Rng) {
    super();
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(cfg.dim));
    this.self_attn = this.registerModule('self_attn', new SelfAttention(cfg, rng));
    this.post_attention_layernorm = this.registerModule('post_attention_layernorm', new RMSNorm(cfg.dim));
    this.mlp = this.registerModule('mlp', new Mlp(cfg, rng));
    this.dropout = this.registerModule('dropout', new Dropout(cfg.dropout ?? 0, { rng }));
  }
  forward(x: Tensor, cos: Tensor, sin: Tensor, positions: Int32Array): Tensor {
    const h = add(
      x,
      this.dropout.forward(this.self_attn.forward(this.input_layernorm.forward(x), cos, sin, positions)),
    );
    return add(h, this.dropout.forward(this.mlp.forward(this.post_attention_layernorm.forward(h))));
  }
}

class Backbone extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<Block>;
  norm: RMSNorm;
  constructor(cfg: TinyConfig, rng: Rng) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(cfg.vocab, cfg.dim, { rng }));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: cfg.layers }, () => new Block(cfg, rng))),
    );
    this.norm = this.registerModule('norm', new RMSNorm(cfg.dim));
  }
}

/** The tiny causal LM. */
export class TinyTransformer extends Module {
  model: Backbone;
  lm_head: Linear;
  private readonly cos: Tensor;
  private readonly sin: Tensor;

  constructor(readonly cfg: TinyConfig) {
    super();
    const rng = new Rng(cfg.seed);
    this.model = this.registerModule('model', new Backbone(cfg, rng));
    this.lm_head = this.registerModule('lm_head', new Linear(cfg.dim, cfg.vocab, { bias: false, rng }));
    const { cos, sin } = ropeTables(cfg.maxPos, cfg.dim / cfg.heads, 10000);
    this.cos = this.registerBuffer('rope_cos', cos, { persistent: false });
    this.sin = this.registerBuffer('rope_sin', sin, { persistent: false });
  }

  /** ids [B, T] (i32) -> logits [B, T, vocab]. */
  forward(ids: Tensor): Tensor {
    const [B, T] = ids.shape as [number, number];
    const positions = new Int32Array(B * T);
    for (let i = 0; i < B * T; i++) positions[i] = i % T;
    let h = this.model.embed_tokens.forward(ids);
    for (const layer of this.model.layers) h = layer.forward(h, this.cos, this.sin, positions);
    return this.lm_head.forward(this.model.norm.forward(h));
  }

  /** Mean next-token cross-entropy of labels [B, T] (i32, -100 ignored). */
  loss(ids: Tensor, labels: Tensor): Tensor {
    const logits = this.forward(ids);
    return crossEntropy(reshape(logits, [-1, this.cfg.vocab]), reshape(labels, [-1]));
  }
}

/**
 * LoraEmbedding: an embedding table with a low-rank update, PEFT's `lora.Embedding`:
 * `y = W[ids] + scaling * (A^T[ids]) B^T`, with `lora_embedding_A` [r, num_embeddings] and
 * `lora_embedding_B` [embedding_dim, r] (PEFT's shapes and Parameter names; saved without a
 * `.weight`, as PEFT saves its ParameterDicts). The update of the table is
 * `delta = (B A)^T * scaling` [num_embeddings, embedding_dim].
 *
 * As PEFT: A starts at zeros and B ~ N(0, 1) (so the layer starts as the base), and no dropout is
 * applied on the embedding's LoRA path (PEFT's Embedding.forward does not call lora_dropout).
 *
 * It takes the embedding's place in the module tree and registers that layer's own `weight`
 * Parameter (the same object, frozen by the tuner), so the base keeps its Hub name and a tied LM
 * head (which reads that matrix) sees the base table unless the tuner says otherwise
 * (lora-head.ts). Merging adds `delta` into the table (f32 / f64 rounding; a bf16 table keeps its
 * original bits for `unmerge`, as LoraLinear does).
 */
import { type Embedding, Module, Parameter } from '../nn/index.ts';
import {
  add,
  embedding,
  formatShape,
  matmul,
  mulScalar,
  noGrad,
  type Rng,
  readElement,
  scope,
  type Tensor,
  toBf16Bits,
  transpose,
} from '../tensor/index.ts';
import { checkLoraRankAndScaling } from './lora-linear.ts';
import type { TunerLayer } from './targets.ts';

/** Options of a LoraEmbedding. */
export interface LoraEmbeddingOptions {
  /** Rank r of the update. */
  r: number;
  /** Multiplier of the update: lora_alpha / r, or lora_alpha / sqrt(r) for rsLoRA. */
  scaling: number;
  /** Draws B ~ N(0, 1). */
  rng: Rng;
}

/** An Embedding with a trainable low-rank update; see the file comment. */
export class LoraEmbedding extends Module implements TunerLayer {
  /** Marks a layer a tuner put in the tree. */
  readonly isTunerLayer = true;
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  /** The adapted table [num_embeddings, embedding_dim] (the replaced Embedding's Parameter). */
  weight: Parameter;
  /** PEFT's lora_embedding_A [r, num_embeddings] (zeros at the start). */
  readonly lora_embedding_A: Parameter;
  /** PEFT's lora_embedding_B [embedding_dim, r] (N(0, 1) at the start). */
  readonly lora_embedding_B: Parameter;
  readonly r: number;
  readonly scaling: number;
  /** The Embedding this layer replaced (put back by `toEmbedding`). */
  readonly base: Embedding;
  private bf16Backup: Uint16Array | null = null;
  private isMerged = false;

  /** Wrap `base` with a rank-r update (A = 0, B drawn from `options.rng`). */
  constructor(base: Embedding, options: LoraEmbeddingOptions) {
    super();
    const { r, scaling } = options;
    checkLoraRankAndScaling(r, scaling);
    this.base = base;
    this.numEmbeddings = base.numEmbeddings;
    this.embeddingDim = base.embeddingDim;
    this.r = r;
    this.scaling = scaling;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
    const dtype = base.weight.dtype === 'f64' ? 'f64' : 'f32';
    this.lora_embedding_A = this.registerParameter(
      'lora_embedding_A',
      Parameter.zeros([r, this.numEmbeddings], dtype, { requiresGrad: true }),
    );
    const b = Parameter.zeros([this.embeddingDim, r], dtype, { requiresGrad: true });
    b.fillWith(() => options.rng.normal());
    this.lora_embedding_B = this.registerParameter('lora_embedding_B', b);
  }

  /** Whether the update is folded into `weight`. */
  get merged(): boolean {
    return this.isMerged;
  }

  /** ids (i32, any shape) -> [...ids.shape, embedding_dim]; only the base lookup when merged. */
  forward(ids: Tensor): Tensor {
    const y = embedding(this.weight, ids);
    if (this.isMerged) return y;
    // PEFT: F.embedding(x, A^T) @ B^T * scaling
    const picked = embedding(transpose(this.lora_embedding_A), ids);
    const update = matmul(picked, this.lora_embedding_B, { transB: true });
    return add(y, this.scaling === 1 ? update : mulScalar(update, this.scaling));
  }

  /** The update `scaling * (B A)^T` [num_embeddings, embedding_dim], tracked (a gradient reaches A and B). */
  delta(): Tensor {
    const d = matmul(this.lora_embedding_A, this.lora_embedding_B, { transA: true, transB: true });
    return this.scaling === 1 ? d : mulScalar(d, this.scaling);
  }

  /** The update as a new f64 array in the table's layout [num_embeddings, embedding_dim]. */
  deltaWeight(): Float64Array {
    const out = new Float64Array(this.numEmbeddings * this.embeddingDim);
    noGrad(() =>
      scope(() => {
        const d = this.delta().data;
        for (let i = 0; i < out.length; i++) out[i] = d[i]!;
      }),
    );
    return out;
  }

  /** W += scaling (B A)^T (no-op when merged). */
  merge(): void {
    if (this.isMerged) return;
    const d = this.deltaWeight();
    const w = this.weight.data;
    if (w instanceof Uint16Array) {
      this.bf16Backup = Uint16Array.from(w);
      for (let i = 0; i < w.length; i++) w[i] = toBf16Bits(readElement(w, i) + d[i]!);
    } else {
      const wf = w as Float32Array | Float64Array;
      for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! + d[i]!;
    }
    this.isMerged = true;
  }

  /** Subtract what `merge()` added (a bf16 table gets its original bits back). */
  unmerge(): void {
    if (!this.isMerged) return;
    const w = this.weight.data;
    if (w instanceof Uint16Array) {
      w.set(this.bf16Backup!);
      this.bf16Backup = null;
    } else {
      const d = this.deltaWeight();
      const wf = w as Float32Array | Float64Array;
      for (let i = 0; i < wf.length; i++) wf[i] = wf[i]! - d[i]!;
    }
    this.isMerged = false;
  }

  /** The plain Embedding to put back in the tree (holding this layer's table). Merge first to keep the update. */
  toEmbedding(): Embedding {
    if (this.base.weight !== this.weight) this.base.setParameter('weight', this.weight);
    this.bf16Backup = null;
    this.base.train(this.training);
    return this.base;
  }

  /** A short description for errors. */
  describe(): string {
    return `LoraEmbedding(${formatShape([this.numEmbeddings, this.embeddingDim])}, r=${this.r})`;
  }
}

/**
 * The per-row layers of multi-LoRA serving (multi-lora.ts installs them): the router that says
 * which batch rows use which adapter, and the three places a LoRA can sit —
 *
 * - `MultiLoraLinear`: a Linear plus each row's `scaling * B (A x)` (LoraLinear's order of ops);
 * - `MultiLoraEmbedding`: an Embedding plus each row's `scaling * A^T[ids] B^T` (PEFT's
 *   lora.Embedding, as LoraEmbedding computes it);
 * - `multiLoraHead`: a `CausalLM.lmHeadOverride` whose logits are `h W^T` plus each row's
 *   `scaling * (h A^T) B^T`, for an `lm_head` LoRA (untied, or head-only over a tied table) and for
 *   a tied embedding LoRA with ensure_weight_tying (A = lora_embedding_B^T, B = lora_embedding_A^T,
 *   as PEFT ties them).
 *
 * Rows come sorted by adapter (the decode loop's groups), so each adapter's rows are one range:
 * one slice, two small GEMMs and one add per adapter; the base runs once on the whole batch. A
 * row's result never depends on the other rows, so batching changes no sequence's answer.
 */
import { ConfigError } from '../errors.ts';
import type { CausalLM, LmHeadOverride } from '../models/index.ts';
import { type Embedding, type Linear, Module, type Parameter } from '../nn/index.ts';
import { add, concat, embedding, matmul, mulScalar, slice, type Tensor } from '../tensor/index.ts';

/** One adapter's update of one Linear (or of the head): scaling * B A, A [r, in], B [out, r] (f32 copies). */
export interface LoraDelta {
  a: Tensor;
  b: Tensor;
  scaling: number;
}

/** One adapter's update of an Embedding: `aT` = lora_embedding_A^T [num_embeddings, r], `b` = lora_embedding_B [dim, r]. */
export interface EmbeddingDelta {
  aT: Tensor;
  b: Tensor;
  scaling: number;
}

/** A contiguous range of batch rows [start, end) that use adapter `adapter` (-1 = the base alone). */
export interface RowGroup {
  adapter: number;
  start: number;
  end: number;
}

/** Which adapter each batch row of the next forward uses (set by the decode loop before it). */
export class AdapterRouter {
  /** Row ranges by adapter; null = every row runs the base alone. */
  groups: readonly RowGroup[] | null = null;

  /** Run `f` with every row of its forward on `adapter` (-1 = base). */
  withAdapter<T>(adapter: number, rows: number, f: () => T): T {
    const saved = this.groups;
    this.groups = [{ adapter, start: 0, end: rows }];
    try {
      return f();
    } finally {
      this.groups = saved;
    }
  }
}

/**
 * `y` (the base's output for input rows `x`) plus, on each group's rows, `update(x rows, delta)`
 * of the group's adapter; `y` itself when no row's adapter has a delta here.
 */
function addRowUpdates<D>(
  y: Tensor,
  x: Tensor,
  groups: readonly RowGroup[] | null,
  deltas: ReadonlyMap<number, D>,
  update: (x: Tensor, delta: D) => Tensor,
): Tensor {
  if (groups === null || !groups.some((g) => deltas.has(g.adapter))) return y;
  if (groups.length === 1) return add(y, update(x, deltas.get(groups[0]!.adapter)!));
  const parts = groups.map((g) => {
    const rows = slice(y, 0, g.start, g.end);
    const delta = deltas.get(g.adapter);
    return delta ? add(rows, update(slice(x, 0, g.start, g.end), delta)) : rows;
  });
  return concat(parts, 0);
}

/** scaling * B (A x), in LoraLinear's order of operations. */
function loraUpdate(x: Tensor, delta: LoraDelta): Tensor {
  const ax = matmul(x, delta.a, { transB: true });
  const bax = matmul(ax, delta.b, { transB: true });
  return delta.scaling === 1 ? bax : mulScalar(bax, delta.scaling);
}

/** A Linear with per-row LoRA updates of several adapters; see the file comment. */
export class MultiLoraLinear extends Module {
  readonly base: Linear;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** Adapter index -> its update of this module (absent: the adapter does not target it). */
  readonly deltas = new Map<number, LoraDelta>();

  /** Wrap `base`; the same weight and bias Parameters stay registered under their names. */
  constructor(
    base: Linear,
    private readonly router: AdapterRouter,
  ) {
    super();
    this.base = base;
    this.inFeatures = base.inFeatures;
    this.outFeatures = base.outFeatures;
    this.training = base.training;
    this.registerParameter('weight', base.weight);
    this.registerParameter('bias', base.bias);
  }

  /** x [B, T, in] (or [B, in]) -> [B, T, out]: the base on every row plus each row's adapter update. */
  forward(x: Tensor): Tensor {
    return addRowUpdates(this.base.forward(x), x, this.router.groups, this.deltas, loraUpdate);
  }
}

/** An Embedding with per-row LoRA updates of several adapters; see the file comment. */
export class MultiLoraEmbedding extends Module {
  readonly base: Embedding;
  /** The table (the replaced Embedding's Parameter: a tied LM head keeps reading it). */
  readonly weight: Parameter;
  /** Adapter index -> its update of this table. */
  readonly deltas = new Map<number, EmbeddingDelta>();

  /** Wrap `base`; its weight Parameter stays registered under its name. */
  constructor(
    base: Embedding,
    private readonly router: AdapterRouter,
  ) {
    super();
    this.base = base;
    this.training = base.training;
    this.weight = this.registerParameter('weight', base.weight);
  }

  /** ids [B, T] (i32) -> [B, T, dim]: the lookup on every row plus each row's adapter update. */
  forward(ids: Tensor): Tensor {
    return addRowUpdates(this.base.forward(ids), ids, this.router.groups, this.deltas, (rows, d) => {
      // PEFT: F.embedding(x, A^T) @ B^T * scaling
      const update = matmul(embedding(d.aT, rows), d.b, { transB: true });
      return d.scaling === 1 ? update : mulScalar(update, d.scaling);
    });
  }
}

/** The head override of the adapters that change the LM head (adapter index -> update); see the file comment. */
export function multiLoraHead(
  model: CausalLM,
  router: AdapterRouter,
  deltas: ReadonlyMap<number, LoraDelta>,
): LmHeadOverride {
  return {
    weight: () => {
      // serve decodes through logits(); the fused scoring path (one matrix for every row) is not used
      const groups = router.groups ?? [];
      if (groups.some((g) => deltas.has(g.adapter)))
        throw new ConfigError(
          'serve: rows on an adapter of the LM head have no single [vocab, hidden] matrix for the fused scoring path; use logits()',
        );
      return model.lmHeadWeight();
    },
    logits: (hidden) => {
      const y = matmul(hidden, model.lmHeadWeight(), { transB: true, precision: model.lmHeadPrecision });
      return addRowUpdates(y, hidden, router.groups, deltas, loraUpdate);
    },
  };
}

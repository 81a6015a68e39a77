/**
 * Weak-to-strong logit fusion ("On Giant's Shoulders: Effortless Weak to Strong by Dynamic Logits
 * Fusion"; proxy tuning is its static special case). At each decoding step
 *
 *   z = z_strong + sum_i w_i (z_tuned,i - z_base,i)
 *
 * over experts i (a small tuned model and the small base it was tuned from). With `weights: 'dynamic'`
 * the w_i are chosen per step by the paper's KL-constrained rule, as we implement it
 * (docs/methods/fusion.md): with q(w) = softmax(z), p = softmax(z_strong), f_i = softmax(z_tuned,i),
 * b_i = softmax(z_base,i) and KL(x||y) = sum x log(x / y),
 *
 *   w = argmin_w  sum_i (KL(q || p) - KL(f_i || b_i))^2 + (KL(q || f_i) - KL(p || b_i))^2
 *
 * (the strong model should move as far as the expert moved from its base, and end as far from the
 * expert as the strong base is from the small base), searched on the grid 0, step, ..., maxWeight per
 * weight (coordinate descent from w = 1 for several experts; ties keep the smaller weight). Fixed
 * weights (`weights: [w_1, ...]`) are proxy tuning.
 */
import { CausalLM } from './causal-lm.ts';
import { MemberEnsembleLM, type NamedMember } from './fusion-members.ts';
import { checkSameVocabulary } from './vocabulary.ts';

/** How the expert weights are set: per step by the KL rule, or fixed (proxy tuning). */
export type FusionWeights = 'dynamic' | readonly number[];

/** The dynamic rule's search. */
export interface DynamicWeightOptions {
  /** Largest weight tried (default 2). */
  maxWeight?: number;
  /** Grid step (default 0.1). */
  step?: number;
  /** Coordinate-descent sweeps over the experts when there are several (default 2). */
  sweeps?: number;
}

/** log-softmax of one row of logits (f64 for the KL sums). */
export function logSoftmaxRow(z: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < z.length; i++) if (z[i]! > max) max = z[i]!;
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += Math.exp(z[i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(z.length);
  for (let i = 0; i < z.length; i++) out[i] = z[i]! - lse;
  return out;
}

/** KL(x || y) = sum_v x_v (log x_v - log y_v) of two log-probability rows. */
export function klDivergence(logX: ArrayLike<number>, logY: ArrayLike<number>): number {
  let kl = 0;
  for (let v = 0; v < logX.length; v++) {
    const lx = logX[v]!;
    if (lx === -Infinity) continue;
    kl += Math.exp(lx) * (lx - logY[v]!);
  }
  return kl;
}

/** One expert's logits at a step: the small tuned model and its small base. */
export interface ExpertLogits {
  tuned: ArrayLike<number>;
  base: ArrayLike<number>;
}

/** z_strong + sum_i w_i (z_tuned,i - z_base,i), written into `out` (allocated when omitted). */
export function fuseLogits(
  strong: ArrayLike<number>,
  experts: readonly ExpertLogits[],
  weights: readonly number[],
  out: Float32Array | Float64Array = new Float64Array(strong.length),
): Float32Array | Float64Array {
  if (weights.length !== experts.length)
    throw new RangeError(`fusion: ${weights.length} weights for ${experts.length} experts`);
  for (let v = 0; v < strong.length; v++) {
    let z = strong[v]!;
    for (let i = 0; i < experts.length; i++)
      z += weights[i]! * (experts[i]!.tuned[v]! - experts[i]!.base[v]!);
    out[v] = z;
  }
  return out;
}

/**
 * The dynamic rule's objective at weights `w` (see the file comment): sum over experts of the two
 * squared KL-constraint violations.
 */
export function fusionObjective(
  strong: ArrayLike<number>,
  experts: readonly ExpertLogits[],
  w: readonly number[],
): number {
  const p = logSoftmaxRow(strong);
  const q = logSoftmaxRow(fuseLogits(strong, experts, w));
  let total = 0;
  const kqp = klDivergence(q, p);
  for (const e of experts) {
    const f = logSoftmaxRow(e.tuned);
    const b = logSoftmaxRow(e.base);
    total += (kqp - klDivergence(f, b)) ** 2 + (klDivergence(q, f) - klDivergence(p, b)) ** 2;
  }
  return total;
}

/** The dynamic weights of one step (see the file comment). */
export function dynamicFusionWeights(
  strong: ArrayLike<number>,
  experts: readonly ExpertLogits[],
  options: DynamicWeightOptions = {},
): number[] {
  const maxWeight = options.maxWeight ?? 2;
  const step = options.step ?? 0.1;
  if (!(step > 0) || !(maxWeight >= 0))
    throw new RangeError(`fusion: grid step must be > 0 and max weight >= 0, found ${step}, ${maxWeight}`);
  const grid = Array.from({ length: Math.floor(maxWeight / step + 1e-9) + 1 }, (_, k) => k * step);
  const V = strong.length;
  // per-expert constants and the row pieces, computed once per step
  const p = logSoftmaxRow(strong);
  const fs = experts.map((e) => logSoftmaxRow(e.tuned));
  const targets = experts.map((e, i) => {
    const b = logSoftmaxRow(e.base);
    return { shift: klDivergence(fs[i]!, b), gap: klDivergence(p, b) };
  });
  const deltas = experts.map((e) => {
    const d = new Float64Array(V);
    for (let v = 0; v < V; v++) d[v] = e.tuned[v]! - e.base[v]!;
    return d;
  });
  const z = new Float64Array(V);
  const objective = (w: readonly number[]): number => {
    for (let v = 0; v < V; v++) {
      let x = strong[v]!;
      for (let i = 0; i < w.length; i++) x += w[i]! * deltas[i]![v]!;
      z[v] = x;
    }
    const q = logSoftmaxRow(z);
    const kqp = klDivergence(q, p);
    let total = 0;
    for (let i = 0; i < w.length; i++)
      total += (kqp - targets[i]!.shift) ** 2 + (klDivergence(q, fs[i]!) - targets[i]!.gap) ** 2;
    return total;
  };
  const w = experts.map(() => Math.min(1, maxWeight));
  const sweeps = experts.length === 1 ? 1 : (options.sweeps ?? 2);
  for (let s = 0; s < sweeps; s++) {
    for (let i = 0; i < experts.length; i++) {
      let best = w[i]!;
      let bestValue = Infinity;
      for (const g of grid) {
        w[i] = g;
        const value = objective(w);
        if (value < bestValue - 1e-12) {
          bestValue = value;
          best = g;
        }
      }
      w[i] = best;
    }
  }
  return w;
}

/** A member model of a fusion, named for error messages. */
export type FusionMember = NamedMember;

/** One expert of a fusion: a small tuned model and the small base it was tuned from. */
export interface FusionExpert {
  tuned: FusionMember;
  base: FusionMember;
}

export interface FusedModelOptions {
  /** 'dynamic' (default) or one fixed weight per expert (proxy tuning). */
  weights?: FusionWeights;
  dynamic?: DynamicWeightOptions;
  /** Called with the weights of every combined position (for reports; dynamic weights vary). */
  onWeights?: (weights: readonly number[]) => void;
}

/**
 * A strong model steered by small experts; see the file comment. Decodes like any CausalLM (each
 * member keeps its own KV cache); a base shared by several experts (the same model object) runs once.
 */
export class FusedModel extends MemberEnsembleLM {
  /** Per expert: the member indices of its tuned model and its base (member 0 is the strong model). */
  private readonly expertMembers: { tuned: number; base: number }[];
  /** Weights chosen at the most recent combined position. */
  lastWeights: number[] = [];
  /** Called with the weights of every combined position (set from the options; may be replaced). */
  onWeights: ((weights: readonly number[]) => void) | undefined;

  constructor(
    strong: FusionMember,
    experts: readonly FusionExpert[],
    private readonly options: FusedModelOptions = {},
  ) {
    if (experts.length === 0)
      throw new RangeError('fusion: give at least one expert (a tuned model and its base)');
    const models: CausalLM[] = [strong.model];
    const indexOf = (m: FusionMember): number => {
      const at = models.indexOf(m.model);
      if (at >= 0) return at;
      models.push(m.model);
      return models.length - 1;
    };
    for (const e of experts) {
      checkSameVocabulary(strong, e.tuned);
      checkSameVocabulary(strong, e.base);
    }
    const expertMembers = experts.map((e) => ({ tuned: indexOf(e.tuned), base: indexOf(e.base) }));
    super(models);
    this.expertMembers = expertMembers;
    this.onWeights = options.onWeights;
    const w = options.weights ?? 'dynamic';
    if (w !== 'dynamic') {
      if (w.length !== experts.length)
        throw new RangeError(`fusion: ${w.length} fixed weights for ${experts.length} experts`);
      if (w.some((x) => !Number.isFinite(x)))
        throw new RangeError(`fusion: fixed weights must be finite numbers, found ${w.join(', ')}`);
    }
  }

  /** Number of experts. */
  get expertCount(): number {
    return this.expertMembers.length;
  }

  protected combineRow(rows: readonly Float32Array[], out: Float32Array): void {
    const strong = rows[0]!;
    const experts = this.expertMembers.map((e) => ({ tuned: rows[e.tuned]!, base: rows[e.base]! }));
    const w = this.options.weights ?? 'dynamic';
    const weights = w === 'dynamic' ? dynamicFusionWeights(strong, experts, this.options.dynamic) : [...w];
    this.lastWeights = weights;
    this.onWeights?.(weights);
    fuseLogits(strong, experts, weights, out);
  }
}

/** Whether `m` is a fused model. */
export function isFusedModel(m: unknown): m is FusedModel {
  return m instanceof FusedModel && m instanceof CausalLM;
}

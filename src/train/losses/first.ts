/**
 * `first` — FIRST distillation ("Teach A Reliable Large Language Model Through Efficient Trustworthy
 * Distillation", METHODS.md §4): forward KL from the teacher's calibrated top-k distribution to the
 * student's distribution over the same k ids, mixable with CE:
 *   L = ce_weight * NLL + kl_weight * (1/N_step) sum_tokens KL(q_teacher || s_student)
 * The teacher's top-k log-probs come from a cache (train/teacher-cache.ts); the student's log-probs
 * of those k ids come from the fused head's extra-target term (`extraTargets`).
 *
 * "Trustworthy maximization" is the calibration of the top-k before transfer. As in the authors'
 * released code (distill.py, `--use_norm`), both sides are normalised over the k ids by one rule:
 *   softmax (default, the paper's): q_i = exp(p_i / T) / sum_j exp(p_j / T) on the top-k
 *     *probabilities* p (teacher T = `temperature`, student T = `student_temperature`);
 *   linear: q_i = (p_i + eps) / sum_j (p_j + eps) (plain renormalisation);
 *   other-token: k + 1 bins, the top-k probabilities and 1 - sum (their `--use_other_token`).
 */
import { z } from 'zod';
import { ConfigError } from '../../errors.ts';
import { openTeacherCache, type TeacherCache } from '../teacher-cache.ts';
import { registerLoss, type TokenLoss } from './registry.ts';

/** How the top-k is normalised on both sides before the KL. */
export type FirstNormalization = 'softmax' | 'linear' | 'other-token';

export interface FirstCalibration {
  normalization: FirstNormalization;
  /** Teacher temperature (softmax rule). */
  temperature: number;
  /** Student temperature (softmax rule). */
  studentTemperature: number;
  /** Added to each probability by the linear rule. */
  eps: number;
}

/** Smallest probability inside a log (the other-token bin can round to 0). */
const TINY = 1e-12;

/**
 * The normalised distribution over the bins of one token from the top-k log-probs `logp`
 * (k values; k + 1 bins for other-token) at temperature `t`. Returns probabilities.
 */
export function normalizeTopK(
  logp: ArrayLike<number>,
  rule: FirstNormalization,
  t: number,
  eps: number,
): Float64Array {
  const k = logp.length;
  const p = Float64Array.from({ length: k }, (_, i) => Math.exp(logp[i]!));
  if (rule === 'softmax') {
    let m = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < k; i++) m = Math.max(m, p[i]! / t);
    let s = 0;
    const q = new Float64Array(k);
    for (let i = 0; i < k; i++) s += q[i] = Math.exp(p[i]! / t - m);
    for (let i = 0; i < k; i++) q[i]! /= s;
    return q;
  }
  if (rule === 'linear') {
    let s = 0;
    for (let i = 0; i < k; i++) s += p[i]! + eps;
    return p.map((x) => (x + eps) / s);
  }
  const q = new Float64Array(k + 1);
  let s = 0;
  for (let i = 0; i < k; i++) s += q[i] = p[i]!;
  q[k] = Math.max(TINY, 1 - s);
  return q;
}

/**
 * KL(q || s) of one token, s the student's normalised distribution from its log-probs `studentLogp`
 * of the k teacher ids, and dKL/d(studentLogp_j) (through the rule's normalisation).
 */
export function topKForwardKl(
  teacherQ: ArrayLike<number>,
  studentLogp: ArrayLike<number>,
  calibration: FirstCalibration,
): { kl: number; grad: Float64Array } {
  const { normalization: rule, studentTemperature: ts, eps } = calibration;
  const k = studentLogp.length;
  const ps = Float64Array.from({ length: k }, (_, i) => Math.exp(studentLogp[i]!));
  const s = normalizeTopK(studentLogp, rule, ts, eps);
  let kl = 0;
  for (let i = 0; i < s.length; i++) {
    const q = teacherQ[i]!;
    if (q > 0) kl += q * (Math.log(q) - Math.log(Math.max(TINY, s[i]!)));
  }
  const grad = new Float64Array(k);
  if (rule === 'softmax') {
    // s = softmax(ps / ts): dKL/dps_j = -(q_j - s_j) / ts; dps_j/dlogp_j = ps_j
    for (let j = 0; j < k; j++) grad[j] = (-ps[j]! * (teacherQ[j]! - s[j]!)) / ts;
  } else if (rule === 'linear') {
    let sum = 0;
    for (let j = 0; j < k; j++) sum += ps[j]! + eps;
    let qSum = 0;
    for (let j = 0; j < k; j++) qSum += teacherQ[j]!;
    for (let j = 0; j < k; j++) grad[j] = ps[j]! * (qSum / sum - teacherQ[j]! / (ps[j]! + eps));
  } else {
    const rest = 1 - ps.reduce((a, b) => a + b, 0);
    const qo = teacherQ[k]!;
    // the other bin's derivative vanishes where it is clamped
    const dOther = rest > TINY ? qo / rest : 0;
    for (let j = 0; j < k; j++) grad[j] = -teacherQ[j]! + ps[j]! * dOther;
  }
  return { kl, grad };
}

export interface FirstOptions extends FirstCalibration {
  /** Top-k used per token (at most the cache's k; the first k columns). */
  k: number;
  ceWeight: number;
  klWeight: number;
  /** The loaded teacher cache. */
  cache: TeacherCache;
}

/** The FIRST loss on a teacher cache. */
export function firstLoss(options: FirstOptions): TokenLoss {
  const { k, cache, ceWeight, klWeight } = options;
  if (k > cache.k)
    throw new ConfigError(
      `loss.k: ${k} is more than the ${cache.k} ids per token of the teacher cache ${cache.path}`,
    );
  const K = cache.k;
  /** Cache row of each scored token (-1: none, e.g. the first token of a packed example). */
  const rowsOf = (count: number, exampleOf?: Int32Array, positionOf?: Int32Array, targets?: Int32Array) => {
    if (!exampleOf || !positionOf)
      throw new ConfigError(
        "loss 'first' needs each token's example index and position (the trainer's DataLoader gives them)",
      );
    const rows = new Int32Array(count);
    for (let i = 0; i < count; i++) {
      const e = exampleOf[i]!;
      const p = positionOf[i]!;
      const r = cache.rowOf(e, p);
      if (r < 0 && p > 0)
        throw new ConfigError(
          `teacher cache ${cache.path} has no row for example ${e} position ${p}: it was built from other data (${cache.header.data_file}); rebuild it`,
        );
      if (r >= 0 && targets && cache.targets[r] !== targets[i])
        throw new ConfigError(
          `teacher cache ${cache.path}: example ${e} position ${p} has gold token ${targets[i]} but the cache says ${cache.targets[r]}: it was built from other data or another tokenizer; rebuild it`,
        );
      rows[i] = r;
    }
    return rows;
  };
  return {
    name: 'first',
    bindData(data) {
      cache.verify(data);
    },
    extraTargets(tokens) {
      const rows = rowsOf(tokens.count, tokens.exampleOf, tokens.positionOf, tokens.targets);
      const ids = new Int32Array(tokens.count * k);
      for (let i = 0; i < tokens.count; i++) {
        const r = rows[i]!;
        for (let j = 0; j < k; j++) ids[i * k + j] = r >= 0 ? cache.ids[r * K + j]! : tokens.targets[i]!;
      }
      return { ids, perToken: k };
    },
    compute(terms, step) {
      const n = Math.max(1, step.stepTokens);
      if (!terms.extra || terms.extra.perToken !== k)
        throw new ConfigError(
          "loss 'first': the trainer did not provide the student's log-probs of the teacher's top-k",
        );
      const rows = rowsOf(terms.count, terms.exampleOf, terms.positionOf);
      const cLogp = new Float32Array(terms.count).fill(-ceWeight / n);
      const cExtraLogp = new Float32Array(terms.count * k);
      let nll = 0;
      let kl = 0;
      const teacherLogp = new Float64Array(k);
      for (let i = 0; i < terms.count; i++) {
        nll -= terms.logp[i]!;
        const r = rows[i]!;
        if (r < 0) continue;
        for (let j = 0; j < k; j++) teacherLogp[j] = cache.logprobs[r * K + j]!;
        const q = normalizeTopK(teacherLogp, options.normalization, options.temperature, options.eps);
        const student = terms.extra.logp.subarray(i * k, (i + 1) * k);
        const out = topKForwardKl(q, student, options);
        kl += out.kl;
        for (let j = 0; j < k; j++) cExtraLogp[i * k + j] = (klWeight * out.grad[j]!) / n;
      }
      const value = (ceWeight * nll + klWeight * kl) / n;
      return {
        value,
        parts: { nll: nll / n, kl: kl / n },
        cLogp,
        cEntropy: null,
        cTop1: null,
        cExtraLogp,
      };
    },
  };
}

registerLoss({
  name: 'first',
  description:
    "FIRST distillation: forward KL from a teacher's calibrated top-k (a cache from 'attune distill') to the student, + ce_weight * CE",
  options: z.object({
    cache: z
      .string()
      .min(1)
      .describe("the teacher cache (.safetensors) 'attune distill' builds")
      .meta({ path: true }),
    k: z.number().int().positive().default(5).describe("top-k per token (at most the cache's k)"),
    ce_weight: z.number().min(0).default(0).describe('weight of the cross-entropy term'),
    kl_weight: z.number().min(0).default(1).describe('weight of the KL term'),
    normalization: z
      .enum(['softmax', 'linear', 'other-token'])
      .default('softmax')
      .describe(
        'trustworthy maximization: softmax(p / T) over the top-k probabilities, plain renormalisation, or top-k + other bin',
      ),
    temperature: z.number().positive().default(1).describe('teacher temperature T of the softmax rule'),
    student_temperature: z.number().positive().default(1).describe('student temperature of the softmax rule'),
    eps: z.number().min(0).default(1e-6).describe('added to each probability by the linear rule'),
  }),
  create: (o) =>
    firstLoss({
      cache: openTeacherCache(o.cache),
      k: o.k,
      ceWeight: o.ce_weight,
      klWeight: o.kl_weight,
      normalization: o.normalization,
      temperature: o.temperature,
      studentTemperature: o.student_temperature,
      eps: o.eps,
    }),
});

/**
 * A model made of several member models decoded in lock-step, whose next-token logits are one
 * combination of the members' logits (logit fusion, contrastive decoding). It is a `CausalLM`, so
 * generate.ts, predict and everything that decodes from a model decode from it unchanged:
 *
 * - its "hidden state" of a position is the members' logits side by side ([..., M * V], member order),
 *   so `forwardHidden` runs every member once (each with its own KV cache) and `logits(hidden)`
 *   combines only the positions it is given (the last prompt token, the decoded token);
 * - its KV cache (`MemberCaches`) holds one KV cache per member and clones them together.
 *
 * Members must share the vocabulary: `checkSameVocabulary` (vocabulary.ts) names the two models and
 * what differs.
 */
import type { Tokenizer } from '../io/index.ts';
import { type LinearCrossEntropyResult, reshape, Tensor, zeros } from '../tensor/index.ts';
import { CausalLM, type CausalLMConfig, type ForwardOptions } from './causal-lm.ts';
import { KvCache, type KvCaches } from './kv-cache.ts';

/** A member: a name for messages, its model, its tokenizer (what checkSameVocabulary reads). */
export interface NamedMember {
  /** How errors name the model (its directory, `--strong`, ...). */
  name: string;
  model: CausalLM;
  tokenizer?: Tokenizer | null;
}

/** One KV cache per member, advanced and cloned together. */
export class MemberCaches extends KvCache {
  constructor(readonly members: KvCache[]) {
    super({ numLayers: 0, numKvHeads: 1, headDim: 1 }, 1);
    this.length = members[0]?.length ?? 0;
  }

  override clone(capacity?: number): MemberCaches {
    return new MemberCaches(this.members.map((c) => c.clone(capacity)));
  }

  override reset(): void {
    for (const c of this.members) c.reset();
    this.length = 0;
  }

  override advance(T: number): void {
    // the members advance their own caches in their forward passes; this one only mirrors the length
    this.length += T;
  }
}

/** The cache of member `m` in `caches` (one per batch row, or one). */
function memberCaches(caches: KvCaches | null | undefined, m: number): KvCaches | null {
  if (!caches) return null;
  if (Array.isArray(caches)) return (caches as readonly KvCache[]).map((c) => asMemberCaches(c).members[m]!);
  return asMemberCaches(caches as KvCache).members[m]!;
}

function asMemberCaches(c: KvCache): MemberCaches {
  if (!(c instanceof MemberCaches))
    throw new RangeError('a model of several members decodes with its own KV cache (createKvCache)');
  return c;
}

/**
 * Members decoded in lock-step with one logit combination; see the file comment. Subclasses give
 * `combineRow`, which writes the combined logits of one position from the members' rows.
 */
export abstract class MemberEnsembleLM extends CausalLM {
  readonly config: CausalLMConfig;
  /** Vocabulary size shared by the members. */
  readonly vocabSize: number;

  protected constructor(readonly members: readonly CausalLM[]) {
    super();
    if (members.length === 0) throw new RangeError('a model ensemble needs at least one member');
    const first = members[0]!;
    this.vocabSize = first.config.vocabSize;
    members.forEach((m, i) => {
      this.registerModule(`member_${i}`, m);
    });
    // the "hidden state" is the members' logits side by side
    this.config = { ...first.config, hiddenSize: members.length * this.vocabSize };
  }

  /**
   * Write the combined logits of one position into `out` [V] from the members' logits `rows`
   * (member order, each [V]).
   */
  protected abstract combineRow(rows: readonly Float32Array[], out: Float32Array): void;

  override forwardHidden(ids: Tensor, options: ForwardOptions = {}): Tensor {
    const [B, T] = ids.shape as [number, number];
    const V = this.vocabSize;
    const M = this.members.length;
    const out = zeros([B, T, M * V]);
    const data = out.data as Float32Array;
    this.members.forEach((member, m) => {
      const hidden = member.forwardHidden(ids, { cache: memberCaches(options.cache, m) });
      const logits = member.logits(hidden).data;
      for (let r = 0; r < B * T; r++)
        for (let v = 0; v < V; v++) data[r * M * V + m * V + v] = logits[r * V + v]!;
    });
    mirrorAdvance(options.cache, T);
    return out;
  }

  /** Combined logits [..., V] of the members' logits side by side [..., M * V]. */
  override logits(hidden: Tensor): Tensor {
    const V = this.vocabSize;
    const M = this.members.length;
    const width = hidden.shape.at(-1)!;
    if (width !== M * V)
      throw new RangeError(`ensemble logits: expected rows of ${M} x ${V} member logits, found ${width}`);
    const rows = hidden.size / width;
    const out = zeros([...hidden.shape.slice(0, -1), V]);
    const src = Float32Array.from(hidden.data as ArrayLike<number>);
    const dst = out.data as Float32Array;
    for (let r = 0; r < rows; r++) {
      const memberRows = Array.from({ length: M }, (_, m) =>
        src.subarray(r * width + m * V, r * width + (m + 1) * V),
      );
      this.combineRow(memberRows, dst.subarray(r * V, (r + 1) * V));
    }
    return out;
  }

  /**
   * Per-token log-prob, entropy, top-1/top-2 and argmax of the combined distribution (teacher-forced
   * scoring); holds [N, V] combined logits, so use it on answers, not on training batches.
   */
  override scoreTokens(hidden: Tensor, labels: Tensor): LinearCrossEntropyResult {
    const V = this.vocabSize;
    const flat = hidden.rank === 2 ? hidden : reshape(hidden, [-1, this.config.hiddenSize]);
    const z = this.logits(flat).data as Float32Array;
    const N = flat.shape[0]!;
    const logp = new Float32Array(N);
    const entropy = new Float32Array(N);
    const top1 = new Float32Array(N);
    const top2 = new Float32Array(N);
    const correct = new Float32Array(N);
    const argmax = new Int32Array(N);
    const gold = labels.data;
    for (let n = 0; n < N; n++) {
      const row = z.subarray(n * V, (n + 1) * V);
      let max = -Infinity;
      let best = 0;
      let second = -Infinity;
      for (let v = 0; v < V; v++) {
        if (row[v]! > max) {
          second = max;
          max = row[v]!;
          best = v;
        } else if (row[v]! > second) second = row[v]!;
      }
      let sum = 0;
      let weighted = 0;
      for (let v = 0; v < V; v++) {
        if (row[v] === -Infinity) continue;
        const e = Math.exp(row[v]! - max);
        sum += e;
        weighted += e * (row[v]! - max);
      }
      const logSum = Math.log(sum);
      const label = gold[n]!;
      argmax[n] = best;
      logp[n] = label === -100 ? 0 : row[label]! - max - logSum;
      entropy[n] = logSum - weighted / sum;
      top1[n] = -logSum;
      top2[n] = second - max - logSum;
      correct[n] = label !== -100 && label === best ? 1 : 0;
    }
    const wrap = (a: Float32Array) => Tensor.wrap(a, [N]);
    return {
      logp: wrap(logp),
      entropy: wrap(entropy),
      top1: wrap(top1),
      top2: wrap(top2),
      correct: wrap(correct),
      argmax,
    };
  }

  override lmHeadWeight(): Tensor {
    throw new RangeError(
      'a model of several members has no single LM head (adapt or score its members instead)',
    );
  }

  override linearModules(): never[] {
    return [];
  }

  override activationDtype(): 'f32' | 'f64' {
    return 'f32';
  }

  override createKvCache(capacity = 256): KvCache {
    return new MemberCaches(this.members.map((m) => m.createKvCache(capacity)));
  }
}

function mirrorAdvance(caches: KvCaches | null | undefined, T: number): void {
  if (!caches) return;
  if (Array.isArray(caches)) for (const c of caches as readonly KvCache[]) asMemberCaches(c).advance(T);
  else asMemberCaches(caches as KvCache).advance(T);
}

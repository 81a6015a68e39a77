import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createModel, llamaConfigJson, scoreNextTokens } from '../../../src/models/index.ts';
import { fromArray, noGrad, scope } from '../../../src/tensor/index.ts';
import {
  type FirstCalibration,
  firstLoss,
  normalizeTopK,
  topKForwardKl,
} from '../../../src/train/losses/first.ts';
import { createLoss } from '../../../src/train/losses/index.ts';
import { forwardBackwardStep } from '../../../src/train/step.ts';
import { TeacherCache, type TeacherCacheHeader } from '../../../src/train/teacher-cache.ts';

const close = (a: number, b: number, tol: number, what: string) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

const calib = (normalization: FirstCalibration['normalization'], t = 1, ts = 1): FirstCalibration => ({
  normalization,
  temperature: t,
  studentTemperature: ts,
  eps: 1e-6,
});

describe('FIRST: trustworthy maximization (top-k normalisation)', () => {
  const p = [0.5, 0.3, 0.1];
  const logp = p.map(Math.log);
  it('softmax rule: softmax of the top-k probabilities over T, by hand', () => {
    for (const t of [1, 0.25]) {
      const q = normalizeTopK(logp, 'softmax', t, 0);
      const e = p.map((x) => Math.exp(x / t));
      const s = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < q.length; i++) close(q[i]!, e[i]! / s, 1e-12, `T=${t} q[${i}]`);
    }
    // T = 1 on probabilities flattens: the top token keeps well under its 5/9 renormalised share
    assert.ok(normalizeTopK(logp, 'softmax', 1, 0)[0]! < 0.42);
    // a low T sharpens toward the top token
    assert.ok(normalizeTopK(logp, 'softmax', 0.05, 0)[0]! > 0.95);
  });
  it('linear rule: plain renormalisation (+eps)', () => {
    const q = normalizeTopK(logp, 'linear', 1, 0);
    for (const [i, v] of [5 / 9, 3 / 9, 1 / 9].entries()) close(q[i]!, v, 1e-12, `q[${i}]`);
  });
  it('other-token rule: the top-k and the rest as a (k+1)-th bin', () => {
    const q = normalizeTopK(logp, 'other-token', 1, 0);
    for (const [i, v] of [0.5, 0.3, 0.1, 0.1].entries()) close(q[i]!, v, 1e-12, `q[${i}]`);
  });
});

describe('FIRST: forward KL on the top-k and its gradient', () => {
  const teacher = [-0.4, -1.6, -2.5].map((x) => x);
  const student = [-0.9, -1.2, -3.0];
  it('KL by hand (linear rule)', () => {
    const norm = (l: number[]) => {
      const e = l.map(Math.exp);
      const s = e.reduce((a, b) => a + b, 0);
      return e.map((x) => x / s);
    };
    const q = norm(teacher);
    const s = norm(student);
    const hand = q.reduce((acc, qi, i) => acc + qi * Math.log(qi / s[i]!), 0);
    const { kl } = topKForwardKl(normalizeTopK(teacher, 'linear', 1, 0), student, {
      ...calib('linear'),
      eps: 0,
    });
    close(kl, hand, 1e-12, 'kl');
    // the same distributions give 0
    close(
      topKForwardKl(normalizeTopK(student, 'linear', 1, 0), student, { ...calib('linear'), eps: 0 }).kl,
      0,
      1e-12,
      'kl(s,s)',
    );
  });
  for (const c of [calib('softmax'), calib('softmax', 0.3, 0.5), calib('linear'), calib('other-token')]) {
    it(`d KL / d student log-probs match central differences (${c.normalization}, T ${c.temperature}/${c.studentTemperature})`, () => {
      const q = normalizeTopK(teacher, c.normalization, c.temperature, c.eps);
      const { grad } = topKForwardKl(q, student, c);
      const h = 1e-6;
      for (let j = 0; j < student.length; j++) {
        const plus = [...student];
        const minus = [...student];
        plus[j]! += h;
        minus[j]! -= h;
        const numeric = (topKForwardKl(q, plus, c).kl - topKForwardKl(q, minus, c).kl) / (2 * h);
        close(grad[j]!, numeric, 1e-6, `d/dlogp[${j}]`);
      }
    });
  }
});

/** An in-memory cache: example e has rows for positions 1..T-1 with `k` ids each. */
function memoryCache(
  rows: { ids: number[]; logprobs: number[]; position: number; target: number }[][],
  k: number,
) {
  const flat = rows.flat();
  const offsets = [0];
  for (const r of rows) offsets.push(offsets.at(-1)! + r.length);
  const header: TeacherCacheHeader = {
    version: 1,
    k,
    teacher_model: 'mem',
    teacher_model_hash: '',
    adapter: null,
    adapter_hash: null,
    data_file: 'mem.jsonl',
    data_hash: '',
    data_options: {},
    tokenizer_fingerprint: '',
    vocab_size: 12,
    examples: rows.length,
    tokens: flat.length,
  };
  return new TeacherCache(
    'mem.safetensors',
    header,
    Int32Array.from(flat.flatMap((r) => r.ids)),
    Float32Array.from(flat.flatMap((r) => r.logprobs)),
    Int32Array.from(flat.map((r) => r.position)),
    Int32Array.from(flat.map((r) => r.target)),
    Int32Array.from(offsets),
  );
}

describe('FIRST: the loss through the model (extra target ids on the fused head)', () => {
  const config = {
    ...llamaConfigJson({
      vocabSize: 12,
      hiddenSize: 8,
      intermediateSize: 16,
      numLayers: 1,
      numHeads: 2,
      numKvHeads: 1,
    }),
    initializer_range: 0.5,
  };
  const ids = [
    [1, 5, 7, 9, 2],
    [4, 3, 8, 1, 6],
  ];
  const labels = ids.map((row) => row.map((v, i) => (i < 2 ? -100 : v)));
  const k = 3;
  // the teacher's "top-3" per supervised position: arbitrary distinct ids, log-probs descending
  const cache = memoryCache(
    ids.map((row, e) =>
      [2, 3, 4].map((t) => ({
        ids: [(row[t]! + e) % 12, (row[t]! + 5) % 12, (row[t]! + 7) % 12],
        logprobs: [-0.3 - 0.1 * t, -1.5, -2.2],
        position: t,
        target: row[t]!,
      })),
    ),
    k,
  );
  const batch = () => ({
    inputIds: fromArray(ids.flat(), [2, 5], { dtype: 'i32', track: false }),
    labels: fromArray(labels.flat(), [2, 5], { dtype: 'i32', track: false }),
    exampleOf: Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]),
    positionOf: Int32Array.from([0, 1, 2, 3, 4, 0, 1, 2, 3, 4]),
  });

  it("the extra ids' log-probs equal the full log-softmax at those ids", () => {
    const model = createModel(config, { seed: 3 });
    const loss = firstLoss({ ...calib('softmax'), k, ceWeight: 0, klWeight: 1, cache });
    noGrad(() =>
      scope(() => {
        const b = batch();
        const scored = scoreNextTokens(model, b.inputIds, b.labels, {
          extraIds: (rows, targets) =>
            loss.extraTargets!({
              count: rows.length,
              targets,
              exampleOf: Int32Array.from(rows, (r) => b.exampleOf[r + 1]!),
              positionOf: Int32Array.from(rows, (r) => b.positionOf[r + 1]!),
            }),
        });
        const hidden = model.forwardHidden(b.inputIds);
        const logits = model.logits(hidden).floatData();
        const lp = scored.extra!.logp.floatData();
        scored.rows.forEach((row, i) => {
          const z = Array.from(logits.subarray(row * 12, row * 12 + 12));
          const m = Math.max(...z);
          const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
          for (let j = 0; j < k; j++) {
            const id = scored.extra!.ids[i * k + j]!;
            close(lp[i * k + j]!, z[id]! - lse, 1e-5, `token ${i} id ${id}`);
          }
        });
      }),
    );
  });

  for (const ceWeight of [0, 0.5])
    it(`parameter gradients match central differences of the step loss (f64, ce_weight ${ceWeight})`, () => {
      const model = createModel(config, { seed: 3, dtype: 'f64' });
      model.train();
      const loss = firstLoss({ ...calib('softmax', 0.5, 0.7), k, ceWeight, klWeight: 1, cache });
      const stepLoss = () => {
        for (const p of model.parameters()) p.grad = null;
        return forwardBackwardStep(model, loss, [batch()]).loss;
      };
      stepLoss();
      const named = model.namedParameters();
      const picks = [
        'model.embed_tokens.weight',
        'model.layers.0.self_attn.q_proj.weight',
        'model.norm.weight',
      ];
      const grads = new Map(
        named
          .filter(([n]) => picks.includes(n))
          .map(([n, p]) => [n, Float64Array.from(p.grad!.data as Float64Array)]),
      );
      assert.equal(grads.size, picks.length);
      const h = 1e-6;
      for (const [name, p] of named.filter(([n]) => picks.includes(n))) {
        const data = p.data as Float64Array;
        for (const i of [0, 3, Math.floor(data.length / 2), data.length - 1]) {
          const orig = data[i]!;
          data[i] = orig + h;
          const plus = stepLoss();
          data[i] = orig - h;
          const minus = stepLoss();
          data[i] = orig;
          close(grads.get(name)![i]!, (plus - minus) / (2 * h), 1e-5, `${name}[${i}]`);
        }
      }
    });

  it('refuses a batch the cache has no row for, and one whose gold token differs', () => {
    const model = createModel(config, { seed: 3 });
    const loss = firstLoss({ ...calib('softmax'), k, ceWeight: 0, klWeight: 1, cache });
    const b = batch();
    const shifted = { ...b, positionOf: Int32Array.from(b.positionOf, (p) => p + 7) };
    assert.throws(
      () => forwardBackwardStep(model, loss, [shifted]),
      /has no row for example 0 position 9.*other data/,
    );
    const other = {
      ...b,
      inputIds: fromArray(
        ids.flat().map((v, i) => (i === 3 ? 11 : v)),
        [2, 5],
        { dtype: 'i32' },
      ),
    };
    const otherLabels = labels.flat().map((v, i) => (i === 3 ? 11 : v));
    other.labels = fromArray(otherLabels, [2, 5], { dtype: 'i32' });
    assert.throws(() => forwardBackwardStep(model, loss, [other]), /gold token 11 but the cache says 9/);
  });

  it('is registered with its options and refuses k above the cache', () => {
    assert.throws(() => createLoss('first', {}), /cache/);
    assert.throws(
      () => firstLoss({ ...calib('linear'), k: 4, ceWeight: 0, klWeight: 1, cache }),
      /more than the 3 ids/,
    );
  });
});

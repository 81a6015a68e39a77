/**
 * Intrinsic-dimension tuning (tuner intrinsic_dim): the fwht kernel against a dense Hadamard
 * matrix; Fastfood against its dense float64 form and both projections' transposes as adjoints;
 * the layer's float64 forward (W_0 + reshape(P z)) and finite-difference gradients of z; the model
 * at z = 0 is the base; save -> load, merge and merge-and-unload give the adapter's outputs;
 * refusals; a training run from YAML-like config that changes only z.
 */
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { kernelsFor } from '../../../src/backend/index.ts';
import { jsKernels } from '../../../src/backend/js/index.ts';
import { ConfigError } from '../../../src/errors.ts';
import { openSafetensors } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import { Conv1D, Linear, Parameter } from '../../../src/nn/index.ts';
import {
  applyTuner,
  DenseProjection,
  FastfoodProjection,
  type IntrinsicDimAdapter,
  IntrinsicLinear,
  loadAdapter,
  makeProjection,
} from '../../../src/peft/index.ts';
import { noGrad, Rng, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { train } from '../../../src/train/trainer.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-intrinsic-');
after(() => rmSync(root, { recursive: true, force: true }));
const IDS = tokens(9);

/** Sylvester Hadamard H_n[i][j] = (-1)^popcount(i & j). */
function hadamard(n: number): number[][] {
  const pop = (x: number) => {
    let c = 0;
    for (let v = x; v; v &= v - 1) c++;
    return c;
  };
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => (pop(i & j) % 2 ? -1 : 1)));
}

function randVec(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  return Float64Array.from({ length: n }, () => rng.normal());
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

describe('intrinsic_dim', () => {
  it('fwht equals multiplying by the dense Hadamard matrix, per row (js f64 and the active backend)', () => {
    for (const n of [1, 2, 8, 64]) {
      const H = hadamard(n);
      const rows = 3;
      const x = randVec(rows * n, n);
      const want = new Float64Array(rows * n);
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < n; i++) want[r * n + i] = dot(H[i]!, x.subarray(r * n, (r + 1) * n));
      const got = Float64Array.from(x);
      jsKernels.fwht(got, rows, n);
      assert.ok(maxAbsDiff(got, want) < 1e-12, `js n=${n}`);
      const got32 = Float32Array.from(x);
      kernelsFor(false).fwht(got32, rows, n);
      assert.ok(maxAbsDiff(got32, want) < 1e-4 * Math.max(1, Math.sqrt(n)), `active backend n=${n}`);
    }
    assert.throws(() => jsKernels.fwht(new Float64Array(6), 1, 6), RangeError);
  });

  it('Fastfood is scale * [H G Pi H B]_{:D, :d} (float64 reference); columns have unit norm over L', () => {
    for (const [d, D] of [
      [5, 12],
      [20, 7],
      [16, 16],
    ] as const) {
      const p = new FastfoodProjection(d, D, new Rng(11), true);
      const L = p.length;
      assert.equal(L, 2 ** Math.ceil(Math.log2(Math.max(d, D))));
      const H = hadamard(L);
      // dense M = H G Pi H B: M[i][j] = sum_k H[i][k] G[k] H[perm[k]][j] B[j]
      const M = Array.from({ length: L }, (_, i) =>
        Array.from({ length: L }, (_, j) => {
          let s = 0;
          for (let k = 0; k < L; k++) s += H[i]![k]! * p.gauss[k]! * H[p.perm[k]!]![j]! * p.signs[j]!;
          return s;
        }),
      );
      const z = randVec(d, 3);
      const got = new Float64Array(D);
      p.forward(z, got);
      const want = Array.from({ length: D }, (_, i) => p.scale * dot(M[i]!.slice(0, d), z));
      assert.ok(maxAbsDiff(got, want) < 1e-10, `forward d=${d} D=${D}`);
      // every column of scale * M over all L rows has norm sqrt(L / D) (unit after the sqrt(D/L) factor)
      for (let j = 0; j < d; j++) {
        const n2 = M.reduce((s, row) => s + (p.scale * row[j]!) ** 2, 0);
        assert.ok(Math.abs(n2 - L / D) < 1e-9, `column ${j}`);
      }
      // the permutation is one
      assert.deepEqual(
        [...p.perm].sort((a, b) => a - b),
        Array.from({ length: L }, (_, i) => i),
      );
    }
  });

  it('transpose is the adjoint: <P z, y> = <z, P^T y> (fastfood and dense, f64)', () => {
    for (const kind of ['fastfood', 'dense'] as const) {
      for (const [d, D] of [
        [7, 30],
        [40, 9],
      ] as const) {
        const p = makeProjection(kind, d, D, 4, 'model.layers.0.mlp.up_proj', true);
        const z = randVec(d, 1);
        const y = randVec(D, 2);
        const pz = new Float64Array(D);
        const pty = new Float64Array(d);
        p.forward(z, pz);
        p.transpose(y, pty);
        const lhs = dot(pz, y);
        assert.ok(Math.abs(lhs - dot(z, pty)) < 1e-10 * Math.max(1, Math.abs(lhs)), `${kind} ${d}->${D}`);
      }
    }
    const dense = new DenseProjection(6, 10, new Rng(3), true);
    for (let c = 0; c < 6; c++) {
      let n2 = 0;
      for (let r = 0; r < 10; r++) n2 += dense.matrix[r * 6 + c]! ** 2;
      assert.ok(Math.abs(n2 - 1) < 1e-12, 'dense columns have unit length');
    }
    // seeded by (seed, module name): same inputs give the same P, another name another
    const a = makeProjection('fastfood', 8, 20, 4, 'x.q_proj', false) as FastfoodProjection;
    const b = makeProjection('fastfood', 8, 20, 4, 'x.q_proj', false) as FastfoodProjection;
    const c = makeProjection('fastfood', 8, 20, 4, 'x.k_proj', false) as FastfoodProjection;
    assert.deepEqual([...a.gauss], [...b.gauss]);
    assert.notDeepEqual([...a.gauss], [...c.gauss]);
  });

  for (const kind of ['fastfood', 'dense'] as const) {
    it(`layer (${kind}): forward is x (W_0 + reshape(P z))^T + b in float64; gradients of x and z match finite differences`, () => {
      for (const base of [
        new Linear(6, 5, { seed: 2, dtype: 'f64' }),
        new Conv1D(6, 5, { seed: 2, dtype: 'f64' }),
      ]) {
        const z = Parameter.zeros([9], 'f64');
        const rng = new Rng(8);
        z.fillWith(() => 0.3 * rng.normal());
        const p = makeProjection(kind, 9, 30, 1, 'l', true);
        const layer = new IntrinsicLinear(base, z, p);
        const delta = new Float64Array(30);
        p.forward(z.data as Float64Array, delta);
        const W = base.weight.toArray();
        const bias = base.bias!.toArray();
        const x = input64([3, 6], 5);
        const xs = x.toArray();
        const conv = base instanceof Conv1D;
        const want: number[] = [];
        for (let t = 0; t < 3; t++)
          for (let o = 0; o < 5; o++) {
            let s = bias[o]!;
            for (let i = 0; i < 6; i++) {
              const k = conv ? i * 5 + o : o * 6 + i; // the weight's stored layout
              s += (W[k]! + delta[k]!) * xs[t * 6 + i]!;
            }
            want.push(s);
          }
        assert.ok(
          maxAbsDiff(
            noGrad(() => scope(() => layer.forward(x).toArray())),
            want,
          ) < 1e-12,
        );
        gradCheck(`intrinsic ${kind} ${conv ? 'conv1d' : 'linear'}`, (input) => layer.forward(input!), [
          x,
          z,
        ]);
        // merge folds W_0 + P z in; unmerge restores W_0 exactly
        layer.merge();
        assert.ok(
          maxAbsDiff(
            noGrad(() => scope(() => layer.forward(x).toArray())),
            want,
          ) < 1e-12,
        );
        layer.unmerge();
        assert.deepEqual(base.weight.toArray(), W);
      }
    });
  }

  it('on a model: z = 0 is the base; save -> load, merge and merge-and-unload give the tuned outputs', () => {
    const model = tinyLlama();
    const base = logitsOf(model, IDS);
    const adapter = applyTuner(model, 'intrinsic_dim', { d: 50, seed: 3 }) as IntrinsicDimAdapter;
    assert.equal(adapter.layers.length, 14, 'all-linear: 7 per layer, not the LM head');
    assert.deepEqual(
      adapter.trainableParameters().map((p) => p.size),
      [50],
    );
    assert.ok(maxAbsDiff(logitsOf(model, IDS), base) < 1e-6, 'z = 0: the base model');
    const rng = new Rng(5);
    adapter.z.fillWith(() => 0.5 * rng.normal());
    const tuned = logitsOf(model, IDS);
    assert.ok(maxAbsDiff(tuned, base) > 1e-3);
    assert.deepEqual(logitsOf(model, IDS), tuned, 'the cached delta gives the same outputs');
    adapter.merge();
    assert.ok(maxAbsDiff(logitsOf(model, IDS), tuned) < 1e-4, 'merged = forward');
    adapter.unmerge();
    const dir = join(root, 'id');
    adapter.save(dir);
    const json = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'INTRINSIC_DIM');
    assert.equal(json.intrinsic_dim, 50);
    assert.equal(json.projection, 'fastfood');
    assert.equal(json.projection_seed, 3);
    assert.equal(json.target_modules.length, 14);
    assert.equal(json.target_modules[0], 'model.layers.0.self_attn.q_proj');
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(reader.names(), ['intrinsic_dim.z']);
    assert.deepEqual(reader.info('intrinsic_dim.z').shape, [50]);
    reader.close();
    const fresh = tinyLlama();
    const loaded = loadAdapter(fresh, dir);
    assert.deepEqual(logitsOf(fresh, IDS), tuned, 'the projections regenerate exactly from the config');
    const plain = loaded.mergeAndUnload();
    assert.ok(!plain.namedModules().some(([, m]) => m instanceof IntrinsicLinear), 'a plain model');
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), tuned) < 1e-4, 'merged weights give the adapter outputs');
  });

  it('refusals name the option; the model is unchanged', () => {
    const model = tinyLlama();
    const w0 = model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray();
    assert.throws(() => applyTuner(model, 'intrinsic_dim', { d: 0 }), /d must be a positive integer/);
    assert.throws(
      () => applyTuner(model, 'intrinsic_dim', { d: 8, projection: 'sparse' }),
      /projection must be one of/,
    );
    assert.throws(
      () => applyTuner(model, 'intrinsic_dim', { d: 100000, projection: 'dense' }),
      (e: Error) => e instanceof ConfigError && /dense.*above the limit.*fastfood/.test(e.message),
    );
    assert.throws(() => applyTuner(model, 'intrinsic_dim', { targetModules: ['nothing_here'] }), ConfigError);
    assert.deepEqual(model.getParameter('model.layers.0.self_attn.q_proj.weight').toArray(), w0);
    assert.ok(!model.namedModules().some(([, m]) => m instanceof IntrinsicLinear));
  });

  it('trains from a config (only z changes), and the saved adapter loads onto the base with the trained outputs', () => {
    const modelDir = writeTinyModel(join(root, 'model'));
    const data = writeJsonl(join(root, 'train.jsonl'), FACTS);
    const config = validateTrainConfig(
      {
        model: modelDir,
        data: { train: data, max_length: 32 },
        method: { name: 'intrinsic_dim', d: 64 },
        train: { steps: 4, batch_size: 2, lr: 5e-2, seed: 1 },
        output_dir: join(root, 'run'),
      },
      'intrinsic_dim',
    );
    const result = train(config);
    const trained = logitsOf(result.model, IDS);
    const fresh = loadModel(modelDir).model;
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) > 1e-4, 'training changed the outputs');
    loadAdapter(fresh, result.adapterDir);
    assert.ok(maxAbsDiff(logitsOf(fresh, IDS), trained) < 1e-5);
  });
});

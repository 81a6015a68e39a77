import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { FormatError } from '../../../src/errors.ts';
import { openSafetensors, writeSafetensors } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import { Parameter } from '../../../src/nn/index.ts';
import {
  applyTuner,
  largestPositions,
  loadAdapter,
  type OptimizerAccess,
  PEFT_KEY_PREFIX,
  randomPositions,
  SparseDeltaLinear,
  type SparseFtAdapter,
  sparseBudget,
} from '../../../src/peft/index.ts';
import {
  backward,
  crossEntropy,
  fromArray,
  mul,
  Rng,
  reshape,
  scope,
  sparseDeltaLinear,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-sparse-ft-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function randomF64(n: number, rng: Rng): Float64Array {
  return Float64Array.from({ length: n }, () => rng.normal());
}

/** A recording stand-in for the optimizer. */
function recordingOptimizer(): OptimizerAccess & { calls: [Tensor, number[]][] } {
  const calls: [Tensor, number[]][] = [];
  return { calls, resetEntries: (p, positions) => calls.push([p, Array.from(positions)]) };
}

describe('sparseDeltaLinear op', () => {
  for (const [transB, wTrains] of [
    [true, false],
    [false, false],
    [true, true],
    [false, true],
  ] as const) {
    it(`forward is x (W + scatter(v))${transB ? '^T' : ''}; gradients match finite differences (f64, W ${wTrains ? 'trained: dense dW' : 'frozen: sampled rowPairDots'})`, () => {
      const rng = new Rng(3);
      const [N, inF, outF] = [3, 4, 5];
      const wShape = transB ? [outF, inF] : [inF, outF];
      const indices = Int32Array.from([0, 3, 7, 12, 19]);
      const x = new Parameter(randomF64(N * inF, rng), [N, inF]);
      const w = new Parameter(randomF64(20, rng), wShape);
      const v = new Parameter(randomF64(5, rng), [5]);
      if (!wTrains) w.freeze();
      const r = fromArray(randomF64(N * outF, rng), [N, outF], { dtype: 'f64' });
      const loss = () => scope(() => sum(mul(sparseDeltaLinear(x, w, v, indices, { transB }), r)).item());
      // forward against a dense reference
      const dense = Float64Array.from(w.data as Float64Array);
      indices.forEach((p, j) => {
        dense[p] = dense[p]! + (v.data as Float64Array)[j]!;
      });
      const y = scope(() => Array.from(sparseDeltaLinear(x, w, v, indices, { transB }).data as Float64Array));
      for (let n = 0; n < N; n++)
        for (let o = 0; o < outF; o++) {
          let s = 0;
          for (let i = 0; i < inF; i++)
            s += (x.data as Float64Array)[n * inF + i]! * dense[transB ? o * inF + i : i * outF + o]!;
          assert.ok(Math.abs(y[n * outF + o]! - s) < 1e-12);
        }
      scope(() => backward(sum(mul(sparseDeltaLinear(x, w, v, indices, { transB }), r))));
      if (!wTrains) assert.equal(w.grad, null, 'a frozen W gets no gradient');
      for (const p of wTrains ? [x, w, v] : [x, v]) {
        const g = Array.from(p.grad!.data as Float64Array);
        const d = p.data as Float64Array;
        for (let i = 0; i < d.length; i++) {
          const keep = d[i]!;
          d[i] = keep + 1e-6;
          const up = loss();
          d[i] = keep - 1e-6;
          const down = loss();
          d[i] = keep;
          assert.ok(Math.abs((up - down) / 2e-6 - g[i]!) < 1e-7, `grad ${p.shape} [${i}]`);
        }
      }
      // the values' gradient is the dense weight gradient gathered at the indices
      if (wTrains)
        indices.forEach((p, j) => {
          assert.ok(
            Math.abs((v.grad!.data as Float64Array)[j]! - (w.grad!.data as Float64Array)[p]!) < 1e-12,
          );
        });
    });
  }

  it('W is bit-identical after forward and backward (the delta is added in place and restored), and after a failing GEMM', () => {
    const rng = new Rng(5);
    const [N, inF, outF] = [4, 6, 5];
    const w = new Parameter(randomF64(outF * inF, rng), [outF, inF]);
    w.freeze();
    const v = new Parameter(randomF64(4, rng), [4]);
    const indices = Int32Array.from([1, 8, 13, 29]);
    const before = Float64Array.from(w.data as Float64Array);
    const x = new Parameter(randomF64(N * inF, rng), [N, inF]);
    scope(() => backward(sum(sparseDeltaLinear(x, w, v, indices))));
    assert.deepEqual(w.data, before);
    assert.ok(v.grad !== null && x.grad !== null);
    // a 2-D input of the wrong width passes the op's checks and fails inside the GEMM
    const bad = fromArray(randomF64(N * (inF + 1), rng), [N, inF + 1], { dtype: 'f64' });
    assert.throws(() => scope(() => sparseDeltaLinear(bad, w, v, indices)), RangeError);
    assert.deepEqual(w.data, before);
  });
});

describe('sparse_ft selection helpers', () => {
  it('largestPositions: n largest, ties to the lower position, excluded skipped; randomPositions distinct', () => {
    assert.deepEqual(Array.from(largestPositions([1, 5, 3, 5, 0, 4], 3)), [1, 3, 5]);
    assert.deepEqual(Array.from(largestPositions([2, 2, 2, 2], 2)), [0, 1]);
    assert.deepEqual(
      Array.from(largestPositions([9, 5, 3, 8, 0], 2, Uint8Array.from([1, 0, 0, 1, 0]))),
      [1, 2],
    );
    const rng = new Rng(1);
    const scores = Float64Array.from({ length: 1000 }, () => rng.uniform());
    const top = largestPositions(scores, 50);
    const sorted = [...scores].sort((a, b) => b - a);
    assert.deepEqual(
      [...top].map((i) => scores[i]!).sort((a, b) => b - a),
      sorted.slice(0, 50),
    );
    for (const [n, k] of [
      [100, 7],
      [10, 9],
    ] as const) {
      const p = randomPositions(n, k, new Rng(2));
      assert.equal(new Set(p).size, k);
      assert.ok(p.every((i) => i >= 0 && i < n));
    }
  });

  it('budget: density of all parameters split by target size, or of each target', () => {
    assert.deepEqual(sparseBudget([100, 300], 1000, 0.1, 'model'), [25, 75]);
    assert.deepEqual(sparseBudget([100, 300], 1000, 0.1, 'target'), [10, 30]);
  });
});

describe('sparse_ft tuner', () => {
  it('trains only the values: W gets no gradient and the model starts equal to the base', () => {
    const model = tinyLlama();
    const ids = tokens(8, 4);
    const before = logitsOf(model, ids);
    const adapter = applyTuner(model, 'sparse_ft', { density: 0.05, seed: 1 }) as SparseFtAdapter;
    const layers = adapter.sparseLayers;
    assert.equal(layers.length, 14); // 7 linears x 2 layers
    const total = model.numParameters() - layers.reduce((s, [, l]) => s + l.sft_delta.values.size, 0);
    const k = layers.reduce((s, [, l]) => s + l.sft_delta.indices.length, 0);
    assert.ok(Math.abs(k - 0.05 * total) <= layers.length, `k ${k} vs ${0.05 * total}`);
    assert.deepEqual(
      adapter.namedTrainableParameters().map(([n]) => n),
      layers.map(([n]) => `${n}.sft_delta.values`),
    );
    assert.equal(maxAbsDiff(logitsOf(model, ids), before), 0);
    model.train();
    scope(() => {
      const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, 7], { dtype: 'i32' });
      const labels = fromArray(Int32Array.from(ids.slice(1)), [7], { dtype: 'i32' });
      backward(crossEntropy(model.logits(reshape(model.forwardHidden(x), [7, 32])), labels));
    });
    for (const [n, p] of model.namedParameters()) {
      if (n.endsWith('.sft_delta.values')) assert.ok(p.grad, n);
      else assert.equal(p.grad, null, `${n} has no gradient buffer`);
    }
  });

  it('dense W gradients only in accumulation windows that end in a reselection', () => {
    const model = tinyLlama();
    const adapter = applyTuner(model, 'sparse_ft', {
      reselectionSteps: 10,
      accumulationSteps: 3,
    }) as SparseFtAdapter;
    const w = adapter.sparseLayers[0]![1].weight;
    const dense = (step: number, total: number) => {
      adapter.beginStep(step, total);
      return w.requiresGrad;
    };
    assert.deepEqual(
      [1, 2, 3, 4, 10, 11, 13, 14].map((s) => dense(s, 100)),
      [true, true, true, false, false, true, true, false],
    );
    assert.equal(dense(21, 22), false, 'no window whose reselection would come after the last step');
    assert.deepEqual(
      [2, 3, 13, 22].map((s) => adapter.isReselectionStep(s, 100)),
      [false, true, true, false],
    );
  });

  it('drop smallest |value|, regrow largest |accumulated gradient| among the rest; first replaces all', () => {
    const model = tinyLlama();
    const adapter = applyTuner(model, 'sparse_ft', {
      density: 0.1,
      densityOf: 'target',
      targetModules: ['q_proj'],
      reselectionSteps: 4,
      accumulationSteps: 2,
      dropRate: 0.5,
    }) as SparseFtAdapter;
    const [, layer] = adapter.sparseLayers[0]!;
    const delta = layer.sft_delta;
    const k = delta.indices.length; // 102 of 1024
    const numel = layer.weight.size;
    const rng = new Rng(9);
    const feedGradient = (g: Float32Array) => {
      layer.weight.grad = fromArray(g, [...layer.weight.shape], { track: false });
      adapter.afterBackward();
      assert.equal(layer.weight.grad, null, 'the dense gradient is released after accumulation');
    };
    // window 1 (steps 1-2): accumulate, then the first reselection replaces all by |sum|
    const g1 = Float32Array.from({ length: numel }, () => rng.normal());
    const g2 = Float32Array.from({ length: numel }, () => rng.normal());
    adapter.beginStep(1, 100);
    feedGradient(g1);
    adapter.beginStep(2, 100);
    feedGradient(g2);
    const opt = recordingOptimizer();
    adapter.afterStep(2, 100, opt);
    const expected = largestPositions(
      Float64Array.from(g1, (a, i) => Math.abs(a + g2[i]!)),
      k,
    );
    assert.deepEqual(
      [...delta.indices].sort((a, b) => a - b),
      Array.from(expected),
    );
    assert.equal(opt.calls.length, 2, 'one reset per target (q_proj of 2 layers)');
    assert.equal(opt.calls[0]![0], delta.values);
    assert.equal(opt.calls[0]![1].length, k);
    // window 2 (steps 5-6): values trained meanwhile; rate 0.5 * (1 - 6/100) -> floor(0.47 k) dropped
    const v = delta.values.data as Float32Array;
    for (let j = 0; j < k; j++) v[j] = rng.normal();
    const before = Int32Array.from(delta.indices);
    const valuesBefore = Float32Array.from(v);
    const g3 = Float32Array.from({ length: numel }, () => rng.normal());
    adapter.beginStep(5, 100);
    feedGradient(g3);
    adapter.beginStep(6, 100);
    feedGradient(new Float32Array(numel));
    const opt2 = recordingOptimizer();
    adapter.afterStep(6, 100, opt2);
    const nDrop = Math.floor(0.5 * (1 - 6 / 100) * k);
    const dropped = Array.from(
      largestPositions(
        Float64Array.from(valuesBefore, (x) => -Math.abs(x)),
        nDrop,
      ),
    );
    assert.deepEqual(opt2.calls[0]![1], dropped);
    const kept = new Uint8Array(numel);
    for (let j = 0; j < k; j++) if (!dropped.includes(j)) kept[before[j]!] = 1;
    const regrown = Array.from(largestPositions(Float64Array.from(g3, Math.abs), nDrop, kept));
    assert.deepEqual(
      dropped.map((slot) => delta.indices[slot]!).sort((a, b) => a - b),
      regrown,
    );
    for (let j = 0; j < k; j++) {
      if (dropped.includes(j)) assert.equal(v[j], 0, 'a regrown value starts at 0');
      else {
        assert.equal(v[j], valuesBefore[j], 'kept values stay');
        assert.equal(delta.indices[j], before[j]);
      }
    }
  });

  it('sm3 regrowth: row/column accumulators of the value gradients, candidates by min(row, col)', () => {
    const model = tinyLlama();
    const adapter = applyTuner(model, 'sparse_ft', {
      density: 0.01,
      densityOf: 'target',
      targetModules: ['q_proj'],
      reselectionSteps: 4,
      accumulationSteps: 1,
      regrow: 'sm3',
      initialReselection: false,
      dropRate: 1,
    }) as SparseFtAdapter;
    const [, layer] = adapter.sparseLayers[0]!;
    const delta = layer.sft_delta;
    delta.indices = Int32Array.from([0, 33, 66, 99, 132, 165, 198, 231, 264, 297]); // (r, c) = (j, j)
    const k = delta.indices.length;
    assert.equal(k, 10);
    adapter.beginStep(1, 100);
    assert.equal(layer.weight.requiresGrad, false, 'sm3 mode never computes the dense gradient');
    const g = Float32Array.from({ length: k }, (_, j) => j + 1);
    delta.values.grad = fromArray(g, [k], { track: false });
    adapter.afterBackward();
    const state = adapter.trainingState();
    const row = state.get('model.layers.0.self_attn.q_proj.sm3_row')!.data as Float32Array;
    const col = state.get('model.layers.0.self_attn.q_proj.sm3_col')!.data as Float32Array;
    delta.indices.forEach((p, j) => {
      assert.equal(row[Math.floor(p / 32)], (j + 1) ** 2);
      assert.equal(col[p % 32], (j + 1) ** 2);
    });
    // every entry is dropped (rate 1 - 1/100 floors to 9 of 10): the regrown ones score highest min(row, col)
    const opt = recordingOptimizer();
    delta.values.grad = null;
    adapter.afterStep(1, 100, opt);
    const scores = new Float64Array(1024);
    for (let r = 0; r < 32; r++) for (let c = 0; c < 32; c++) scores[r * 32 + c] = Math.min(row[r]!, col[c]!);
    const slots = opt.calls[0]![1];
    assert.equal(slots.length, 9);
    const kept = new Uint8Array(1024);
    for (let j = 0; j < k; j++)
      if (!slots.includes(j)) kept[[0, 33, 66, 99, 132, 165, 198, 231, 264, 297][j]!] = 1;
    assert.deepEqual(
      slots.map((s) => delta.indices[s]!).sort((a, b) => a - b),
      Array.from(largestPositions(scores, 9, kept)),
    );
  });
});

describe('sparse_ft training', () => {
  const cfg = (dir: string, method: Record<string, unknown>, steps = 9) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 'sparse_ft', density: 0.05, reselection_steps: 4, accumulation_steps: 2, ...method },
        train: { steps, batch_size: 2, lr: 2e-2, seed: 2, save_every: 3 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('base weights stay bit-identical; the adapter is indices + values; it reloads and merges densely', () => {
    const result = train(cfg('run', {}));
    const base = loadModel(join(root, 'model')).model;
    const baseParams = new Map(base.namedParameters());
    for (const [n, p] of result.model.namedParameters()) {
      if (n.endsWith('.sft_delta.values')) continue;
      assert.ok(
        Buffer.from((p.data as Float32Array).buffer).equals(
          Buffer.from((baseParams.get(n)!.data as Float32Array).buffer),
        ),
        `${n} is bit-identical`,
      );
    }
    const reader = openSafetensors(join(result.adapterDir, 'adapter_model.safetensors'));
    const names = reader.names();
    assert.ok(names.every((n) => /^base_model\.model\..*\.sft_delta\.(indices|values)$/.test(n)));
    const first = (result.adapter as SparseFtAdapter).sparseLayers[0]!;
    assert.equal(reader.info(`${PEFT_KEY_PREFIX}${first[0]}.sft_delta.indices`).dtype, 'I32');
    reader.close();
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'SPARSE_FT');
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logitsOf(result.model, ids);
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-3, 'training changed the model');
    const merged = loadAdapter(base, result.adapterDir).mergeAndUnload() as typeof base;
    assert.ok(merged.namedModules().every(([, m]) => !(m instanceof SparseDeltaLinear)));
    assert.ok(maxAbsDiff(logitsOf(merged, ids), trained) < 1e-4);
  });

  it('a corrupt adapter (duplicate index, wrong k) is refused naming file and tensor; nothing changes', () => {
    const result = train(cfg('run-bad', {}, 3));
    const dir = result.adapterDir;
    const reader = openSafetensors(join(dir, 'adapter_model.safetensors'));
    const tensors = new Map(reader.names().map((n) => [n, reader.read(n)]));
    reader.close();
    const [first] = (result.adapter as SparseFtAdapter).sparseLayers[0]!;
    const key = `${PEFT_KEY_PREFIX}${first}.sft_delta.indices`;
    const idx = tensors.get(key)!.data as Int32Array;
    idx[1] = idx[0]!;
    const bad = join(root, 'bad-adapter');
    mkdirSync(bad, { recursive: true });
    copyFileSync(join(dir, 'adapter_config.json'), join(bad, 'adapter_config.json'));
    writeSafetensors(join(bad, 'adapter_model.safetensors'), tensors);
    const base = loadModel(join(root, 'model')).model;
    const ids = [256, 66, 111];
    const before = logitsOf(base, ids);
    assert.throws(
      () => loadAdapter(base, bad),
      (e: Error) =>
        e instanceof FormatError &&
        e.message.includes('adapter_model.safetensors') &&
        e.message.includes(key) &&
        /appears twice/.test(e.message),
    );
    assert.equal(maxAbsDiff(logitsOf(base, ids), before), 0);
    assert.ok(
      base.namedModules().every(([, m]) => !(m instanceof SparseDeltaLinear)),
      'nothing applied',
    );
  });

  for (const regrow of ['gradient', 'sm3'] as const) {
    it(`resume mid-window equals the uninterrupted run (regrow ${regrow}: indices and accumulators restored)`, () => {
      const full = train(cfg(`full-${regrow}`, { regrow }));
      const killed = cfg(`killed-${regrow}`, { regrow });
      // step 5 opens the second window (5-6): its accumulated gradient is in the checkpoint
      assert.throws(() => train(killed, { haltAfterStep: 5 }), TrainingHalted);
      const resumed = train(killed, { resume: true });
      const a = full.adapter.state();
      const b = resumed.adapter.state();
      for (const [n, t] of a) assert.deepEqual(b.get(n)!.data, t.data, n);
      const initial = applyTuner(loadModel(join(root, 'model')).model, 'sparse_ft', {
        density: 0.05,
        seed: 2,
      }) as SparseFtAdapter;
      const moved = initial.sparseLayers.some(
        ([n, l]) =>
          (a.get(`${n}.sft_delta.indices`)!.data as Int32Array).join() !== l.sft_delta.indices.join(),
      );
      assert.ok(moved, 'the masks evolved during the run');
    });
  }
});

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  applyTuner,
  loadAdapter,
  nuclearNormGrad,
  type SaraAdapter,
  SparseDeltaLinear,
  saraPositions,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, Rng, reshape, scope, svd } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-sara-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function nuclear(d: Float64Array, rows: number, cols: number): number {
  return svd({ rows, cols, data: d }, { vectors: 'none' }).s.reduce((a, b) => a + b, 0);
}

describe('sara tuner', () => {
  it('selects exactly the round(ratio * numel) smallest |w| (hand case)', () => {
    const w = [0.5, -0.01, 0.2, 0.001, -0.3, 0.02, -0.002, 0.9, 0.1, -0.05];
    assert.deepEqual([...saraPositions(w, 0.3)], [1, 3, 6]);
    assert.deepEqual([...saraPositions(w, 0.01)], [3]);
  });

  it('nuclear norm: value is the sum of singular values; gradient matches central finite differences', () => {
    const rng = new Rng(5);
    const rows = 5;
    const cols = 7;
    const d = Float64Array.from({ length: rows * cols }, () => rng.normal());
    const { value, grad } = nuclearNormGrad(d, rows, cols);
    assert.ok(Math.abs(value - nuclear(d, rows, cols)) < 1e-10);
    const h = 1e-6;
    for (let i = 0; i < d.length; i++) {
      const p = Float64Array.from(d);
      const m = Float64Array.from(d);
      p[i]! += h;
      m[i]! -= h;
      const fd = (nuclear(p, rows, cols) - nuclear(m, rows, cols)) / (2 * h);
      assert.ok(Math.abs(fd - grad![i]!) < 1e-5, `entry ${i}: fd ${fd} vs ${grad![i]}`);
    }
    assert.equal(nuclearNormGrad(new Float64Array(6), 2, 3).grad, null);
  });

  it('only the smallest-|w| entries train; all else stays bit-identical; the auxiliary term is lambda * ||D||_* with FD gradient', () => {
    const model = tinyLlama();
    const base = new Map(
      model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]),
    );
    const adapter = applyTuner(model, 'sara', { ratio: 0.2, lambdaRank: 0.5, rankMinDim: 0 }) as SaraAdapter;
    const layers = adapter.sparseLayers;
    assert.equal(layers.length, 14);
    for (const [n, l] of layers) {
      const w = base.get(`${n}.weight`)!;
      const k = Math.round(0.2 * w.length);
      assert.equal(l.sft_delta.indices.length, k);
      // every selected |w| is <= every unselected |w|
      const sel = new Set(l.sft_delta.indices);
      let maxSel = 0;
      let minOther = Number.POSITIVE_INFINITY;
      for (let i = 0; i < w.length; i++)
        if (sel.has(i)) maxSel = Math.max(maxSel, Math.abs(w[i]!));
        else minOther = Math.min(minOther, Math.abs(w[i]!));
      assert.ok(maxSel <= minOther, `${n}: selected ${maxSel} <= others ${minOther}`);
    }
    assert.deepEqual(
      adapter.trainableParameters().map((p) => p.size),
      layers.map(([, l]) => l.sft_delta.indices.length),
    );
    assert.ok(
      model
        .parameters()
        .filter((p) => p.requiresGrad)
        .every((p) => adapter.trainableParameters().includes(p)),
    );
    // random values, then the auxiliary term of a step's drawn layer
    const rng = new Rng(3);
    for (const p of adapter.trainableParameters()) {
      const v = p.data as Float32Array;
      for (let i = 0; i < v.length; i++) v[i] = 0.1 * rng.normal();
    }
    adapter.beginStep(4);
    const li = adapter.rankTargetAt(4);
    const layer = layers[li]![1];
    const denseOf = (vals: Float32Array) => {
      const d = new Float64Array(layer.outFeatures * layer.inFeatures);
      layer.sft_delta.indices.forEach((p, j) => {
        d[p] = vals[j]!;
      });
      return d;
    };
    const vals = layer.sft_delta.values.data as Float32Array;
    scope(() => {
      const aux = adapter.auxiliaryLoss()!;
      const expected = 0.5 * nuclear(denseOf(vals), layer.outFeatures, layer.inFeatures);
      assert.ok(Math.abs(aux.value.floatData()[0]! - expected) < 1e-4 * expected);
      assert.ok(Math.abs(aux.parts.sara_nuclear! - expected) < 1e-9 * expected);
      backward(aux.value);
    });
    const g = Float64Array.from(layer.sft_delta.values.grad!.data as Float32Array);
    const h = 1e-3;
    for (const j of [0, 7, 21]) {
      const p = Float32Array.from(vals);
      const m = Float32Array.from(vals);
      p[j]! += h;
      m[j]! -= h;
      const fd =
        (0.5 *
          (nuclear(denseOf(p), layer.outFeatures, layer.inFeatures) -
            nuclear(denseOf(m), layer.outFeatures, layer.inFeatures))) /
        (2 * h);
      assert.ok(Math.abs(fd - g[j]!) < 2e-3, `value ${j}: fd ${fd} vs ${g[j]}`);
    }
    for (const [, l] of layers) if (l !== layer) assert.equal(l.sft_delta.values.grad, null);
    // the drawn layer varies with the step
    assert.ok(new Set(Array.from({ length: 20 }, (_, s) => adapter.rankTargetAt(s + 1))).size > 1);
    // a task-loss backward gives no gradient to the frozen base
    scope(() => {
      const ids = tokens(9, 4);
      const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, 8], { dtype: 'i32' });
      const labels = fromArray(Int32Array.from(ids.slice(1)), [8], { dtype: 'i32' });
      backward(crossEntropy(model.logits(reshape(model.forwardHidden(x), [8, 32])), labels));
    });
    for (const [n, p] of model.namedParameters())
      if (!n.endsWith('sft_delta.values')) assert.equal(p.grad, null, `${n} has no gradient`);
    adapter.unload();
    for (const [n, p] of model.namedParameters())
      assert.ok(Buffer.from((p.data as Float32Array).buffer).equals(Buffer.from(base.get(n)!.buffer)), n);
  });

  it('refuses a bad ratio and the LM head', () => {
    assert.throws(() => applyTuner(tinyLlama(), 'sara', { ratio: 0 }), ConfigError);
    assert.throws(
      () => applyTuner(tinyLlama({ tied: false }), 'sara', { targetModules: ['lm_head'] }),
      /LM head/,
    );
  });
});

describe('sara training', () => {
  const cfg = (dir: string, steps = 6) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 'sara', ratio: 0.1, lambda_rank: 0.01, rank_min_dim: 0 },
        train: { steps, batch_size: 2, lr: 1e-2, seed: 2, save_every: 2 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('writes a SARA adapter; save -> load -> merge reproduces the trained model; base weights untouched', () => {
    const result = train(cfg('run'));
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'SARA');
    assert.equal(json.ratio, 0.1);
    const metrics = readFileSync(join(result.outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    assert.ok(
      metrics.some((l) => (JSON.parse(l).sara_nuclear ?? 0) > 0),
      'the nuclear term is logged',
    );
    const base = loadModel(join(root, 'model')).model;
    const baseParams = new Map(base.namedParameters());
    for (const [n, p] of result.model.namedParameters()) {
      if (n.endsWith('.sft_delta.values')) continue;
      assert.ok(
        Buffer.from((p.data as Float32Array).buffer).equals(
          Buffer.from((baseParams.get(n)!.data as Float32Array).buffer),
        ),
        `${n} is the base bit for bit`,
      );
    }
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logitsOf(result.model, ids);
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-4, 'training changed the model');
    const loaded = loadAdapter(base, result.adapterDir) as SaraAdapter;
    assert.equal(loaded.method, 'sara');
    const merged = loaded.mergeAndUnload() as typeof base;
    assert.ok(merged.namedModules().every(([, m]) => !(m instanceof SparseDeltaLinear)));
    assert.ok(maxAbsDiff(logitsOf(merged, ids), trained) < 1e-4);
  });

  it('resume after step 3 equals the uninterrupted run (values and optimizer state)', () => {
    const full = train(cfg('full'));
    const killed = cfg('killed');
    assert.throws(() => train(killed, { haltAfterStep: 3 }), TrainingHalted);
    const resumed = train(killed, { resume: true });
    const a = full.adapter.state();
    const b = resumed.adapter.state();
    assert.equal(a.size, b.size);
    for (const [n, t] of a) assert.deepEqual(b.get(n)!.data, t.data, n);
  });
});

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadModel } from '../../../src/models/index.ts';
import { Parameter } from '../../../src/nn/index.ts';
import {
  applyTuner,
  type DseeAdapter,
  DseeLinear,
  dseeSupport,
  loadAdapter,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, Rng, reshape, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-dsee-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

describe('dsee tuner', () => {
  it("support: 'residual' finds the sparse spikes of low-rank + sparse; 'magnitude' the largest |W|", () => {
    const [rows, cols] = [12, 10];
    const rng = new Rng(1);
    const u = Float64Array.from({ length: rows }, () => 3 + rng.uniform());
    const v = Float64Array.from({ length: cols }, () => 3 + rng.uniform());
    const spikes = [5, 17, 48, 77, 101];
    const w = Float64Array.from({ length: rows * cols }, (_, i) => u[Math.floor(i / cols)]! * v[i % cols]!);
    for (const p of spikes) w[p] = w[p]! + (p % 2 === 0 ? 2 : -2);
    const weight = new Parameter(w, [rows, cols]);
    assert.deepEqual(Array.from(dseeSupport(weight, 5, 'residual', 1, new Rng(0))), spikes);
    const magnitude = Array.from(dseeSupport(weight, 5, 'magnitude', 1, new Rng(0)));
    assert.notDeepEqual(magnitude, spikes);
    const byMagnitude = Array.from(w.keys()).sort((a, b) => Math.abs(w[b]!) - Math.abs(w[a]!) || a - b);
    assert.deepEqual(
      magnitude,
      byMagnitude.slice(0, 5).sort((a, b) => a - b),
    );
  });

  it('only A, B and the sparse values get gradients; they match finite differences (f64)', () => {
    const model = tinyLlama({ dtype: 'f64' });
    const ids = tokens(7, 5);
    const before = logitsOf(model, ids);
    const adapter = applyTuner(model, 'dsee', { r: 2, sparseEntries: 6, seed: 1 }) as DseeAdapter;
    assert.equal(adapter.dseeLayers.length, 14);
    assert.equal(maxAbsDiff(logitsOf(model, ids), before), 0, 'B = 0 and S = 0: starts as the base');
    const rng = new Rng(4);
    for (const [, p] of adapter.namedTrainableParameters()) p.fillWith(() => 0.05 * rng.normal());
    model.train();
    const loss = (grad = false) =>
      scope(() => {
        const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, 6], { dtype: 'i32' });
        const labels = fromArray(Int32Array.from(ids.slice(1)), [6], { dtype: 'i32' });
        const l = crossEntropy(model.logits(reshape(model.forwardHidden(x), [6, 32])), labels);
        if (grad) backward(l);
        return l.item();
      });
    loss(true);
    const trainable = new Set(adapter.trainableParameters());
    for (const [n, p] of model.namedParameters())
      if (!trainable.has(p)) assert.equal(p.grad, null, `${n} has no gradient`);
    for (const [n, p] of adapter.namedTrainableParameters().slice(0, 6)) {
      const g = Float64Array.from(p.grad!.data as Float64Array);
      const d = p.data as Float64Array;
      for (const i of [0, d.length - 1]) {
        const keep = d[i]!;
        d[i] = keep + 1e-6;
        const up = loss();
        d[i] = keep - 1e-6;
        const down = loss();
        d[i] = keep;
        assert.ok(Math.abs((up - down) / 2e-6 - g[i]!) < 1e-6, `${n}[${i}]`);
      }
    }
  });

  it('merge folds scaling B A + S exactly; prune_ratio zeroes the smallest |w| of each merged matrix; unmerge restores', () => {
    const model = tinyLlama();
    const ids = tokens(6, 2);
    const adapter = applyTuner(model, 'dsee', {
      r: 2,
      loraAlpha: 4,
      sparseEntries: 5,
      pruneRatio: 0.25,
    }) as DseeAdapter;
    const rng = new Rng(2);
    for (const [, p] of adapter.namedTrainableParameters()) p.fillWith(() => 0.05 * rng.normal());
    const [, layer] = adapter.dseeLayers[0]!;
    const w0 = Float32Array.from(layer.weight.data as Float32Array);
    adapter.merge();
    const w = layer.weight.data as Float32Array;
    const zeros = w.filter((x) => x === 0).length;
    assert.equal(zeros, Math.floor(0.25 * w.length));
    const kept = Array.from(w).filter((x) => x !== 0);
    const minKept = Math.min(...kept.map(Math.abs));
    // the pruned entries are those of smallest |merged value|: recompute the merged matrix
    const a = layer.lora_A.weight.data as Float32Array;
    const b = layer.lora_B.weight.data as Float32Array;
    const dense = Float64Array.from(w0);
    for (let o = 0; o < 32; o++)
      for (let i = 0; i < 32; i++) {
        let s = 0;
        for (let k = 0; k < 2; k++) s += b[o * 2 + k]! * a[k * 32 + i]!;
        dense[o * 32 + i] = dense[o * 32 + i]! + 2 * s;
      }
    layer.sft_delta.indices.forEach((p, j) => {
      dense[p] = dense[p]! + (layer.sft_delta.values.data as Float32Array)[j]!;
    });
    for (let i = 0; i < w.length; i++) {
      if (w[i] === 0)
        assert.ok(Math.abs(dense[i]!) <= minKept + 1e-6, 'a pruned entry is among the smallest');
      else assert.ok(Math.abs(w[i]! - dense[i]!) < 1e-5, 'a kept entry is W + 2 B A + S');
    }
    adapter.unmerge();
    assert.deepEqual(layer.weight.data, w0);
    assert.ok(logitsOf(model, ids).every(Number.isFinite));
  });
});

describe('dsee training', () => {
  const cfg = (dir: string) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 'dsee', r: 4, sparse_entries: 16 },
        train: { steps: 6, batch_size: 2, lr: 2e-2, seed: 4, save_every: 2 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('base weights stay bit-identical; the DSEE adapter reloads and export-merges to the trained model', () => {
    const result = train(cfg('run'));
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'DSEE');
    const base = loadModel(join(root, 'model')).model;
    const baseParams = new Map(base.namedParameters());
    for (const [n, p] of result.model.namedParameters()) {
      if (!baseParams.has(n)) continue;
      assert.ok(
        Buffer.from((p.data as Float32Array).buffer).equals(
          Buffer.from((baseParams.get(n)!.data as Float32Array).buffer),
        ),
        `${n} bit-identical`,
      );
    }
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logitsOf(result.model, ids);
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-4);
    const loaded = loadAdapter(base, result.adapterDir) as DseeAdapter;
    const first = (result.adapter as DseeAdapter).dseeLayers[0]!;
    assert.deepEqual(loaded.dseeLayers[0]![1].sft_delta.indices, first[1].sft_delta.indices);
    const merged = loaded.mergeAndUnload() as typeof base;
    assert.ok(merged.namedModules().every(([, m]) => !(m instanceof DseeLinear)));
    assert.ok(maxAbsDiff(logitsOf(merged, ids), trained) < 1e-4);
  });

  it('resume mid-run equals the uninterrupted run', () => {
    const full = train(cfg('full'));
    const killed = cfg('killed');
    assert.throws(() => train(killed, { haltAfterStep: 3 }), TrainingHalted);
    const resumed = train(killed, { resume: true });
    for (const [n, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(n)!.data, t.data, n);
  });
});

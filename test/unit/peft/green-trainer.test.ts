import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  applyTuner,
  type GreenTrainerAdapter,
  type GreenUnit,
  greenSelect,
  greenStepFlops,
  greenUnits,
  loadAdapter,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, Rng, reshape, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-green-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

/** Exhaustive optimum: best importance over non-empty subsets that fit (the rule greenSelect implements). */
function bruteForce(units: GreenUnit[], imp: number[], budget: number): { value: number; cost: number } {
  let best = Number.NEGATIVE_INFINITY;
  let cost = 0;
  for (let mask = 1; mask < 1 << units.length; mask++) {
    const sel = units.map((_, i) => i).filter((i) => mask & (1 << i));
    const c = greenStepFlops(units, 0, sel);
    if (c > budget) continue;
    const v = sel.reduce((s, i) => s + Math.max(0, imp[i]!), 0) + Math.min(0, imp[Math.max(...sel)]!);
    if (v > best) {
      best = v;
      cost = c;
    }
  }
  return { value: best, cost };
}

function backwardOnce(model: ReturnType<typeof tinyLlama>, ids: number[]): void {
  scope(() => {
    const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, ids.length - 1], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from(ids.slice(1)), [ids.length - 1], { dtype: 'i32' });
    backward(crossEntropy(model.logits(reshape(model.forwardHidden(x), [ids.length - 1, 32])), labels));
  });
}

describe('green_trainer selection', () => {
  it('hand case: the dY of everything above the deepest tensor is paid', () => {
    // backward order: u0 nearest the loss
    const units: GreenUnit[] = [
      { names: ['a'], dw: 2, dy: 2 },
      { names: ['b'], dw: 2, dy: 2 },
      { names: ['c'], dw: 2, dy: 2 },
    ];
    // c alone costs dy0 + dy1 + dw2 = 6; a + b costs dy0 + dw0 + dw1 = 6
    assert.deepEqual(greenSelect(units, [1, 1, 3], 6, 6), [2]);
    assert.deepEqual(greenSelect(units, [2, 1.5, 3], 6, 6), [0, 1]);
    assert.deepEqual(greenSelect(units, [1, 1, 3], 8, 8), [0, 2]);
    assert.deepEqual(greenSelect(units, [-1, -2, -3], 6, 6), [0]);
    assert.equal(greenSelect(units, [1, 1, 1], 1, 10), null);
  });

  it('matches the exhaustive optimum on random instances (integer costs, exact buckets)', () => {
    const rng = new Rng(11);
    for (let trial = 0; trial < 200; trial++) {
      const n = 2 + rng.int(7);
      const units = Array.from({ length: n }, (_, i) => ({
        names: [`u${i}`],
        dw: 1 + rng.int(6),
        dy: 1 + rng.int(6),
      }));
      const imp = Array.from({ length: n }, () => rng.normal());
      const budget = 2 + rng.int(25);
      const want = bruteForce(units, imp, budget);
      const got = greenSelect(units, imp, budget, budget);
      if (want.value === Number.NEGATIVE_INFINITY) {
        assert.equal(got, null, `trial ${trial}`);
        continue;
      }
      assert.ok(got, `trial ${trial}`);
      assert.ok(greenStepFlops(units, 0, got) <= budget, `trial ${trial}: fits`);
      const v = got.reduce((s, i) => s + Math.max(0, imp[i]!), 0) + Math.min(0, imp[Math.max(...got)]!);
      assert.ok(Math.abs(v - want.value) < 1e-9, `trial ${trial}: ${v} vs ${want.value}`);
    }
  });

  it('the FLOPs model: 14 units of the tiny llama, full = fixed + sum(dW + dY)', () => {
    const model = tinyLlama();
    const { units, fixed, full } = greenUnits(model);
    assert.equal(units.length, 14);
    assert.ok(units[0]!.names[0]!.includes('layers.1.mlp.down_proj'), units[0]!.names[0]);
    assert.ok(units[13]!.names[0]!.includes('layers.0.self_attn.q_proj'), units[13]!.names[0]);
    const matrices = units.reduce((s, u) => s + u.dw / 2, 0);
    const head = 50 * 32;
    assert.equal(fixed, 2 * matrices + 4 * head);
    assert.equal(full, 6 * matrices + 4 * head);
    assert.equal(
      greenStepFlops(
        units,
        fixed,
        units.map((_, i) => i),
      ),
      // every matrix trained: all dY but the bottom one's (full fine-tuning pays it for the embeddings)
      full - units[13]!.dy,
    );
  });
});

describe('green_trainer adapter', () => {
  it('reselection step trains all, I_k = -sum(g dw); then only the selection gets gradients, the rest is bit-identical', () => {
    const model = tinyLlama();
    const ids = tokens(9, 4);
    const adapter = applyTuner(model, 'green_trainer', {
      flopsRatio: 0.6,
      reselectEvery: 3,
    }) as GreenTrainerAdapter;
    const params = new Map(model.namedParameters());
    const candidates = adapter.units.flatMap((u) => u.names);
    adapter.beginStep(1);
    assert.ok(candidates.every((n) => params.get(n)!.requiresGrad));
    assert.ok([...params].filter(([n]) => !candidates.includes(n)).every(([, p]) => !p.requiresGrad));
    backwardOnce(model, ids);
    adapter.afterBackward();
    // an SGD-like update with per-unit step sizes, so importance is lr_k * sum(g^2)
    const expected = adapter.units.map((u, k) => {
      let s = 0;
      for (const n of u.names) {
        const p = params.get(n)!;
        const w = p.data as Float32Array;
        const g = p.grad!.data as Float32Array;
        const lr = 0.01 * (k + 1);
        for (let j = 0; j < w.length; j++) {
          const before = w[j]!;
          w[j] = w[j]! - lr * g[j]!;
          s -= g[j]! * (w[j]! - before);
        }
      }
      return s;
    });
    for (const p of model.parameters())
      if (p.grad) {
        p.grad.release();
        p.grad = null;
      }
    adapter.afterStep(1);
    const imp = adapter.lastImportance!;
    expected.forEach((e, k) => {
      assert.ok(Math.abs(imp[k]! - e) <= 1e-9 * Math.abs(e) + 1e-12, `unit ${k}`);
    });
    const sel = adapter.selection;
    assert.ok(sel.length > 0 && sel.length < adapter.units.length);
    const { fixed, full } = greenUnits(tinyLlama());
    assert.ok(greenStepFlops(adapter.units, fixed, sel) <= 0.6 * full + 1e-9);
    assert.deepEqual(sel, greenSelect(adapter.units, imp, 0.6 * full - fixed, 1000));
    // the step's metrics: a reselection step is a full step
    const fullStep = (full - adapter.units[13]!.dy) / full;
    assert.equal(adapter.metrics().green_flops_ratio, fullStep);
    // step 2: not a reselection; only selected tensors get gradients, others stay untouched
    const snapshot = new Map([...params].map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]));
    adapter.beginStep(2);
    assert.deepEqual(adapter.selection, sel);
    backwardOnce(model, ids);
    const trained = new Set(sel.flatMap((i) => adapter.units[i]!.names));
    for (const [n, p] of params) {
      if (trained.has(n)) assert.ok(p.grad, `${n} has a gradient`);
      else assert.equal(p.grad, null, `${n} has no gradient`);
    }
    adapter.afterStep(2);
    const r2 = adapter.metrics().green_flops_ratio!;
    assert.ok(r2 < 0.6 + 1e-12 && r2 > 0);
    assert.ok(Math.abs(adapter.metrics().green_flops_saved! - (1 - (fullStep + r2) / 2)) < 1e-12);
    for (const [n, p] of params)
      if (!trained.has(n)) assert.deepEqual(p.data, snapshot.get(n), `${n} unchanged`);
    assert.equal(adapter.isReselectStep(4), true);
    assert.equal(adapter.isReselectStep(3), false);
  });

  it('refuses a budget too small to train anything', () => {
    const model = tinyLlama();
    const adapter = applyTuner(model, 'green_trainer', { flopsRatio: 0.05 }) as GreenTrainerAdapter;
    assert.throws(() => adapter.select(new Float64Array(14).fill(1)), ConfigError);
  });
});

describe('green_trainer training', () => {
  const cfg = (dir: string, steps = 7) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 'green_trainer', flops_ratio: 0.55, reselect_every: 3 },
        train: { steps, batch_size: 2, lr: 1e-2, seed: 2, save_every: 2 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('logs the FLOPs saved; the adapter loads and reproduces the trained model', () => {
    const result = train(cfg('run'));
    const lines = readFileSync(join(result.outputDir, 'metrics.jsonl'), 'utf8').trim().split('\n');
    const last = JSON.parse(lines.at(-1)!);
    // steps 1, 4, 7 are full steps (ratio 1); the other four at most 0.55
    assert.ok(last.green_flops_saved > 0 && last.green_flops_saved <= 1 - (3 + 4 * 0) / 7);
    assert.ok(last.green_flops_saved >= 1 - (3 + 4 * 0.55) / 7 - 1e-9);
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'GREEN_TRAINER');
    const base = loadModel(join(root, 'model')).model;
    const ids = [256, ...Buffer.from('Bo lives in Lima.')];
    const trained = logitsOf(result.model, ids);
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-4);
    const loaded = loadAdapter(base, result.adapterDir);
    const merged = loaded.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(merged as typeof base, ids), trained) < 1e-5);
  });

  it('resume after step 5 (mid-interval) equals the uninterrupted run', () => {
    const full = train(cfg('full'));
    const killed = cfg('killed');
    assert.throws(() => train(killed, { haltAfterStep: 5 }), TrainingHalted);
    const resumed = train(killed, { resume: true });
    const a = full.adapter.state();
    const b = resumed.adapter.state();
    for (const [n, t] of a) assert.deepEqual(b.get(n)!.data, t.data, n);
    assert.deepEqual(
      (resumed.adapter as GreenTrainerAdapter).metrics(),
      (full.adapter as GreenTrainerAdapter).metrics(),
    );
  });
});

import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  applyTuner,
  type LtSftAdapter,
  largestPositions,
  loadAdapter,
  ltSftFullSteps,
  SparseDeltaLinear,
  type SparseFtAdapter,
  sparseBudget,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, Rng, reshape, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-lt-sft-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

function backwardOnce(model: ReturnType<typeof tinyLlama>, ids: number[]): void {
  scope(() => {
    const x = fromArray(Int32Array.from(ids.slice(0, -1)), [1, ids.length - 1], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from(ids.slice(1)), [ids.length - 1], { dtype: 'i32' });
    backward(crossEntropy(model.logits(reshape(model.forwardHidden(x), [ids.length - 1, 32])), labels));
  });
}

describe('lt_sft tuner', () => {
  it('phase split: round(full_fraction * steps) clamped to [1, steps - 1]; fewer than 2 steps refused', () => {
    assert.equal(ltSftFullSteps(10, 0.5), 5);
    assert.equal(ltSftFullSteps(10, 0.01), 1);
    assert.equal(ltSftFullSteps(10, 0.99), 9);
    assert.equal(ltSftFullSteps(7, 0.3), 2);
    assert.throws(() => ltSftFullSteps(1, 0.5), ConfigError);
  });

  it('full phase trains W densely; the switch keeps the top-k |W - W0|, resets W bit for bit, then only values train', () => {
    const model = tinyLlama();
    const ids = tokens(9, 4);
    const base = new Map(
      model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.data as Float32Array)]),
    );
    const adapter = applyTuner(model, 'lt_sft', { density: 0.05 }) as LtSftAdapter;
    const layers = adapter.sparseLayers;
    assert.equal(layers.length, 14);
    const ks = sparseBudget(
      layers.map(([, l]) => l.weight.size),
      model.numParameters() - adapter.numEntries,
      0.05,
      'model',
    );
    assert.deepEqual(
      layers.map(([, l]) => l.sft_delta.indices.length),
      ks,
    );
    // phase 1: W of every target gets a dense gradient; the values and non-targets none
    model.train();
    backwardOnce(model, ids);
    for (const [n, p] of model.namedParameters()) {
      if (/_proj\.weight$/.test(n)) assert.ok(p.grad && p.grad.size === p.size, `${n} dense gradient`);
      else assert.equal(p.grad, null, `${n} has no gradient in the full phase`);
    }
    // a fake dense update, then the switch
    const rng = new Rng(5);
    const trained = new Map<string, Float32Array>();
    for (const [n, l] of layers) {
      l.weight.grad = null;
      const w = l.weight.data as Float32Array;
      for (let i = 0; i < w.length; i++) w[i] = w[i]! + 0.01 * rng.normal();
      trained.set(n, Float32Array.from(w));
    }
    assert.equal(adapter.namedTrainableParameters().length, 28, 'W and values listed during the full phase');
    adapter.afterStep(4, 10, { resetEntries: () => {} });
    assert.equal(adapter.inSparsePhase, false, 'step 4 of 10 is still the full phase');
    adapter.afterStep(5, 10, { resetEntries: () => {} });
    assert.equal(adapter.inSparsePhase, true);
    for (const [n, l] of layers) {
      const w0 = base.get(`${n}.weight`)!;
      const change = Float64Array.from(trained.get(n)!, (a, i) => Math.abs(a - w0[i]!));
      assert.deepEqual(
        Array.from(l.sft_delta.indices),
        Array.from(largestPositions(change, l.sft_delta.indices.length)),
      );
      assert.ok(
        Buffer.from((l.weight.data as Float32Array).buffer).equals(Buffer.from(w0.buffer)),
        `${n}.weight reset to the base bit for bit`,
      );
      assert.ok(
        (l.sft_delta.values.data as Float32Array).every((v) => v === 0),
        'values restart at 0',
      );
    }
    assert.equal(
      maxAbsDiff(logitsOf(model, ids), logitsOf(loadTiny(base), ids)),
      0,
      'the model is the base again',
    );
    // phase 2: only the values get gradients
    backwardOnce(model, ids);
    for (const [n, p] of model.namedParameters()) {
      if (n.endsWith('.sft_delta.values')) assert.ok(p.grad, n);
      else assert.equal(p.grad, null, `${n} frozen in the sparse phase`);
    }
    assert.equal(adapter.namedTrainableParameters().length, 14);
  });

  it('reset_values: false starts the kept entries at their dense-phase change', () => {
    const model = tinyLlama();
    const adapter = applyTuner(model, 'lt_sft', { density: 0.05, resetValues: false }) as LtSftAdapter;
    const [, l] = adapter.sparseLayers[0]!;
    const w = l.weight.data as Float32Array;
    const w0 = Float32Array.from(w);
    w[3] = w[3]! + 1;
    adapter.selectAndReset();
    const slot = Array.from(l.sft_delta.indices).indexOf(3);
    assert.ok(slot >= 0);
    assert.equal(
      (l.sft_delta.values.data as Float32Array)[slot],
      Math.fround(Math.fround(w0[3]! + 1) - w0[3]!),
    );
    assert.equal(w[3], w0[3]);
  });

  it('save and merge are refused during the full phase; unload there restores W0', () => {
    const model = tinyLlama();
    const ids = tokens(6, 1);
    const before = logitsOf(model, ids);
    const adapter = applyTuner(model, 'lt_sft', {}) as LtSftAdapter;
    assert.throws(() => adapter.save(join(root, 'never')), /full phase/);
    assert.throws(() => adapter.merge(), /full phase/);
    (adapter.sparseLayers[0]![1].weight.data as Float32Array)[0] = 42;
    adapter.unload();
    assert.equal(maxAbsDiff(logitsOf(model, ids), before), 0);
  });
});

function loadTiny(params: Map<string, Float32Array>): ReturnType<typeof tinyLlama> {
  const m = tinyLlama();
  for (const [n, p] of m.namedParameters()) (p.data as Float32Array).set(params.get(n)!);
  return m;
}

describe('lt_sft training', () => {
  const cfg = (dir: string, steps = 8) =>
    validateTrainConfig(
      {
        model: join(root, 'model'),
        data: { train: join(root, 'train.jsonl'), max_length: 32 },
        method: { name: 'lt_sft', density: 0.05 },
        train: { steps, batch_size: 2, lr: 1e-2, seed: 2, save_every: 2 },
        output_dir: join(root, dir),
      },
      'test config',
    );

  it('writes a SPARSE_FT adapter that loads as sparse_ft and merges densely; non-delta weights are the base', () => {
    const result = train(cfg('run'));
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'SPARSE_FT');
    assert.equal(json.method, 'lt_sft');
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
    assert.ok(maxAbsDiff(trained, logitsOf(base, ids)) > 1e-4, 'the sparse phase changed the model');
    const loaded = loadAdapter(base, result.adapterDir) as SparseFtAdapter;
    assert.equal(loaded.method, 'sparse_ft');
    const merged = loaded.mergeAndUnload() as typeof base;
    assert.ok(merged.namedModules().every(([, m]) => !(m instanceof SparseDeltaLinear)));
    assert.ok(maxAbsDiff(logitsOf(merged, ids), trained) < 1e-4);
  });

  it('a run of one step is refused before training, naming train.steps', () => {
    assert.throws(
      () => train(cfg('one-step', 1)),
      (e: Error) => e instanceof ConfigError && /train\.steps must be at least 2/.test(e.message),
    );
  });

  for (const halt of [3, 5]) {
    it(`resume after step ${halt} (${halt <= 4 ? 'full' : 'sparse'} phase) equals the uninterrupted run`, () => {
      const full = train(cfg(`full-${halt}`));
      const killed = cfg(`killed-${halt}`);
      assert.throws(() => train(killed, { haltAfterStep: halt }), TrainingHalted);
      const resumed = train(killed, { resume: true });
      const a = full.adapter.state();
      const b = resumed.adapter.state();
      assert.equal(a.size, b.size);
      for (const [n, t] of a) assert.deepEqual(b.get(n)!.data, t.data, n);
    });
  }
});

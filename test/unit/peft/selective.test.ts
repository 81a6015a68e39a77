import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ConfigError } from '../../../src/errors.ts';
import { openSafetensors } from '../../../src/io/index.ts';
import { loadModel } from '../../../src/models/index.ts';
import {
  applyTuner,
  type HftAdapter,
  hftSelection,
  hftStage,
  layerGroups,
  loadAdapter,
  PEFT_KEY_PREFIX,
} from '../../../src/peft/index.ts';
import { backward, crossEntropy, fromArray, reshape, scope } from '../../../src/tensor/index.ts';
import { validateTrainConfig } from '../../../src/train/config.ts';
import { TrainingHalted, train } from '../../../src/train/trainer.ts';
import { FACTS, tempDir, writeJsonl, writeTinyModel } from '../../helpers/tiny-run.ts';
import { logitsOf, maxAbsDiff, snapshotParameters, tinyLlama, tokens } from './helpers.ts';

const root = tempDir('attune-selective-');
after(() => rmSync(root, { recursive: true, force: true }));
writeTinyModel(join(root, 'model'), { hidden: 32, layers: 4 });
writeJsonl(join(root, 'train.jsonl'), FACTS);

/** One forward/backward of a fixed sequence (grads left on the parameters). */
function backwardOnce(model: ReturnType<typeof tinyLlama>): void {
  const seq = tokens(9, 5);
  scope(() => {
    const ids = fromArray(Int32Array.from(seq.slice(0, -1)), [1, 8], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from(seq.slice(1)), [8], { dtype: 'i32' });
    backward(crossEntropy(model.logits(reshape(model.forwardHidden(ids), [8, 32])), labels));
  });
}

/** A tiny run's config with `method` (no lora block). */
function runConfig(method: unknown, train: Record<string, unknown>, dir: string) {
  return validateTrainConfig(
    {
      model: join(root, 'model'),
      data: { train: join(root, 'train.jsonl'), max_length: 32 },
      method,
      train,
      output_dir: join(root, dir),
    },
    'test config',
  );
}

function layerOf(name: string): number {
  return Number(/layers\.(\d+)\./.exec(name)?.[1] ?? -1);
}

describe('layer_freeze', () => {
  it('freezes the embeddings and the bottom half by default; trains the top layers, final norm', () => {
    const model = tinyLlama({ tied: false });
    const adapter = applyTuner(model, 'layer_freeze', {});
    const trained = adapter.namedTrainableParameters().map(([n]) => n);
    const expected = model
      .namedParameters()
      .map(([n]) => n)
      .filter((n) => layerOf(n) === 1 || n === 'model.norm.weight' || n === 'lm_head.weight');
    assert.deepEqual(trained.sort(), expected.sort());
    backwardOnce(model);
    for (const [n, p] of model.namedParameters()) {
      if (expected.includes(n)) assert.ok(p.grad, `${n} has a gradient`);
      else assert.equal(p.grad, null, `${n} has no gradient buffer`);
    }
  });

  it('train_layers takes negative indices; freeze_first_n and the switches; bad input is one line', () => {
    const model = tinyLlama();
    const a = applyTuner(model, 'layer_freeze', { trainLayers: [-2], trainFinalNorm: false });
    assert.ok(a.namedTrainableParameters().every(([n]) => layerOf(n) === 0));
    a.unload();
    const b = applyTuner(model, 'layer_freeze', {
      freezeFirstN: 2,
      trainEmbeddings: true,
      trainFinalNorm: false,
    });
    assert.deepEqual(
      b.namedTrainableParameters().map(([n]) => n),
      ['model.embed_tokens.weight'],
    );
    b.unload();
    assert.throws(
      () => applyTuner(model, 'layer_freeze', { trainLayers: [2] }),
      (e: Error) =>
        e instanceof ConfigError && /train_layers entry 2 is outside the model's 2 layers/.test(e.message),
    );
    assert.throws(
      () => applyTuner(model, 'layer_freeze', { trainLayers: [0], freezeFirstN: 1 }),
      /freeze_first_n or train_layers, not both/,
    );
  });

  it('a run leaves frozen tensors bit-identical; the adapter holds only trained tensors and merges', () => {
    const config = runConfig(
      { name: 'layer_freeze', freeze_first_n: 3 },
      { steps: 4, batch_size: 2, lr: 1e-2 },
      'run-lf',
    );
    const result = train(config);
    const base = loadModel(join(root, 'model')).model;
    const baseParams = new Map(base.namedParameters());
    const trained = new Set(result.adapter.namedTrainableParameters().map(([n]) => n));
    let changed = 0;
    for (const [n, p] of result.model.namedParameters()) {
      // the tensor's own bytes: a loaded weight may be a view into a mapped file (byteOffset != 0)
      const bytes = (d: Float32Array) => Buffer.from(d.buffer, d.byteOffset, d.byteLength);
      const same = bytes(p.data as Float32Array).equals(bytes(baseParams.get(n)!.data as Float32Array));
      if (!trained.has(n)) assert.ok(same, `${n} is frozen and bit-identical`);
      else if (!same) changed++;
    }
    assert.ok(changed > 0);
    const reader = openSafetensors(join(result.adapterDir, 'adapter_model.safetensors'));
    assert.deepEqual(reader.names().sort(), [...trained].map((n) => `${PEFT_KEY_PREFIX}${n}`).sort());
    reader.close();
    const json = JSON.parse(readFileSync(join(result.adapterDir, 'adapter_config.json'), 'utf8'));
    assert.equal(json.peft_type, 'LAYER_FREEZE');
    assert.equal(json.freeze_first_n, 3);
    // export --merge path: base + adapter -> plain model with the trained logits
    const ids = tokens(7, 2).map((t) => t + 60);
    const merged = loadAdapter(base, result.adapterDir).mergeAndUnload() as typeof base;
    assert.equal(maxAbsDiff(logitsOf(merged, ids), logitsOf(result.model, ids)), 0);
  });
});

describe('layer_freeze resume', () => {
  it('resume after a stop at step k equals the uninterrupted run', () => {
    const cfgOf = (dir: string) =>
      runConfig(
        { name: 'layer_freeze', train_layers: [1, -1] },
        { steps: 5, batch_size: 2, lr: 1e-2, seed: 4 },
        dir,
      );
    const full = train(cfgOf('run-lf-full'));
    assert.throws(() => train(cfgOf('run-lf-killed'), { haltAfterStep: 2 }), TrainingHalted);
    const resumed = train(cfgOf('run-lf-killed'), { resume: true });
    assert.ok(full.adapter.state().size > 0);
    for (const [n, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(n)!.data, t.data, n);
  });
});

describe('hft', () => {
  it('trains half of each layer by parameter count: attention exactly half, MLP one or two of three', () => {
    const model = tinyLlama();
    const groups = layerGroups(model);
    const sizes = new Map(model.namedParameters().map(([n, p]) => [n, p.size]));
    const mlpCounts = new Set<number>();
    for (let seed = 0; seed < 12; seed++) {
      const names = hftSelection(model, seed, 0, 'freeze');
      groups.layers.forEach((units) => {
        const attn = units.filter((u) => u.block === 'attention');
        const total = attn.reduce((s, u) => s + u.size, 0);
        const taken = attn.filter((u) => names.has(u.names[0]!));
        assert.equal(
          taken.reduce((s, u) => s + u.size, 0),
          total / 2,
        );
        mlpCounts.add(units.filter((u) => u.block === 'mlp' && names.has(u.names[0]!)).length);
        for (const u of units) if (u.block === 'norm') assert.ok(!names.has(u.names[0]!));
      });
      for (const n of names) assert.ok(sizes.has(n) && layerOf(n) >= 0, n);
    }
    assert.deepEqual([...mlpCounts].sort(), [1, 2]);
  });

  it('draws are a pure function of (seed, stage), differ across stages; frozen halves get no gradient', () => {
    const model = tinyLlama();
    const key = (s: Set<string>) => [...s].sort().join();
    assert.equal(key(hftSelection(model, 4, 1, 'freeze')), key(hftSelection(tinyLlama(), 4, 1, 'freeze')));
    const draws = new Set([0, 1, 2, 3, 4, 5].map((s) => key(hftSelection(model, 4, s, 'freeze'))));
    assert.ok(draws.size > 1, 'stages draw different halves');
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((s) => hftStage(s, 10, 3)),
      [0, 0, 0, 0, 1, 1, 1, 2, 2, 2],
    );
    const adapter = applyTuner(model, 'hft', { stages: 3, seed: 4 }) as HftAdapter;
    for (const stage of [0, 2]) {
      adapter.setStage(stage);
      const active = hftSelection(model, 4, stage, 'freeze');
      backwardOnce(model);
      for (const [n, p] of model.namedParameters()) {
        assert.equal(p.grad !== null, active.has(n), `${n} in stage ${stage}`);
        p.grad?.release();
        p.grad = null;
      }
    }
  });

  it('resume after a stop mid-run equals the uninterrupted run (stages redrawn); frozen stay identical', () => {
    const cfgOf = (dir: string) =>
      runConfig(
        { name: 'hft', stages: 2 },
        { steps: 6, batch_size: 2, lr: 1e-2, seed: 3, save_every: 2 },
        dir,
      );
    const full = train(cfgOf('run-hft'));
    const cfg = cfgOf('run-hft-killed');
    assert.throws(() => train(cfg, { haltAfterStep: 4 }), TrainingHalted);
    const resumed = train(cfg, { resume: true });
    for (const [n, t] of full.adapter.state())
      assert.deepEqual(resumed.adapter.state().get(n)!.data, t.data, n);
    const union = new Set([
      ...hftSelection(full.model, 3, 0, 'freeze'),
      ...hftSelection(full.model, 3, 1, 'freeze'),
    ]);
    const base = snapshotParameters(loadModel(join(root, 'model')).model);
    for (const [n, p] of full.model.namedParameters()) {
      if (!union.has(n)) assert.deepEqual(p.toArray(), base.get(n), `${n} frozen in every stage`);
    }
    assert.deepEqual(
      full.adapter
        .namedTrainableParameters()
        .map(([n]) => n)
        .sort(),
      [...union].sort(),
    );
  });
});

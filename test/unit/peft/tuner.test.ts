import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { z } from 'zod';
import { ConfigError } from '../../../src/errors.ts';
import type { LlamaForCausalLM } from '../../../src/models/index.ts';
import type { Module, Parameter } from '../../../src/nn/index.ts';
import {
  type Adapter,
  applyLora,
  applyTuner,
  FullAdapter,
  getTuner,
  loadAdapter,
  registerTuner,
  type Tuner,
  tunerNames,
} from '../../../src/peft/index.ts';
import {
  backward,
  crossEntropy,
  fromArray,
  Rng,
  reshape,
  scope,
  type Tensor,
} from '../../../src/tensor/index.ts';
import { AdamW } from '../../../src/train/optim/index.ts';
import { logitsOf, maxAbsDiff, snapshotParameters, tinyLlama, tokens } from './helpers.ts';

const tmp = mkdtempSync(join(tmpdir(), 'attune-tuner-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('tuner registry', () => {
  it('knows full and lora; an unknown name is an error listing them', () => {
    assert.deepEqual(
      tunerNames().filter((n) => n === 'full' || n === 'lora'),
      ['full', 'lora'],
    );
    assert.equal(getTuner('lora').peftType, 'LORA');
    assert.equal(getTuner('full').peftType, 'FULL');
    assert.throws(
      () => getTuner('dora'),
      (e: Error) =>
        e instanceof ConfigError && /unknown fine-tuning method 'dora' \(known: .*full.*lora/.test(e.message),
    );
    assert.throws(() => applyTuner(tinyLlama(), 'lora', { rank: 4 }), /unknown option\(s\) rank/);
  });

  it('a new method is one object implementing Tuner (here: train the norms only)', () => {
    const normsOnly: Tuner<Record<string, never>> = {
      name: 'norms-only',
      description: 'train the norm weights only',
      peftType: null,
      options: z.object({}),
      fromOptions: () => ({}),
      apply(model: Module): Adapter {
        const flags = new Map(model.parameters().map((p) => [p, p.requiresGrad]));
        model.freeze();
        const named = model.namedParameters().filter(([n]) => n.endsWith('norm.weight'));
        for (const [, p] of named) p.unfreeze();
        const self: Adapter = {
          method: 'norms-only',
          model,
          merged: false,
          trainableParameters: () => named.map(([, p]) => p),
          namedTrainableParameters: () => [...named],
          state: () => new Map<string, Tensor>(named),
          merge: () => {},
          unmerge: () => {},
          save: () => {},
          load: () => {},
          unload: () => {
            for (const [p, t] of flags as Map<Parameter, boolean>) t ? p.unfreeze() : p.freeze();
            return model;
          },
          mergeAndUnload: () => self.unload(),
        };
        return self;
      },
    };
    registerTuner('norms-only', normsOnly);
    const model = tinyLlama();
    const adapter = applyTuner(model, 'norms-only');
    assert.equal(adapter.trainableParameters().length, 2 * 2 + 1);
    assert.equal(model.trainableParameters().length, 5);
    adapter.unload();
    assert.equal(model.trainableParameters().length, model.parameters().length);
  });
});

describe('full fine-tuning', () => {
  it('trains everything, state is every parameter, merge is a no-op, save writes a model dir', () => {
    const model = tinyLlama();
    model.freeze();
    const adapter = getTuner('full').apply(model, {});
    assert.ok(adapter instanceof FullAdapter);
    assert.equal(model.trainableParameters().length, model.parameters().length);
    assert.deepEqual(
      adapter.namedTrainableParameters().map(([n]) => n),
      model.namedParameters().map(([n]) => n),
    );
    assert.ok(adapter.state().has('model.layers.0.self_attn.q_proj.weight'));
    assert.equal(adapter.state().size, model.parameters().length);
    const before = snapshotParameters(model);
    adapter.merge();
    adapter.unmerge();
    assert.deepEqual(snapshotParameters(model), before);
    assert.equal(adapter.merged, false);
    const dir = join(tmp, 'full');
    adapter.save(dir);
    const ids = tokens(6);
    assert.deepEqual(
      logitsOf(loadAdapter(tinyLlama({ seed: 98 }), dir).model as LlamaForCausalLM, ids),
      logitsOf(model, ids),
    );
    const other = tinyLlama({ seed: 99 });
    const otherAdapter = getTuner('full').apply(other, undefined);
    otherAdapter.load(dir);
    assert.deepEqual(logitsOf(other, ids), logitsOf(model, ids));
    adapter.unload();
    assert.equal(model.trainableParameters().length, 0, 'the flags from before apply are restored');
    assert.throws(
      () => getTuner('full').apply(tinyLlama({ dtype: 'bf16' }), {}),
      /is bf16, which cannot be trained/,
    );
    assert.throws(() => getTuner('full').apply(tinyLlama(), { lr: 1 }), /takes no options/);
  });
});

describe('a LoRA training loop', () => {
  it('lowers the loss on a short sequence while the base weights stay fixed', () => {
    const model = tinyLlama({ tied: false });
    // HF's init (std 0.02) bounds the logits to about +-0.6 after the final norm: widen the head so
    // the loss can fall far
    const rng = new Rng(5);
    model.lm_head!.weight.fillWith(() => 0.3 * rng.normal());
    const base = snapshotParameters(model);
    const adapter = applyLora(model, {
      targetModules: 'all-linear',
      r: 4,
      loraAlpha: 8,
      loraDropout: 0.1,
      seed: 3,
    });
    model.train();
    const seq = tokens(13, 17);
    const ids = fromArray(Int32Array.from(seq.slice(0, -1)), [1, 12], { dtype: 'i32' });
    const labels = fromArray(Int32Array.from(seq.slice(1)), [12], { dtype: 'i32' });
    const optimizer = new AdamW(adapter.trainableParameters(), { lr: 1e-2, weightDecay: 0 });
    const losses: number[] = [];
    for (let step = 0; step < 20; step++) {
      losses.push(
        scope(() => {
          const hidden = model.forwardHidden(ids);
          const logits = model.logits(reshape(hidden, [12, 32]));
          const loss = crossEntropy(logits, labels);
          backward(loss);
          optimizer.step();
          optimizer.zeroGrad();
          return loss.item();
        }),
      );
    }
    assert.ok(losses.every(Number.isFinite));
    assert.ok(losses.at(-1)! < 0.25 * losses[0]!, `loss ${losses[0]} -> ${losses.at(-1)}`);
    for (const [name, values] of base) {
      assert.deepEqual(model.getParameter(name).toArray(), values, `${name} is frozen`);
    }
    // the trained update survives merge-and-unload into a plain model
    model.eval();
    const adapted = logitsOf(model, seq);
    adapter.mergeAndUnload();
    assert.ok(maxAbsDiff(logitsOf(model, seq), adapted) < 1e-4);
  });
});

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type CausalLM, createModel, gpt2ConfigJson, llamaConfigJson } from '../../../src/models/index.ts';
import type { Dropout } from '../../../src/nn/index.ts';
import { applyTuner } from '../../../src/peft/index.ts';
import {
  backward,
  checkpoint,
  crossEntropy,
  fromArray,
  mul,
  pool,
  Rng,
  reshape,
  scope,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';

const VOCAB = 50;

function llama(): CausalLM {
  const config = llamaConfigJson({
    vocabSize: VOCAB,
    hiddenSize: 32,
    intermediateSize: 48,
    numLayers: 3,
    numHeads: 4,
    numKvHeads: 2,
  });
  config.attention_dropout = 0.2;
  const model = createModel(config, { seed: 5 });
  // residual-stream dropout on too (built at rate 0, seeded from the model's rng)
  for (const [name, d] of model.dropoutSites()) if (name.endsWith('resid_dropout')) d.p = 0.1;
  return model;
}

function gpt2(): CausalLM {
  return createModel(
    gpt2ConfigJson({ vocabSize: VOCAB, hiddenSize: 32, numLayers: 3, numHeads: 4, dropout: 0.2 }),
    {
      seed: 5,
    },
  );
}

function ids(B: number, T: number): Tensor {
  const rng = new Rng(11);
  return fromArray(
    Int32Array.from({ length: B * T }, () => rng.int(VOCAB)),
    [B, T],
    { dtype: 'i32' },
  );
}

/** Loss value, every trainable gradient (by name) and every dropout site's offset after the step. */
function step(model: CausalLM, checkpointing: boolean, T = 6) {
  model.activationCheckpointing = checkpointing;
  model.train();
  model.setDropoutKey(3);
  for (const p of model.parameters()) {
    p.grad?.release();
    p.grad = null;
  }
  const input = ids(2, T);
  const loss = scope(() => {
    const hidden = model.forwardHidden(input);
    const logits = model.logits(reshape(hidden, [-1, hidden.shape[2]!]));
    const labels = fromArray(
      Int32Array.from(input.data as Int32Array, (v) => (v + 1) % VOCAB),
      [2 * T],
      {
        dtype: 'i32',
      },
    );
    const l = crossEntropy(logits, labels);
    const value = (l.data as Float32Array)[0]!;
    backward(l);
    return value;
  });
  input.release();
  const grads = new Map<string, Float32Array>();
  for (const [name, p] of model.namedTrainableParameters()) {
    assert.ok(p.grad, `${name} got a gradient`);
    grads.set(name, Float32Array.from(p.grad.data as Float32Array));
  }
  const offsets = model.dropoutSites().map(([, d]: [string, Dropout]) => d.offset);
  return { loss, grads, offsets };
}

function assertIdentical(model: CausalLM): void {
  const plain = step(model, false);
  const ckpt = step(model, true);
  assert.equal(ckpt.loss, plain.loss);
  assert.deepEqual(ckpt.offsets, plain.offsets, 'dropout streams end where the plain forward leaves them');
  assert.ok(
    plain.offsets.some((o) => o > 0),
    'dropout was active',
  );
  assert.equal(ckpt.grads.size, plain.grads.size);
  for (const [name, g] of plain.grads) {
    const c = ckpt.grads.get(name)!;
    assert.deepEqual(c, g, `${name}: bit-identical gradient`);
  }
}

describe('activation checkpointing', () => {
  it('llama, full fine-tuning with attention and residual dropout: bit-identical loss and gradients', () => {
    assertIdentical(llama());
  });

  it('llama with LoRA (dropout on the adapter input; only the adapter trains): bit-identical', () => {
    const model = llama();
    applyTuner(model, 'lora', {
      r: 4,
      loraAlpha: 8,
      loraDropout: 0.3,
      targetModules: ['q_proj', 'v_proj', 'down_proj'],
    });
    for (const [name, p] of model.namedParameters())
      if (name.endsWith('lora_B.weight')) p.fillWith((i) => 0.01 * ((i % 7) - 3));
    assertIdentical(model);
  });

  it('gpt2, full fine-tuning with dropout: bit-identical', () => {
    assertIdentical(gpt2());
  });

  it('the replay is not vacuous: another dropout key gives other gradients', () => {
    const model = llama();
    const a = step(model, true);
    const setKey = model.setDropoutKey.bind(model);
    model.setDropoutKey = () => setKey(4);
    const b = step(model, true);
    const name = 'model.layers.0.mlp.up_proj.weight';
    assert.notDeepEqual(b.grads.get(name), a.grads.get(name));
  });
});

describe('activation checkpointing memory', () => {
  it('a deeper llama: lower peak pool bytes during the step, and no buffer leaks', () => {
    const config = llamaConfigJson({
      vocabSize: VOCAB,
      hiddenSize: 64,
      intermediateSize: 128,
      numLayers: 6,
      numHeads: 4,
      numKvHeads: 2,
    });
    const model = createModel(config, { seed: 2 });
    const measure = (checkpointing: boolean) => {
      step(model, checkpointing, 64); // warm the pool
      for (const p of model.parameters()) {
        p.grad?.release();
        p.grad = null;
      }
      const before = pool.snapshot().liveBytes;
      pool.resetPeak();
      step(model, checkpointing, 64);
      for (const p of model.parameters()) {
        p.grad?.release();
        p.grad = null;
      }
      return { peak: pool.snapshot().peakLiveBytes - before, leaked: pool.snapshot().liveBytes - before };
    };
    const plain = measure(false);
    const ckpt = measure(true);
    assert.equal(plain.leaked, 0);
    assert.equal(ckpt.leaked, 0, 'the recompute frees everything it made');
    assert.ok(ckpt.peak < plain.peak, `peak with checkpointing ${ckpt.peak} < without ${plain.peak}`);
  });
});

describe('checkpoint (tensor op)', () => {
  it('gradients of inputs and parameters match the recorded computation; state restored for the recompute', () => {
    const x = fromArray(Float32Array.from([1, -2, 3, 0.5]), [4], { requiresGrad: true });
    const w = fromArray(Float32Array.from([0.5, 1.5, -1, 2]), [4], { requiresGrad: true });
    let calls = 0;
    let counter = 0;
    const out = checkpoint(
      ([t]) => {
        calls++;
        counter++;
        return mul(mul(t!, t!), w);
      },
      [x],
      {
        parameters: [w],
        captureState: () => {
          const saved = counter;
          return () => {
            counter = saved;
          };
        },
      },
    );
    assert.equal(out.node?.op, 'checkpoint');
    assert.equal(counter, 1);
    backward(sum(out));
    assert.equal(calls, 2, 'recomputed once in backward');
    assert.equal(counter, 1, 'state is put back where the forward left it');
    // d/dx sum(x^2 w) = 2 x w, d/dw = x^2
    assert.deepEqual(Array.from(x.grad!.data as Float32Array), [1, -6, -6, 2]);
    assert.deepEqual(Array.from(w.grad!.data as Float32Array), [1, 4, 9, 0.25]);
  });

  it('records nothing when nothing requires grad', () => {
    const x = fromArray(Float32Array.from([1, 2]), [2]);
    const out = checkpoint(([t]) => mul(t!, t!), [x]);
    assert.equal(out.node, null);
  });
});

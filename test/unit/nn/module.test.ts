import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TensorMismatchError } from '../../../src/errors.ts';
import {
  Dropout,
  Embedding,
  Linear,
  Module,
  ModuleError,
  ModuleList,
  Parameter,
  RMSNorm,
  StateDictError,
} from '../../../src/nn/index.ts';
import { fromArray, pool, Rng, scope, type Tensor, zeros } from '../../../src/tensor/index.ts';

class Attention extends Module {
  q_proj: Linear;
  o_proj: Linear;
  constructor(d: number, rng: Rng) {
    super();
    this.q_proj = this.registerModule('q_proj', new Linear(d, d, { bias: true, rng }));
    this.o_proj = this.registerModule('o_proj', new Linear(d, d, { bias: false, rng }));
  }
}

class Layer extends Module {
  self_attn: Attention;
  input_layernorm: RMSNorm;
  dropout: Dropout;
  constructor(d: number, rng: Rng) {
    super();
    this.self_attn = this.registerModule('self_attn', new Attention(d, rng));
    this.input_layernorm = this.registerModule('input_layernorm', new RMSNorm(d));
    this.dropout = this.registerModule('dropout', new Dropout(0.1, { rng }));
  }
}

class Inner extends Module {
  embed_tokens: Embedding;
  layers: ModuleList<Layer>;
  constructor(vocab: number, d: number, n: number, rng: Rng) {
    super();
    this.embed_tokens = this.registerModule('embed_tokens', new Embedding(vocab, d, { rng }));
    this.layers = this.registerModule(
      'layers',
      new ModuleList(Array.from({ length: n }, () => new Layer(d, rng))),
    );
  }
}

class TinyLM extends Module {
  model: Inner;
  lm_head: Linear;
  constructor(seed: number, vocab = 5, d = 3, n = 2) {
    super();
    const rng = new Rng(seed);
    this.model = this.registerModule('model', new Inner(vocab, d, n, rng));
    this.lm_head = this.registerModule('lm_head', new Linear(d, vocab, { bias: false, rng }));
  }
}

const EXPECTED_NAMES = [
  'model.embed_tokens.weight',
  'model.layers.0.self_attn.q_proj.weight',
  'model.layers.0.self_attn.q_proj.bias',
  'model.layers.0.self_attn.o_proj.weight',
  'model.layers.0.input_layernorm.weight',
  'model.layers.1.self_attn.q_proj.weight',
  'model.layers.1.self_attn.q_proj.bias',
  'model.layers.1.self_attn.o_proj.weight',
  'model.layers.1.input_layernorm.weight',
  'lm_head.weight',
];

function snapshot(m: Module): Map<string, number[]> {
  return new Map([...m.stateDict()].map(([k, t]) => [k, t.toArray()]));
}

describe('Module', () => {
  it('names parameters with Hub-style dotted paths', () => {
    const m = new TinyLM(1);
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      EXPECTED_NAMES,
    );
    assert.deepEqual([...m.stateDict().keys()], EXPECTED_NAMES);
    assert.equal(m.parameters().length, EXPECTED_NAMES.length);
    assert.deepEqual(m.namedParameters()[1]![1].shape, [3, 3]);
    const modules = m.namedModules().map(([n]) => n);
    assert.deepEqual(modules.slice(0, 6), [
      '',
      'model',
      'model.embed_tokens',
      'model.layers',
      'model.layers.0',
      'model.layers.0.self_attn',
    ]);
    assert.ok(modules.includes('model.layers.1.dropout'));
    assert.equal(m.getSubmodule('model.layers.1.self_attn.q_proj'), m.model.layers.at(1).self_attn.q_proj);
    assert.equal(m.getParameter('lm_head.weight'), m.lm_head.weight);
    assert.throws(() => m.getSubmodule('model.layers.7'), /no submodule 'model.layers.7' \(no child '7'\)/);
    assert.equal(m.numParameters(), 5 * 3 + 2 * (9 + 3 + 9 + 3) + 15);
  });

  it('is deterministic given a seed', () => {
    assert.deepEqual(snapshot(new TinyLM(7)), snapshot(new TinyLM(7)));
    assert.notDeepEqual(snapshot(new TinyLM(7)), snapshot(new TinyLM(8)));
  });

  it('switches train/eval on the whole tree', () => {
    const m = new TinyLM(1);
    assert.ok(m.modules().every((x) => x.training));
    m.eval();
    assert.ok(m.modules().every((x) => !x.training));
    m.train();
    assert.ok(m.model.layers.at(0).dropout.training);
  });

  it('lists trainable parameters after freezing', () => {
    const m = new TinyLM(1);
    m.freeze();
    assert.equal(m.trainableParameters().length, 0);
    m.lm_head.weight.unfreeze();
    m.model.layers.at(1).self_attn.q_proj.bias!.unfreeze();
    assert.deepEqual(
      m.namedTrainableParameters().map(([n]) => n),
      ['model.layers.1.self_attn.q_proj.bias', 'lm_head.weight'],
    );
    assert.equal(m.numParameters({ trainableOnly: true }), 3 + 15);
  });

  it('round-trips stateDict into another instance', () => {
    const a = new TinyLM(1);
    const b = new TinyLM(2);
    const result = b.loadStateDict(a.stateDict());
    assert.deepEqual(result, { missing: [], unexpected: [] });
    assert.deepEqual(snapshot(b), snapshot(a));
    // copies, not aliases
    assert.notEqual(b.lm_head.weight.data, a.lm_head.weight.data);
  });

  it('reports missing, unexpected and mis-shaped entries and loads nothing', () => {
    const a = new TinyLM(1);
    const target = new TinyLM(2);
    const before = snapshot(target);
    const state = new Map<string, Tensor>(a.stateDict());
    state.delete('model.layers.1.input_layernorm.weight');
    state.set('model.layers.0.mlp.up_proj.weight', zeros([4, 3], { track: false }));
    state.set('lm_head.weight', zeros([3, 5], { track: false }));
    state.set('model.embed_tokens.weight', zeros([5, 3], { dtype: 'f64', track: false }));
    let caught: unknown;
    try {
      target.loadStateDict(state);
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof StateDictError);
    assert.ok(caught instanceof TensorMismatchError);
    assert.deepEqual(caught.missing, ['model.layers.1.input_layernorm.weight']);
    assert.deepEqual(caught.unexpected, ['model.layers.0.mlp.up_proj.weight']);
    assert.deepEqual(
      caught.mismatched.map((m) => m.name),
      ['model.embed_tokens.weight', 'lm_head.weight'],
    );
    const msg = caught.message;
    assert.match(msg, /nothing was loaded/);
    assert.match(msg, /missing \(1\): model\.layers\.1\.input_layernorm\.weight \[3\] f32/);
    assert.match(msg, /unexpected \(1\): model\.layers\.0\.mlp\.up_proj\.weight \[4,3\] f32/);
    assert.match(msg, /lm_head\.weight: expected \[5,3\] f32, found \[3,5\] f32/);
    assert.match(msg, /model\.embed_tokens\.weight: expected \[5,3\] f32, found \[5,3\] f64/);
    assert.deepEqual(snapshot(target), before, 'a failed load must not modify the module');
  });

  it('non-strict loading returns missing/unexpected but still refuses mis-shaped entries', () => {
    const a = new TinyLM(1);
    const target = new TinyLM(2);
    const state = new Map<string, Tensor>(a.stateDict());
    state.delete('lm_head.weight');
    state.set('extra.weight', zeros([1], { track: false }));
    const before = target.lm_head.weight.toArray();
    const result = target.loadStateDict(state, { strict: false });
    assert.deepEqual(result, { missing: ['lm_head.weight'], unexpected: ['extra.weight'] });
    assert.deepEqual(target.lm_head.weight.toArray(), before);
    assert.deepEqual(target.model.embed_tokens.weight.toArray(), a.model.embed_tokens.weight.toArray());
    // strict failure alone suggests the way out
    assert.throws(() => target.loadStateDict(state), /pass \{ strict: false \}/);
    state.set('model.embed_tokens.weight', zeros([2, 2], { track: false }));
    const untouched = snapshot(target);
    assert.throws(() => target.loadStateDict(state, { strict: false }), StateDictError);
    assert.deepEqual(snapshot(target), untouched);
  });

  it('converts dtypes only when asked', () => {
    const m = new Linear(2, 1, { seed: 1, bias: false });
    const state = new Map([['weight', fromArray([0.5, -1.25], [1, 2], { dtype: 'f64', track: false })]]);
    assert.throws(() => m.loadStateDict(state), /weight: expected \[1,2\] f32, found \[1,2\] f64/);
    m.loadStateDict(state, { convertDtype: true });
    assert.deepEqual(m.weight.toArray(), [0.5, -1.25]);
    const bf = new Linear(2, 1, { init: 'zeros', bias: false, dtype: 'bf16' });
    bf.loadStateDict(state, { convertDtype: true });
    assert.deepEqual(bf.weight.toArray(), [0.5, -1.25]);
    assert.equal(bf.weight.requiresGrad, false);
  });

  it('includes persistent buffers in the state, not transient ones', () => {
    class WithBuffers extends Module {
      constructor() {
        super();
        this.registerBuffer('running', fromArray([1, 2], [2], { track: false }));
        this.registerBuffer('cache', fromArray([3], [1], { track: false }), { persistent: false });
        this.registerParameter('w', Parameter.zeros([1]));
      }
    }
    const m = new WithBuffers();
    assert.deepEqual([...m.stateDict().keys()], ['w', 'running']);
    assert.deepEqual(
      m.namedBuffers().map(([n]) => n),
      ['running', 'cache'],
    );
    m.loadStateDict(
      new Map([
        ['w', fromArray([4], [1], { track: false })],
        ['running', fromArray([5, 6], [2], { track: false })],
      ]),
    );
    assert.deepEqual(m.stateDict().get('running')!.toArray(), [5, 6]);
  });

  it('lists tied parameters once for training and under both names in the state', () => {
    const m = new TinyLM(1, 5, 5, 1);
    m.setParameter('lm_head.weight', m.model.embed_tokens.weight);
    assert.equal(m.lm_head.weight, m.model.embed_tokens.weight, 'the property follows the registry');
    const names = m.namedParameters().map(([n]) => n);
    assert.ok(names.includes('model.embed_tokens.weight'));
    assert.ok(!names.includes('lm_head.weight'));
    assert.ok(m.stateDict().has('lm_head.weight'));
  });

  it('replaces submodules by path and keeps typed properties in step', () => {
    const m = new TinyLM(1);
    const replacement = new Linear(3, 3, { seed: 9 });
    m.setSubmodule('model.layers.1.self_attn.q_proj', replacement);
    assert.equal(m.model.layers.at(1).self_attn.q_proj, replacement);
    const newLayer = new Layer(3, new Rng(3));
    m.setSubmodule('model.layers.0', newLayer);
    assert.equal(m.model.layers.at(0), newLayer);
    assert.equal([...m.model.layers][0], newLayer);
    assert.throws(() => m.setSubmodule('model.nope', replacement), /no submodule 'model.nope'/);
  });

  it('rejects bad registrations', () => {
    const m = new Module();
    assert.throws(() => m.registerParameter('a.b', Parameter.zeros([1])), ModuleError);
    m.registerParameter('w', Parameter.zeros([1]));
    assert.throws(() => m.registerModule('w', new Module()), /already registered/);
    assert.throws(() => new ModuleList().at(0), /index 0 is out of range/);
  });
});

describe('Parameter', () => {
  it('is untracked: scopes and backward never free it', () => {
    const live = pool.snapshot().liveBytes;
    const p = scope(() => Parameter.full([4], 2));
    assert.ok(!p.isReleased);
    assert.deepEqual(p.toArray(), [2, 2, 2, 2]);
    assert.equal(pool.snapshot().liveBytes, live, 'parameters do not use pooled buffers');
  });

  it('freezes and unfreezes; bf16 is storage only', () => {
    const p = Parameter.zeros([2]);
    assert.ok(p.trainable);
    p.grad = zeros([2], { track: false });
    const g = p.grad;
    p.freeze();
    assert.equal(p.requiresGrad, false);
    assert.equal(p.grad, null);
    assert.ok(g.isReleased);
    p.unfreeze();
    assert.ok(p.requiresGrad);
    const bf = Parameter.full([2], 1.5, 'bf16');
    assert.equal(bf.requiresGrad, false);
    assert.deepEqual(bf.toArray(), [1.5, 1.5]);
    assert.throws(() => bf.unfreeze(), /only f32\/f64 parameters can be trained/);
  });
});

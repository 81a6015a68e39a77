import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Dropout, Embedding, forceDropout, LayerNorm, Module, RMSNorm } from '../../../src/nn/index.ts';
import { fromArray, ones, Rng, type Tensor } from '../../../src/tensor/index.ts';
import { gradCheck, input64 } from '../../helpers/gradcheck.ts';

function close(a: readonly number[], b: readonly number[], tol: number, what: string): void {
  assert.equal(a.length, b.length, what);
  a.forEach((x, i) => {
    assert.ok(Math.abs(x - b[i]!) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`);
  });
}

describe('Embedding', () => {
  it('initialises N(0, 1) from the generator and gathers rows', () => {
    const e = new Embedding(6, 4, { seed: 2 });
    assert.deepEqual(e.weight.shape, [6, 4]);
    const rng = new Rng(2);
    assert.deepEqual(
      e.weight.toArray(),
      Array.from({ length: 24 }, () => Math.fround(rng.normal())),
    );
    const ids = fromArray([[5, 0, 5]], undefined, { dtype: 'i32' });
    const out = e.forward(ids);
    assert.deepEqual(out.shape, [1, 3, 4]);
    const w = e.weight.toArray();
    assert.deepEqual(out.toArray(), [...w.slice(20, 24), ...w.slice(0, 4), ...w.slice(20, 24)]);
  });

  it('gradient w.r.t. the table (finite differences, f64)', () => {
    const e = new Embedding(5, 3, { seed: 1, dtype: 'f64' });
    const ids = fromArray([1, 3, 1, 0], [2, 2], { dtype: 'i32', track: false });
    gradCheck(
      'embedding',
      (table: Tensor) => {
        assert.equal(table, e.weight); // the check perturbs the table in place; forward reads it
        return e.forward(ids);
      },
      [e.weight],
    );
  });
});

describe('RMSNorm', () => {
  it('normalises by the root mean square and scales by the weight (ones at init)', () => {
    const n = new RMSNorm(4, 1e-6);
    assert.deepEqual(n.weight.toArray(), [1, 1, 1, 1]);
    const x = fromArray([[1, 2, 3, 4]]);
    const rms = Math.sqrt((1 + 4 + 9 + 16) / 4 + 1e-6);
    close(n.forward(x).toArray(), [1 / rms, 2 / rms, 3 / rms, 4 / rms], 1e-6, 'rmsnorm');
    n.weight.copyFrom(fromArray([2, 2, 2, 2]));
    close(n.forward(x).toArray(), [2 / rms, 4 / rms, 6 / rms, 8 / rms], 1e-6, 'scaled');
    assert.throws(() => new RMSNorm(4, 0), /eps must be a positive number/);
  });

  it('gradients w.r.t. input and weight (finite differences, f64)', () => {
    const n = new RMSNorm(5, 1e-5, { dtype: 'f64' });
    n.weight.copyFrom(input64([5], 3));
    gradCheck('rmsnorm', (x: Tensor) => n.forward(x), [input64([3, 5], 4), n.weight]);
  });
});

describe('LayerNorm', () => {
  it('normalises to zero mean and unit variance, then applies weight and bias', () => {
    const n = new LayerNorm(4);
    assert.deepEqual(n.weight!.toArray(), [1, 1, 1, 1]);
    assert.deepEqual(n.bias!.toArray(), [0, 0, 0, 0]);
    n.bias!.copyFrom(fromArray([1, 0, 0, 0]));
    const x = fromArray([[1, 2, 3, 4]]);
    const rstd = 1 / Math.sqrt(1.25 + 1e-5);
    close(n.forward(x).toArray(), [-1.5 * rstd + 1, -0.5 * rstd, 0.5 * rstd, 1.5 * rstd], 1e-5, 'layernorm');
    assert.deepEqual(
      new LayerNorm(4, 1e-5, { bias: false }).namedParameters().map(([k]) => k),
      ['weight'],
    );
    assert.deepEqual(new LayerNorm(4, 1e-5, { elementwiseAffine: false }).parameters(), []);
  });

  it('gradients w.r.t. input, weight and bias (finite differences, f64)', () => {
    const n = new LayerNorm(4, 1e-5, { dtype: 'f64' });
    n.weight!.copyFrom(input64([4], 5));
    n.bias!.copyFrom(input64([4], 6));
    gradCheck('layernorm', (x: Tensor) => n.forward(x), [input64([3, 4], 7), n.weight!, n.bias!]);
  });
});

describe('Dropout', () => {
  const x = ones([4000], { track: false });

  it('is the identity in eval mode and drops ~p with 1/(1-p) scaling in training', () => {
    const d = new Dropout(0.25, { seed: 1 });
    d.eval();
    assert.equal(d.forward(x), x);
    d.train();
    const y = d.forward(x).toArray();
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(Math.abs(zeros / y.length - 0.25) < 0.03, `dropped ${zeros}`);
    assert.ok(y.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6));
    assert.equal(d.offset, 4000);
  });

  it('is deterministic given a seed, with a fresh mask on every call', () => {
    const a = new Dropout(0.5, { seed: 9 });
    const b = new Dropout(0.5, { seed: 9 });
    const a1 = a.forward(x).toArray();
    const a2 = a.forward(x).toArray();
    assert.deepEqual(b.forward(x).toArray(), a1);
    assert.deepEqual(b.forward(x).toArray(), a2);
    assert.notDeepEqual(a1, a2);
    const fromRng = new Dropout(0.5, { rng: new Rng(4) });
    assert.equal(fromRng.seed, new Rng(4).nextSeed());
    assert.throws(() => new Dropout(0.5), /pass a seed or an rng/);
    assert.throws(() => new Dropout(1, { seed: 1 }), /must be in \[0, 1\)/);
  });

  it('can be forced on at inference (MC dropout) and restored', () => {
    class Net extends Module {
      drop: Dropout;
      constructor() {
        super();
        this.drop = this.registerModule('drop', new Dropout(0, { seed: 3 }));
      }
    }
    const net = new Net().eval();
    assert.equal(net.drop.forward(x), x);
    forceDropout(net, 0.5);
    assert.equal(net.drop.activeRate(), 0.5);
    const y = net.drop.forward(x).toArray();
    assert.ok(y.some((v) => v === 0) && y.some((v) => v === 2));
    forceDropout(net, null);
    assert.equal(net.drop.forward(x), x);
  });
});

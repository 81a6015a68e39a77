/**
 * matmul in bf16 compute (`precision: 'bf16'`, `matmulBf16`) on the active backend, forward and
 * both backward GEMMs, against plain f64 references on random inputs:
 * - against the f32 product (inputs not rounded): within the bf16 tolerance
 *   |got - ref| <= 2^-7 * sum_k |a_ik b_kj| (bf16 keeps 8 significant bits: each input is rounded
 *   with relative error <= 2^-8, so each product with <= 2^-7 + 2^-16),
 *   and off it by more than f32 noise somewhere (the inputs really are rounded);
 * - against the product of the bf16-rounded inputs: within f32 accumulation error (1e-7 K).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { roundToBf16 } from '../../../src/backend/js/gemm-bf16.ts';
import {
  backward,
  fromArray,
  matmul,
  matmulBf16,
  mul,
  Rng,
  sum,
  type Tensor,
} from '../../../src/tensor/index.ts';

const BF16_TOL = 2 ** -7 + 2 ** -15;

interface Case {
  a: number[];
  b: number[];
  transA: boolean;
  transB: boolean;
  /** b stored in bf16 (a frozen weight): no gradient wrt b. */
  bBf16?: boolean;
}

const CASES: Case[] = [
  { a: [5, 7], b: [7, 3], transA: false, transB: false },
  { a: [7, 5], b: [7, 3], transA: true, transB: false },
  { a: [5, 7], b: [3, 7], transA: false, transB: true },
  { a: [7, 5], b: [3, 7], transA: true, transB: true },
  { a: [2, 6, 33], b: [17, 33], transA: false, transB: true },
  { a: [2, 5, 4], b: [2, 4, 3], transA: false, transB: false },
  { a: [9, 65], b: [11, 65], transA: false, transB: true, bBf16: true },
];

function randomValues(n: number, rng: Rng): number[] {
  return Array.from({ length: n }, () => rng.normal());
}

/** Dense row-major [batch][M][K] of op(x) from storage of shape `shape` (batch broadcast to `batch`). */
function opMatrix(x: ArrayLike<number>, shape: number[], trans: boolean, batch: number): number[][][] {
  const R = shape[shape.length - 2]!;
  const C = shape[shape.length - 1]!;
  const own = shape.length > 2 ? shape.slice(0, -2).reduce((p, d) => p * d, 1) : 1;
  const out: number[][][] = [];
  for (let bi = 0; bi < batch; bi++) {
    const base = (own === 1 ? 0 : bi) * R * C;
    const rows = trans ? C : R;
    const cols = trans ? R : C;
    const m: number[][] = [];
    for (let i = 0; i < rows; i++) {
      const row: number[] = [];
      for (let j = 0; j < cols; j++) row.push(x[base + (trans ? j * C + i : i * C + j)]!);
      m.push(row);
    }
    out.push(m);
  }
  return out;
}

/** C = X Y per batch; also sum |x||y| per element (the bf16 error scale). */
function product(X: number[][][], Y: number[][][], round: boolean): { c: number[][][]; abs: number[][][] } {
  const r = (v: number) => (round ? roundToBf16(v) : v);
  const c: number[][][] = [];
  const abs: number[][][] = [];
  for (let bi = 0; bi < X.length; bi++) {
    const x = X[bi]!;
    const y = Y[bi]!;
    const M = x.length;
    const K = y.length;
    const N = y[0]!.length;
    const cb: number[][] = [];
    const ab: number[][] = [];
    for (let i = 0; i < M; i++) {
      const cr: number[] = [];
      const ar: number[] = [];
      for (let j = 0; j < N; j++) {
        let s = 0;
        let sa = 0;
        for (let k = 0; k < K; k++) {
          const p = r(x[i]![k]!) * r(y[k]![j]!);
          s += p;
          sa += Math.abs(x[i]![k]! * y[k]![j]!);
        }
        cr.push(s);
        ar.push(sa);
      }
      cb.push(cr);
      ab.push(ar);
    }
    c.push(cb);
    abs.push(ab);
  }
  return { c, abs };
}

function transpose(X: number[][][]): number[][][] {
  return X.map((m) => m[0]!.map((_, j) => m.map((row) => row[j]!)));
}

/** Check `got` (dense [batch][R][C], possibly the transpose of the reference layout) against the references. */
function checkAgainst(
  what: string,
  got: number[][][],
  exact: { c: number[][][]; abs: number[][][] },
  rounded: { c: number[][][] },
  K: number,
): void {
  let maxRel = 0;
  for (let bi = 0; bi < got.length; bi++) {
    for (let i = 0; i < got[bi]!.length; i++) {
      for (let j = 0; j < got[bi]![i]!.length; j++) {
        const g = got[bi]![i]![j]!;
        const scale = exact.abs[bi]![i]![j]!;
        const e = exact.c[bi]![i]![j]!;
        const r = rounded.c[bi]![i]![j]!;
        assert.ok(
          Math.abs(g - e) <= BF16_TOL * scale + 1e-30,
          `${what} [${bi},${i},${j}]: ${g} vs f32 ${e}: off by ${Math.abs(g - e)} > 2^-7 * ${scale}`,
        );
        assert.ok(
          Math.abs(g - r) <= 1e-7 * K * scale + 1e-30,
          `${what} [${bi},${i},${j}]: ${g} vs rounded-input product ${r}: inputs not rounded to bf16 as specified?`,
        );
        if (scale > 0) maxRel = Math.max(maxRel, Math.abs(g - e) / scale);
      }
    }
  }
  assert.ok(maxRel > 2 ** -16, `${what}: identical to the f32 product (max rel ${maxRel}): not bf16 compute`);
}

/** The storage-layout gradient as dense op-layout matrices [batch][rows][cols] (opM x opK). */
function gradOp(t: Tensor, shape: number[], trans: boolean, batch: number): number[][][] {
  return opMatrix(t.toArray(), shape, trans, batch);
}

describe('matmulBf16', () => {
  for (const c of CASES) {
    const name = `${JSON.stringify(c.a)}${c.transA ? 'ᵀ' : ''} x ${JSON.stringify(c.b)}${c.transB ? 'ᵀ' : ''}${c.bBf16 ? ' (bf16 b)' : ''}`;
    it(`forward and gradients ${name} within bf16 tolerance of f32`, () => {
      const rng = new Rng(c.a.length * 100 + c.b.reduce((p, d) => p + d, 0));
      const aSize = c.a.reduce((p, d) => p * d, 1);
      const bSize = c.b.reduce((p, d) => p * d, 1);
      const av = randomValues(aSize, rng);
      let bv = randomValues(bSize, rng);
      if (c.bBf16) bv = bv.map(roundToBf16);
      const a = fromArray(av, c.a, { requiresGrad: true });
      // a bf16 b holds bv exactly (bv was rounded to bf16 above)
      const b = c.bBf16 ? fromArray(bv, c.b, { dtype: 'bf16' }) : fromArray(bv, c.b, { requiresGrad: true });
      const y = matmulBf16(a, b, { transA: c.transA, transB: c.transB });
      const batch = y.rank > 2 ? y.shape.slice(0, -2).reduce((p, d) => p * d, 1) : 1;
      const aBatch = c.a.length > 2 && !(c.b.length === 2 && !c.transA) ? batch : 1;
      // folded [.., M, K] x [K, N] treats a as one [B*M, K] matrix
      const folded = c.a.length > 2 && c.b.length === 2 && !c.transA;
      const aShape = folded ? [aSize / c.a[c.a.length - 1]!, c.a[c.a.length - 1]!] : c.a;
      const yBatch = folded ? 1 : batch;
      const A = opMatrix(av, aShape, c.transA, folded ? 1 : aBatch);
      const B = opMatrix(bv, c.b, c.transB, yBatch);
      const K = B[0]!.length;
      const yDense = opMatrix(
        y.toArray(),
        folded ? [A[0]!.length, B[0]![0]!.length] : [...y.shape],
        false,
        yBatch,
      );
      checkAgainst(`forward ${name}`, yDense, product(A, B, false), product(A, B, true), K);
      // gradients through sum(y * G): dy = G exactly
      const gv = randomValues(y.size, rng);
      const G = fromArray(gv, [...y.shape]);
      backward(sum(mul(y, G)));
      const Gd = opMatrix(gv, folded ? [A[0]!.length, B[0]![0]!.length] : [...y.shape], false, yBatch);
      // d op(A) = G op(B)^T, d op(B) = op(A)^T G
      const N = B[0]![0]!.length;
      checkAgainst(
        `d a ${name}`,
        gradOp(a.grad!, aShape, c.transA, folded ? 1 : aBatch),
        product(Gd, transpose(B), false),
        product(Gd, transpose(B), true),
        N,
      );
      if (!c.bBf16) {
        const M = A[0]!.length;
        checkAgainst(
          `d b ${name}`,
          gradOp(b.grad!, c.b, c.transB, yBatch),
          product(transpose(A), Gd, false),
          product(transpose(A), Gd, true),
          M,
        );
      } else {
        assert.equal(b.grad, null);
      }
    });
  }

  it('equals matmul with precision bf16, and f32 precision is plain sgemm', () => {
    const rng = new Rng(3);
    const a = fromArray(randomValues(12, rng), [3, 4]);
    const b = fromArray(randomValues(20, rng), [5, 4]);
    assert.deepEqual(
      matmulBf16(a, b, { transB: true }).toArray(),
      matmul(a, b, { transB: true, precision: 'bf16' }).toArray(),
    );
    assert.deepEqual(
      matmul(a, b, { transB: true, precision: 'f32' }).toArray(),
      matmul(a, b, { transB: true }).toArray(),
    );
    assert.throws(
      () => matmul(a, b, { transB: true, precision: 'fp8' as 'f32' }),
      /matmul: precision must be 'f32' or 'bf16', found 'fp8'/,
    );
  });
});

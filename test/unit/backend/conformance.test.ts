/**
 * Conformance, driven by the kernel manifest: every kernel of src/backend/manifest.ts runs on the
 * native addon and on the js oracle with the same random inputs at edge sizes (0 where legal, 1,
 * odd sizes, sizes that are not multiples of the SIMD width: 17, 33, 65, ...), and every array
 * argument (outputs, and inputs, which must stay untouched) and the return value must agree. The
 * inputs are built from the manifest's argument list (conformance-cases.ts gives the points), so a
 * kernel added to the manifest without a case fails here.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { jsKernels as js } from '../../../src/backend/js/index.ts';
import type { Kernels } from '../../../src/backend/kernels.ts';
import { type ArgSpec, KERNEL_NAMES, KERNELS, type KernelName } from '../../../src/backend/manifest.ts';
import { type ArgValue, CASES, type Point } from './conformance-cases.ts';
import { assertClose, describeNative, rand } from './native-helpers.ts';

/** Elements a manifest `len` (a product of argument names and integers) asks for. */
export function evalLen(expr: string, nums: Record<string, number>, where: string): number {
  return expr.split('*').reduce((acc, term) => {
    if (/^\d+$/.test(term)) return acc * Number(term);
    const v = nums[term];
    if (v === undefined) throw new Error(`${where}: len '${expr}' names '${term}', which the point lacks`);
    return acc * v;
  }, 1);
}

const isTyped = (v: unknown): v is ArrayLike<number> & { slice(): unknown } => ArrayBuffer.isView(v);

/** The argument list of one point, in manifest order. */
function buildArgs(name: KernelName, raw: Point, seed: number): unknown[] {
  const where = `${name} ${JSON.stringify(raw)}`;
  const nums: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === 'number') nums[k] = v;
  const supplied: Record<string, ArgValue> = CASES[name].arrays?.(nums, seed, raw) ?? {};
  const specs: readonly ArgSpec[] = KERNELS[name].args;
  return specs.map((a, i) => {
    if (a.name in supplied) return supplied[a.name];
    if (a.name in raw) return raw[a.name];
    if (a.len !== undefined) {
      const n = evalLen(a.len, nums, where);
      if (a.kind === 'float' || a.kind === 'float32') return rand(n, seed + 31 * (i + 1));
      // Integer outputs start at zero on both backends.
      if (a.role === 'out' && a.kind === 'u16') return new Uint16Array(n);
      if (a.role === 'out' && a.kind === 'i32') return new Int32Array(n);
    }
    throw new Error(`${where}: the conformance case supplies no value for argument '${a.name}' (${a.kind})`);
  });
}

/** A deep copy: typed arrays and the arrays of an outputs record are copied, the rest shared. */
function clone(v: unknown): unknown {
  if (isTyped(v)) return v.slice();
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
  }
  return v;
}

/** The typed arrays of one argument value, labelled. */
function arraysOf(label: string, v: unknown): [string, ArrayLike<number>][] {
  if (isTyped(v)) return [[label, v]];
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.entries(v).flatMap(([k, x]) => arraysOf(`${label}.${k}`, x));
  }
  return [];
}

function call(k: Kernels, name: KernelName, args: unknown[]): unknown {
  return (k[name] as (...a: unknown[]) => unknown)(...args);
}

describe('kernel conformance cases', () => {
  it('every manifest kernel has a case with points, and every case names a manifest kernel', () => {
    const missing = KERNEL_NAMES.filter((n) => !CASES[n] || CASES[n].points.length === 0);
    assert.deepEqual(missing, [], `kernels without a conformance case: ${missing.join(', ')}`);
    const extra = Object.keys(CASES).filter((n) => !(KERNEL_NAMES as string[]).includes(n));
    assert.deepEqual(extra, [], `cases for kernels the manifest lacks: ${extra.join(', ')}`);
  });

  it('every case point builds a full argument list for its kernel (js runs it)', () => {
    for (const name of KERNEL_NAMES) {
      CASES[name].points.forEach((raw, i) => {
        const args = buildArgs(name, raw, 1 + i);
        assert.equal(args.length, KERNELS[name].args.length);
        call(js, name, args);
      });
    }
  });

  it('each kernel has a point with a size of 1 and one of an odd size above a SIMD width', () => {
    for (const name of KERNEL_NAMES) {
      // Sizes are the numbers of a point and the dimensions of its shapes ('5x33').
      const sizes = CASES[name].points.flatMap((p) =>
        Object.values(p).flatMap((v) =>
          typeof v === 'number'
            ? [v]
            : typeof v === 'string' && /^\d+(x\d+)*$/.test(v)
              ? v.split('x').map(Number)
              : [],
        ),
      );
      assert.ok(sizes.includes(1), `${name}: no point with a size of 1`);
      assert.ok(
        sizes.some((s) => Number.isInteger(s) && s > 16 && s % 2 === 1),
        `${name}: no point with an odd size above 16`,
      );
    }
  });
});

/** A value of the wrong kind for an argument, and the error it must raise. */
const WRONG: Record<ArgSpec['kind'], [unknown, RegExp]> = {
  float: [new Float64Array(4), /is a Float64Array: native kernels take Float32Array/],
  float32: [new Int32Array(4), /must be a Float32Array/],
  floatOrBf16: [new Int32Array(4), /must be a Float32Array or a Uint16Array/],
  i32: [new Float32Array(4), /must be an Int32Array/],
  u16: [new Float32Array(4), /must be a Uint16Array/],
  numeric: [[1, 2], /must be a typed array/],
  count: [-1, /must be a non-negative integer/],
  int: [1.5, /must be an integer/],
  number: ['1', /must be a number/],
  boolean: [1, /must be a boolean/],
  choice: ['no_such_op', /unknown op 'no_such_op'|unknown \w+ 'no_such_op'/],
  dims: [5, /must be an array of integers/],
  lceOuts: [5, /must be an object/],
};

describeNative('native argument checks come from the manifest', (nk) => {
  for (const name of KERNEL_NAMES) {
    it(name, () => {
      const args = buildArgs(name, CASES[name].points[0]!, 5);
      assert.throws(() => call(nk, name, args.slice(0, -1)), {
        name: 'TypeError',
        message: `${name}: expected ${args.length} arguments, got ${args.length - 1}`,
      });
      KERNELS[name].args.forEach((a: ArgSpec, i) => {
        const [value, message] = WRONG[a.kind];
        const bad = args.map(clone);
        bad[i] = value;
        assert.throws(
          () => call(nk, name, bad),
          (err: Error) => {
            assert.ok(err.message.startsWith(`${name}: `), err.message);
            assert.ok(err.message.includes(a.name), `${err.message} names ${a.name}`);
            assert.match(err.message, message);
            return true;
          },
        );
        if (!a.optional) {
          bad[i] = null;
          assert.throws(() => call(nk, name, bad), /must be/, `${name}: null ${a.name}`);
        }
      });
    });
  }
});

describeNative('kernel conformance: native vs js on every manifest kernel', (nk) => {
  for (const name of KERNEL_NAMES) {
    it(name, () => {
      const c = CASES[name];
      const tol = { rtol: c.rtol ?? 1e-5, atol: c.atol ?? 1e-6 };
      c.points.forEach((raw, i) => {
        const args = buildArgs(name, raw, 1000 + 17 * i);
        const jsArgs = args.map(clone);
        const nArgs = args.map(clone);
        const want = call(js, name, jsArgs);
        const got = call(nk, name, nArgs);
        const where = `${name} ${JSON.stringify(raw)}`;
        if (typeof want === 'number') assertClose(`${where} return value`, [got as number], [want], tol);
        else assert.equal(got, want, `${where}: return value`);
        KERNELS[name].args.forEach((a, j) => {
          const w = arraysOf(a.name, jsArgs[j]);
          const g = arraysOf(a.name, nArgs[j]);
          w.forEach(([label, arr], k) => {
            assertClose(`${where} ${label}`, g[k]![1], arr, tol);
          });
        });
      });
    });
  }
});

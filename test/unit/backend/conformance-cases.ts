/**
 * One conformance case per manifest kernel (the Record type makes a kernel without a case fail
 * `tsc`; conformance.test.ts also checks it at run time). A case lists points: values for the
 * kernel's scalar arguments, by manifest name. Arrays whose manifest entry has a `len` are filled
 * with uniform [-1, 1) f32 values of that length unless `arrays` supplies them; `arrays` must supply
 * every other array (indices, labels, strided views, GEMM operands).
 */
import { jsKernels as js } from '../../../src/backend/js/index.ts';
import type { LinearCrossEntropyOutputs } from '../../../src/backend/kernels.ts';
import { BINARY_OPS, type KernelName, REDUCE_OPS, UNARY_OPS } from '../../../src/backend/manifest.ts';
import { rand, randBf16, randInt } from './native-helpers.ts';

export type Scalar = number | boolean | string;
export type Point = Record<string, Scalar>;
/** An argument value the case supplies (null for an optional argument left out). */
export type ArgValue =
  | Float32Array
  | Float64Array
  | Int32Array
  | Uint16Array
  | readonly number[]
  | LinearCrossEntropyOutputs
  | null;

export interface ConformanceCase {
  points: Point[];
  /** Arrays (and optional arguments set to null) for one point; `seed` differs per point. */
  arrays?: (p: Record<string, number>, seed: number, raw: Point) => Record<string, ArgValue>;
  /** Tolerance of native against js (assertClose in native-helpers.ts). */
  rtol?: number;
  atol?: number;
}

/** Edge sizes of 1-d kernels: empty, one, odd, and not multiples of 4/8/16-wide vectors. */
export const EDGE_N = [0, 1, 3, 17, 33, 65, 1001];
/** [rows, cols] of row-wise kernels. */
const ROWS_COLS: [number, number][] = [
  [0, 5],
  [1, 1],
  [3, 17],
  [2, 33],
  [5, 65],
  [1, 1000],
];

const nPoints = (extra: Point = {}): Point[] => EDGE_N.map((n) => ({ n, ...extra }));
const rowsColsPoints = (extra: Point = {}): Point[] =>
  ROWS_COLS.map(([rows, cols]) => ({ rows, cols, ...extra }));

/** Input range and parameter per unary op (inside each op's domain). */
const UNARY_RANGE: Record<(typeof UNARY_OPS)[number], [number, number, number]> = {
  neg: [-3, 3, 0],
  exp: [-20, 20, 0],
  log: [0.01, 10, 0],
  sqrt: [0.01, 10, 0],
  rsqrt: [0.01, 10, 0],
  abs: [-3, 3, 0],
  tanh: [-5, 5, 0],
  sigmoid: [-30, 30, 0],
  relu: [-3, 3, 0],
  silu: [-30, 30, 0],
  gelu_tanh: [-6, 6, 0],
  gelu_erf: [-6, 6, 0],
  softplus: [-30, 30, 0],
  square: [-3, 3, 0],
  pow: [0.1, 3, 2.5],
  add_scalar: [-3, 3, 1.25],
  mul_scalar: [-3, 3, -0.75],
};

const unaryPoints = (): Point[] =>
  UNARY_OPS.flatMap((op) => EDGE_N.map((n) => ({ op, n, param: UNARY_RANGE[op][2] })));

/** Contiguous row-major strides of a shape. */
function contiguous(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) s[d] = s[d + 1]! * shape[d + 1]!;
  return s;
}
/** Strides that broadcast dimension 0 (stride 0) when the rank allows, else contiguous. */
function broadcastFirst(shape: readonly number[]): { strides: number[]; len: number } {
  if (shape.length < 2) return { strides: contiguous(shape), len: shape.reduce((a, b) => a * b, 1) };
  const inner = shape.slice(1);
  return { strides: [0, ...contiguous(inner)], len: inner.reduce((a, b) => a * b, 1) };
}
const SHAPES: number[][] = [[0], [1], [17], [5, 33], [3, 1, 65], [2, 3, 7]];
const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
/** Values on a 1/4 grid, so eq / max / min meet ties. */
const grid = (n: number, seed: number, lo: number, hi: number) =>
  rand(n, seed, lo, hi).map((x) => Math.round(x * 4) / 4);

/** Labels in [0, V) with every third row ignored (-100). */
function labelsFor(n: number, V: number, seed: number): Int32Array {
  const l = randInt(n, seed, 0, Math.max(V, 1));
  for (let i = 0; i < n; i += 3) l[i] = -100;
  return l;
}
function lceOuts(N: number): LinearCrossEntropyOutputs {
  return {
    lse: rand(N, 1),
    logp: rand(N, 2),
    entropy: rand(N, 3),
    argmax: new Int32Array(N),
    top1: rand(N, 4),
    top2: rand(N, 5),
  };
}

const GEMM_SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [17, 33, 65],
  [65, 17, 33],
  [3, 5, 0],
  [0, 4, 4],
  [33, 1, 17],
  [7, 9, 130],
];

const ATTN: Point[] = [
  { B: 0, Tq: 3, Tk: 3, Hq: 2, Hkv: 1, D: 4, causal: true, dropP: 0 },
  { B: 1, Tq: 1, Tk: 1, Hq: 1, Hkv: 1, D: 1, causal: false, dropP: 0 },
  { B: 2, Tq: 5, Tk: 5, Hq: 4, Hkv: 2, D: 17, causal: true, dropP: 0 },
  { B: 1, Tq: 17, Tk: 33, Hq: 2, Hkv: 1, D: 65, causal: true, dropP: 0 },
  { B: 1, Tq: 3, Tk: 7, Hq: 3, Hkv: 3, D: 8, causal: false, dropP: 0.25 },
  { B: 1, Tq: 16, Tk: 16, Hq: 2, Hkv: 2, D: 33, causal: true, dropP: 0.1 },
].map((p) => ({ ...p, scale: 1 / Math.sqrt(p.D), seed: 11 }));

/** The backward's arrays: q, k, v and the out and lse of `forward` on them, as the backward expects. */
function attnBackwardArrays(forward: typeof js.attention): ConformanceCase['arrays'] {
  return (p, seed, raw) => {
    const nq = p.B! * p.Tq! * p.Hq! * p.D!;
    const nk = p.B! * p.Tk! * p.Hkv! * p.D!;
    const [q, k, v] = [rand(nq, seed), rand(nk, seed + 1), rand(nk, seed + 2)];
    const out = new Float32Array(nq);
    const lse = new Float32Array(p.B! * p.Hq! * p.Tq!);
    const dims = [p.B!, p.Tq!, p.Tk!, p.Hq!, p.Hkv!, p.D!] as const;
    forward(q, k, v, out, lse, ...dims, p.scale!, raw.causal === true, p.dropP!, p.seed!);
    return { q, k, v, out, lse };
  };
}

/** sgemm's points, also those of gemmBf16 (the same arguments). */
const SGEMM_CASE: ConformanceCase = {
  points: GEMM_SHAPES.flatMap(([M, N, K]) =>
    [false, true].flatMap((transA) =>
      [false, true].flatMap((transB) => [
        { transA, transB, M, N, K, bBf16: false, beta: 0, batch: 1 },
        { transA, transB, M, N, K, bBf16: true, beta: 0.5, batch: 2 },
      ]),
    ),
  ).map((p) => {
    const { M, N, K, transA, transB, batch } = p;
    const [aOffset, bOffset, cOffset] = batch === 2 ? [3, 2, 1] : [0, 0, 0];
    return {
      ...p,
      alpha: 0.75,
      aOffset,
      lda: transA ? M : K,
      bOffset,
      ldb: transB ? K : N,
      cOffset,
      ldc: N,
      strideA: M * K,
      strideB: K * N,
      strideC: M * N,
    };
  }),
  arrays: (p, seed, raw) => ({
    A: rand(p.aOffset! + p.batch! * p.M! * p.K!, seed),
    B: raw.bBf16
      ? randBf16(p.bOffset! + p.batch! * p.K! * p.N!, seed + 1)
      : rand(p.bOffset! + p.batch! * p.K! * p.N!, seed + 1),
    C: rand(p.cOffset! + p.batch! * p.M! * p.N!, seed + 2),
  }),
  rtol: 1e-4,
  atol: 1e-5,
};

/** Code words and scales of n quantised elements (any bits are valid codes). */
function quantArrays(format: string, n: number, seed: number): { codes: Uint16Array; scales: Float32Array } {
  const words = format === 'int8' ? Math.ceil(n / 2) : Math.ceil(n / 4);
  return {
    codes: Uint16Array.from(randInt(words, seed, 0, 65536)),
    scales: rand(Math.ceil(n / 64), seed + 1, 0, 2),
  };
}

/** [M, N, K] of qgemm: odd tails, a K past one 512 tile, N past one 128 tile, few and many rows. */
const QGEMM_SHAPES: [number, number, number][] = [
  [0, 3, 5],
  [1, 1, 1],
  [3, 5, 0],
  [2, 7, 65],
  [5, 130, 17],
  [33, 17, 600],
  [70, 9, 129],
];

export const CASES: Record<KernelName, ConformanceCase> = {
  sgemm: SGEMM_CASE,
  gemmBf16: {
    ...SGEMM_CASE,
    // Both backends round the inputs to bf16 identically, so they differ only by accumulation order
    // (f32 on native, f64 on js) as sgemm does; a wrong rounding (truncation, a missed input) is off
    // by ~2^-9 relative, far outside this.
    rtol: 1e-4,
    atol: 2e-5,
  },
  unary: {
    points: unaryPoints(),
    arrays: (p, seed, raw) => {
      const [lo, hi] = UNARY_RANGE[raw.op as (typeof UNARY_OPS)[number]];
      return { x: rand(p.n!, seed, lo, hi) };
    },
    rtol: 2e-6,
    atol: 1e-6,
  },
  unaryBackward: {
    points: unaryPoints(),
    arrays: (p, seed, raw) => {
      const op = raw.op as (typeof UNARY_OPS)[number];
      const [lo, hi, param] = UNARY_RANGE[op];
      const x = rand(p.n!, seed, lo, hi);
      const y = new Float32Array(p.n!);
      js.unary(op, x, y, p.n!, param);
      return { x, y };
    },
    rtol: 2e-6,
    atol: 1e-6,
  },
  binary: {
    points: BINARY_OPS.flatMap((op) => SHAPES.map((shape) => ({ op, shape: shape.join('x') }))),
    arrays: (_p, seed, raw) => {
      const shape = String(raw.shape).split('x').map(Number);
      const b = broadcastFirst(shape);
      return {
        a: grid(size(shape), seed, -2, 2),
        aStrides: contiguous(shape),
        // b in [0.25, 2]: never 0, so div is defined; shares grid values with a for eq.
        b: grid(b.len, seed + 1, 0.25, 2),
        bStrides: b.strides,
        out: rand(size(shape), seed + 2),
        shape,
      };
    },
    rtol: 1e-6,
    atol: 0,
  },
  where: {
    points: ['f32', 'i32', 'u16'].flatMap((condType) =>
      SHAPES.map((shape) => ({ condType, shape: shape.join('x') })),
    ),
    arrays: (_p, seed, raw) => {
      const shape = String(raw.shape).split('x').map(Number);
      const c = broadcastFirst(shape);
      const bits = randInt(c.len, seed, 0, 2);
      const cond =
        raw.condType === 'f32'
          ? Float32Array.from(bits)
          : raw.condType === 'u16'
            ? Uint16Array.from(bits)
            : bits;
      return {
        cond,
        condStrides: c.strides,
        a: rand(size(shape), seed + 1),
        aStrides: contiguous(shape),
        b: rand(size(shape), seed + 2),
        bStrides: contiguous(shape),
        out: rand(size(shape), seed + 3),
        shape,
      };
    },
    rtol: 0,
    atol: 0,
  },
  copyStrided: {
    // A transposing copy of [r, c] (and a 3-d one) with offsets, over four element types; 40x70 and
    // 96x33 take native's tiled transpose (both dims >= its 32-element tile; partial tiles too).
    points: ['f32', 'f64', 'i32', 'u16'].flatMap((type) =>
      ['0x3', '1x1', '17x33', '5x65', '7x1x9', '40x70', '96x33'].map((shape) => ({
        type,
        shape,
        srcOffset: 2,
        dstOffset: 1,
      })),
    ),
    arrays: (_p, seed, raw) => {
      const shape = String(raw.shape).split('x').map(Number);
      const n = size(shape);
      const srcStrides = contiguous([...shape].reverse()).reverse();
      const make = (len: number, s: number) => {
        const f = rand(len, s, -100, 100);
        if (raw.type === 'f64') return Float64Array.from(f);
        if (raw.type === 'i32') return Int32Array.from(f, Math.round);
        if (raw.type === 'u16') return Uint16Array.from(f, (x) => Math.round(x + 100));
        return f;
      };
      return {
        src: make(n + 2, seed),
        srcStrides,
        dst: make(n + 1, seed + 1),
        dstStrides: contiguous(shape),
        shape,
      };
    },
    rtol: 0,
    atol: 0,
  },
  reduce: {
    points: REDUCE_OPS.flatMap((op) =>
      [
        [1, 1, 1],
        [3, 17, 1],
        [1, 33, 5],
        [2, 65, 3],
        [0, 4, 2],
        [4, 1001, 1],
      ].map(([outer, len, inner]) => ({ op, outer: outer!, len: len!, inner: inner! })),
    ),
    rtol: 1e-5,
    atol: 1e-5,
  },
  softmax: { points: rowsColsPoints(), rtol: 1e-5, atol: 1e-7 },
  softmaxBackward: { points: rowsColsPoints(), rtol: 1e-5, atol: 1e-6 },
  logSoftmax: { points: rowsColsPoints(), rtol: 1e-5, atol: 1e-6 },
  logSoftmaxBackward: { points: rowsColsPoints(), rtol: 1e-5, atol: 1e-6 },
  rmsNorm: {
    points: [...rowsColsPoints({ eps: 1e-5 }), ...rowsColsPoints({ eps: 1e-6, noWeight: true })],
    arrays: (_p, _s, raw): Record<string, ArgValue> => (raw.noWeight ? { weight: null } : {}),
    rtol: 1e-5,
    atol: 1e-6,
  },
  rmsNormBackward: {
    points: [...rowsColsPoints(), ...rowsColsPoints({ noWeight: true })],
    arrays: (p, seed, raw) => ({
      rstd: rand(p.rows!, seed, 0.5, 2),
      ...(raw.noWeight ? { weight: null, gWeight: null } : {}),
    }),
    rtol: 1e-4,
    atol: 1e-5,
  },
  layerNorm: {
    points: [...rowsColsPoints({ eps: 1e-5 }), ...rowsColsPoints({ eps: 1e-5, noAffine: true })],
    arrays: (_p, _s, raw): Record<string, ArgValue> => (raw.noAffine ? { weight: null, bias: null } : {}),
    rtol: 1e-4,
    atol: 1e-5,
  },
  layerNormBackward: {
    points: [...rowsColsPoints(), ...rowsColsPoints({ noAffine: true })],
    arrays: (p, seed, raw) => ({
      rstd: rand(p.rows!, seed, 0.5, 2),
      ...(raw.noAffine ? { weight: null, gWeight: null, gBias: null } : {}),
    }),
    rtol: 1e-4,
    atol: 1e-5,
  },
  rope: {
    points: [
      [1, 1, 1, 2],
      [2, 3, 2, 34],
      [1, 17, 3, 66],
      [0, 3, 2, 4],
      [1, 5, 1, 130],
    ].flatMap(([B, T, H, D]) => [false, true].map((inverse) => ({ B: B!, T: T!, H: H!, D: D!, inverse }))),
    arrays: (p, seed) => {
      const maxPos = p.T! + 3;
      const half = p.D! / 2;
      return {
        cos: rand(maxPos * half, seed),
        sin: rand(maxPos * half, seed + 1),
        positions: randInt(p.B! * p.T!, seed + 2, 0, maxPos),
      };
    },
    rtol: 1e-5,
    atol: 1e-6,
  },
  attention: { points: ATTN, rtol: 1e-4, atol: 1e-5 },
  attentionBackward: { points: ATTN, arrays: attnBackwardArrays(js.attention), rtol: 1e-3, atol: 1e-5 },
  // bf16 compute: both sides round q, k, v (gOut) and the probabilities / dS identically (one key tile
  // in these points, so native's running max is the row max js uses); only accumulation order
  // differs, while a missed rounding moves results by ~3e-3 of their scale
  attentionBf16: { points: ATTN, rtol: 1e-4, atol: 1e-5 },
  attentionBf16Backward: {
    points: ATTN,
    arrays: attnBackwardArrays(js.attentionBf16),
    rtol: 1e-3,
    atol: 1e-5,
  },
  swiglu: {
    points: nPoints(),
    arrays: (p, seed) => ({ gate: rand(p.n!, seed, -8, 8) }),
    rtol: 2e-6,
    atol: 1e-6,
  },
  swigluBackward: {
    points: nPoints(),
    arrays: (p, seed) => ({ gate: rand(p.n!, seed, -8, 8) }),
    rtol: 2e-6,
    atol: 1e-6,
  },
  gatherRows: {
    points: [0, 1, 17, 33, 65].flatMap((dim) =>
      [0, 1, 5, 17].flatMap((n) => [false, true].map((tableBf16) => ({ n, dim, tableBf16 }))),
    ),
    arrays: (p, seed, raw) => {
      const rows = 10;
      return {
        table: raw.tableBf16 ? randBf16(rows * p.dim!, seed) : rand(rows * p.dim!, seed),
        ids: randInt(p.n!, seed + 1, 0, rows),
      };
    },
    rtol: 0,
    atol: 0,
  },
  scatterAddRows: {
    points: [0, 1, 17, 33, 65].flatMap((dim) => [0, 1, 5, 40].map((n) => ({ n, dim }))),
    arrays: (p, seed) => ({
      // 7 rows for up to 40 ids: repeated ids accumulate in a fixed order on both backends.
      ids: randInt(p.n!, seed, 0, 7),
      gTable: rand(7 * p.dim!, seed + 1),
    }),
    rtol: 1e-6,
    atol: 1e-6,
  },
  rowPairDots: {
    points: [0, 1, 7, 8, 33, 200].flatMap((n) => [0, 1, 5, 40].map((k) => ({ k, n }))),
    arrays: (p, seed) => ({
      a: rand(6 * p.n!, seed),
      b: rand(9 * p.n!, seed + 1),
      aRows: randInt(p.k!, seed + 2, 0, 6),
      bRows: randInt(p.k!, seed + 3, 0, 9),
    }),
    rtol: 1e-5,
    atol: 1e-5,
  },
  fwht: {
    // n powers of two (0 and 1 are no-ops); rows 0 reads nothing; 17 rows: an odd size above a SIMD width
    points: [0, 1, 2, 8, 64, 1024].flatMap((n) => [0, 1, 3, 17].map((rows) => ({ rows, n }))),
    rtol: 1e-5,
    atol: 1e-4,
  },
  linearCrossEntropy: {
    points: [
      [1, 1, 1],
      [3, 17, 33],
      [5, 33, 65],
      [2, 8, 1000],
      [0, 4, 5],
      [4, 1, 2],
    ].flatMap(([N, d, V]) => [false, true].map((wBf16) => ({ N: N!, d: d!, V: V!, wBf16 }))),
    arrays: (p, seed, raw) => ({
      w: raw.wBf16 ? randBf16(p.V! * p.d!, seed) : rand(p.V! * p.d!, seed),
      labels: labelsFor(p.N!, p.V!, seed + 1),
      outs: lceOuts(p.N!),
    }),
    rtol: 1e-4,
    atol: 1e-5,
  },
  linearCrossEntropyBackward: {
    points: [
      [1, 1, 1],
      [3, 17, 33],
      [5, 33, 65],
      [2, 8, 1000],
      [0, 4, 5],
    ].flatMap(([N, d, V]) =>
      [false, true].flatMap((wBf16) =>
        [false, true].map((partial) => ({ N: N!, d: d!, V: V!, wBf16, partial })),
      ),
    ),
    arrays: (p, seed, raw) => {
      const N = p.N!;
      const w = raw.wBf16 ? randBf16(p.V! * p.d!, seed) : rand(p.V! * p.d!, seed);
      const h = rand(N * p.d!, seed + 1);
      const labels = labelsFor(N, p.V!, seed + 2);
      const outs = lceOuts(N);
      js.linearCrossEntropy(h, w, raw.wBf16 === true, labels, N, p.d!, p.V!, outs);
      return {
        h,
        w,
        labels,
        lse: outs.lse,
        entropy: outs.entropy,
        argmax: outs.argmax,
        // partial: no top-1 coefficient, no input gradient (a frozen trunk), as the trainer uses it.
        ...(raw.partial ? { cTop1: null, gh: null } : {}),
      };
    },
    rtol: 1e-4,
    atol: 1e-5,
  },
  // bf16 compute: both sides round h and w identically; only accumulation order differs
  linearCrossEntropyBf16: {
    points: [
      [1, 1, 1],
      [3, 17, 33],
      [5, 33, 65],
      [2, 8, 1000],
      [0, 4, 5],
      [4, 1, 2],
    ].flatMap(([N, d, V]) => [false, true].map((wBf16) => ({ N: N!, d: d!, V: V!, wBf16 }))),
    arrays: (p, seed, raw) => ({
      w: raw.wBf16 ? randBf16(p.V! * p.d!, seed) : rand(p.V! * p.d!, seed),
      labels: labelsFor(p.N!, p.V!, seed + 1),
      outs: lceOuts(p.N!),
    }),
    rtol: 1e-4,
    atol: 1e-5,
  },
  // dZ is rounded to bf16 on both sides from f32 (native) / f64 (js) values: a rare tie flip costs
  // one bf16 ulp of one term, hence the looser tolerance
  linearCrossEntropyBf16Backward: {
    points: [
      [1, 1, 1],
      [3, 17, 33],
      [5, 33, 65],
      [2, 8, 1000],
      [0, 4, 5],
    ].flatMap(([N, d, V]) =>
      [false, true].flatMap((wBf16) =>
        [false, true].map((partial) => ({ N: N!, d: d!, V: V!, wBf16, partial })),
      ),
    ),
    arrays: (p, seed, raw) => {
      const N = p.N!;
      const w = raw.wBf16 ? randBf16(p.V! * p.d!, seed) : rand(p.V! * p.d!, seed);
      const h = rand(N * p.d!, seed + 1);
      const labels = labelsFor(N, p.V!, seed + 2);
      const outs = lceOuts(N);
      js.linearCrossEntropyBf16(h, w, raw.wBf16 === true, labels, N, p.d!, p.V!, outs);
      return {
        h,
        w,
        labels,
        lse: outs.lse,
        entropy: outs.entropy,
        argmax: outs.argmax,
        // partial: no top-1 coefficient, no input gradient (a frozen trunk), as the trainer uses it.
        ...(raw.partial ? { cTop1: null, gh: null } : {}),
      };
    },
    rtol: 1e-3,
    atol: 1e-4,
  },
  crossEntropy: {
    points: [...rowsColsPoints({ smoothing: 0 }), ...rowsColsPoints({ smoothing: 0.1 })],
    arrays: (p, seed) => ({ labels: labelsFor(p.rows!, p.cols!, seed) }),
    rtol: 1e-5,
    atol: 1e-6,
  },
  crossEntropyBackward: {
    points: [...rowsColsPoints({ smoothing: 0 }), ...rowsColsPoints({ smoothing: 0.1 })],
    arrays: (p, seed) => {
      const { rows, cols, smoothing } = p as { rows: number; cols: number; smoothing: number };
      const logits = rand(rows * cols, seed, -4, 4);
      const labels = labelsFor(rows, cols, seed + 1);
      const lse = new Float32Array(rows);
      js.crossEntropy(logits, labels, new Float32Array(rows), lse, rows, cols, smoothing);
      return { logits, labels, lse };
    },
    rtol: 1e-5,
    atol: 1e-6,
  },
  dropout: {
    points: [0, 0.3, 1].flatMap((p) => EDGE_N.map((n) => ({ n, p, seed: 7, offset: 5 }))),
    rtol: 1e-6,
    atol: 0,
  },
  dropoutBackward: {
    points: [0, 0.3, 1].flatMap((p) => EDGE_N.map((n) => ({ n, p, seed: 3, offset: 123_456 }))),
    rtol: 1e-6,
    atol: 0,
  },
  adamw: {
    points: nPoints({ lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, step: 3 }),
    arrays: (p, seed) => ({ v: rand(p.n!, seed, 0, 1e-2) }),
    rtol: 1e-5,
    atol: 1e-7,
  },
  f32ToBf16: {
    points: nPoints(),
    arrays: (p, seed) => {
      const src = rand(p.n!, seed, -1e4, 1e4);
      // Special values: NaN, infinities, signed zero, a tie that rounds to even, subnormal.
      const specials = [Number.NaN, Infinity, -Infinity, -0, 1 + 2 ** -8, 1e-40];
      for (let i = 0; i < Math.min(p.n!, specials.length); i++) src[i] = specials[i]!;
      return { src };
    },
    rtol: 0,
    atol: 0,
  },
  bf16ToF32: {
    points: nPoints(),
    arrays: (p, seed) => ({ src: Uint16Array.from(randInt(p.n!, seed, 0, 65536)) }),
    rtol: 0,
    atol: 0,
  },
  sumSquares: { points: nPoints(), rtol: 1e-6, atol: 1e-9 },
  // codes, scales and the count of non-finite inputs must be identical: both divide in f64 and round half up
  quantize: {
    points: ['int8', 'nf4'].flatMap((format) =>
      [0, 1, 63, 64, 65, 130, 1001].flatMap((n) => [false, true].map((srcBf16) => ({ format, n, srcBf16 }))),
    ),
    arrays: (p, seed, raw) => {
      const n = p.n!;
      const src = raw.srcBf16 ? randBf16(n, seed, -3, 3) : rand(n, seed, -3, 3);
      // a zero block, an infinity and a NaN where they fit
      if (!raw.srcBf16 && n > 130) {
        src.fill(0, 64, 128);
        src[3] = Number.POSITIVE_INFINITY;
        src[5] = Number.NaN;
      }
      const { codes } = quantArrays(String(raw.format), n, seed);
      return { src, codes: new Uint16Array(codes.length), scales: new Float32Array(Math.ceil(n / 64)) };
    },
    rtol: 0,
    atol: 0,
  },
  dequantize: {
    points: ['int8', 'nf4'].flatMap((format) =>
      [
        [0, 0],
        [0, 1],
        [3, 61],
        [63, 66],
        [1, 1000],
        [5, 5000], // more than 64 blocks: the int8 steps on the heap
      ].map(([offset, n]) => ({ format, offset: offset!, n: n! })),
    ),
    arrays: (p, seed, raw) => quantArrays(String(raw.format), p.offset! + p.n!, seed),
    rtol: 0,
    atol: 0,
  },
  qgemm: {
    points: QGEMM_SHAPES.flatMap(([M, N, K]) =>
      ['int8', 'nf4'].flatMap((format) =>
        [true, false].map((transW) => ({
          transW,
          M,
          N,
          K,
          lda: K + 1,
          format,
          beta: transW ? 0 : 0.5,
          ldc: N + 2,
        })),
      ),
    ),
    arrays: (p, seed, raw) => ({
      A: rand(Math.max(0, p.M! * p.lda!), seed),
      ...quantArrays(String(raw.format), p.N! * p.K!, seed + 1),
      C: rand(Math.max(0, p.M! * p.ldc!), seed + 3),
    }),
    // the same dequantised values on both sides; only the accumulation order differs (f32 / f64)
    rtol: 1e-4,
    atol: 1e-4,
  },
};

/**
 * The one interface every op calls. Two implementations: `js/` (plain TypeScript, the correctness
 * oracle, runs anywhere, also accepts Float64Array) and `native/` (C++ addon, Float32Array only).
 * Each kernel's argument list is also described in manifest.ts, which `tsc` checks against this
 * interface and which drives the native argument checks, the load-time check of the addon and the
 * conformance test (docs/kernels.md: adding a kernel).
 *
 * Conventions shared by every kernel:
 * - Arrays are flat, contiguous, row-major; shapes are passed as explicit dimensions.
 * - `out`/`g*` arguments are written in place; a kernel never allocates its outputs. Unless a
 *   parameter says "accumulate", outputs are overwritten (the caller need not zero them).
 * - bf16 data is a Uint16Array holding the upper 16 bits of an f32; kernels widen it on the fly.
 * - Strides are in elements. A broadcast dimension has stride 0.
 * - Randomness (dropout) is counter-based: element `i` of a call keyed by (seed, offset) draws
 *   `philox(seed, offset + i)`, so masks never depend on the thread count.
 */

export type FloatArray = Float32Array | Float64Array;
/** bf16 storage: upper 16 bits of an IEEE f32. */
export type Bf16Array = Uint16Array;
/** Any array a kernel may read as numbers (masks, conditions). */
export type NumericArray = Float32Array | Float64Array | Int32Array | Uint16Array;

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'abs'
  | 'tanh'
  | 'sigmoid'
  | 'relu'
  | 'silu'
  | 'gelu_tanh'
  | 'gelu_erf'
  | 'softplus'
  | 'square'
  /** x ** param */
  | 'pow'
  /** x + param */
  | 'add_scalar'
  /** x * param */
  | 'mul_scalar';

export type BinaryOp =
  | 'add'
  | 'sub'
  | 'mul'
  | 'div'
  | 'max'
  | 'min'
  /** 1 where a == b else 0 */
  | 'eq'
  /** 1 where a > b else 0 */
  | 'gt';

export type ReduceOp = 'sum' | 'max' | 'logsumexp';

/** Outputs of the fused LM head's forward, one entry per row (token). */
export interface LinearCrossEntropyOutputs {
  /** log-sum-exp of the row's logits (saved for backward). */
  lse: FloatArray;
  /** log p(label); 0 where the label is -100. */
  logp: FloatArray;
  /** entropy of the row's predictive distribution, in nats (computed for every row). */
  entropy: FloatArray;
  /** argmax of the logits (first index on ties). */
  argmax: Int32Array;
  /** log-prob of the most likely token. */
  top1: FloatArray;
  /** log-prob of the second most likely token (-Infinity when V == 1). */
  top2: FloatArray;
}

export interface Kernels {
  readonly name: 'js' | 'native';
  /** Worker threads used by big kernels (1 for js). */
  threads(): number;

  // ---- GEMM --------------------------------------------------------------------------------
  /**
   * Batched SGEMM: for b in [0, batch):
   *   C_b = alpha * op(A_b) * op(B_b) + beta * C_b   (beta 0 means C is not read, even if NaN)
   * op(A) is [M,K] (A stored [M,K] with leading dim lda, or [K,M] when transA);
   * op(B) is [K,N] (B stored [K,N], or [N,K] when transB); C is [M,N] with leading dim ldc.
   * Batch b reads A at aOffset + b*strideA (stride 0 broadcasts), likewise B and C.
   * When bBf16, B is a Uint16Array of bf16 values (a frozen weight kept in bf16).
   */
  sgemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    aOffset: number,
    lda: number,
    B: FloatArray | Bf16Array,
    bOffset: number,
    ldb: number,
    bBf16: boolean,
    beta: number,
    C: FloatArray,
    cOffset: number,
    ldc: number,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;
  /**
   * sgemm with bf16 compute: every element of op(A) and op(B) is rounded to bf16 (round to nearest
   * even; bf16 B is used as is), products are accumulated in f32, then alpha and beta are applied
   * as in sgemm. Native runs it on AMX tiles, AVX512-BF16 or a portable path (docs/kernels.md).
   */
  gemmBf16(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    alpha: number,
    A: FloatArray,
    aOffset: number,
    lda: number,
    B: FloatArray | Bf16Array,
    bOffset: number,
    ldb: number,
    bBf16: boolean,
    beta: number,
    C: FloatArray,
    cOffset: number,
    ldc: number,
    batch: number,
    strideA: number,
    strideB: number,
    strideC: number,
  ): void;

  // ---- elementwise ---------------------------------------------------------------------------
  /** out[i] = f(x[i]) (param is the exponent / scalar of pow, add_scalar, mul_scalar). out may alias x. */
  unary(op: UnaryOp, x: FloatArray, out: FloatArray, n: number, param: number): void;
  /** gx[i] = gy[i] * f'(x[i]); y = f(x) is given for ops whose derivative is cheaper from it. */
  unaryBackward(
    op: UnaryOp,
    x: FloatArray,
    y: FloatArray,
    gy: FloatArray,
    gx: FloatArray,
    n: number,
    param: number,
  ): void;
  /**
   * out[idx] = a[idx . aStrides] (op) b[idx . bStrides] over the N-d index space `shape`
   * (out is contiguous of that shape). out may alias a or b when their strides equal out's.
   */
  binary(
    op: BinaryOp,
    a: FloatArray,
    aStrides: readonly number[],
    b: FloatArray,
    bStrides: readonly number[],
    out: FloatArray,
    shape: readonly number[],
  ): void;
  /** out[idx] = cond[idx . cStrides] != 0 ? a[idx . aStrides] : b[idx . bStrides]. */
  where(
    cond: NumericArray,
    condStrides: readonly number[],
    a: FloatArray,
    aStrides: readonly number[],
    b: FloatArray,
    bStrides: readonly number[],
    out: FloatArray,
    shape: readonly number[],
  ): void;
  /**
   * Generic strided copy over the index space `shape` (used by transpose, permute, slice, concat,
   * stack, expand). Works for any dtype as long as src and dst have the same element type.
   */
  copyStrided(
    src: NumericArray,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: NumericArray,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void;

  // ---- reductions ----------------------------------------------------------------------------
  /** x viewed as [outer, len, inner]; out[o, i] = reduce over the middle axis. */
  reduce(op: ReduceOp, x: FloatArray, out: FloatArray, outer: number, len: number, inner: number): void;
  /** Softmax over the last axis of [rows, cols]. out may alias x. */
  softmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void;
  /** gx = y * (gy - sum(gy * y)) per row, y the softmax output. */
  softmaxBackward(y: FloatArray, gy: FloatArray, gx: FloatArray, rows: number, cols: number): void;
  /** Log-softmax over the last axis. out may alias x. */
  logSoftmax(x: FloatArray, out: FloatArray, rows: number, cols: number): void;
  /** gx = gy - exp(y) * sum(gy) per row, y the log-softmax output. */
  logSoftmaxBackward(y: FloatArray, gy: FloatArray, gx: FloatArray, rows: number, cols: number): void;

  // ---- normalisation -------------------------------------------------------------------------
  /** out = x * rsqrt(mean(x^2) + eps) * weight (weight null = 1); rstd[row] saved. */
  rmsNorm(
    x: FloatArray,
    weight: FloatArray | null,
    out: FloatArray,
    rstd: FloatArray,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** gx written; gWeight (if given) ACCUMULATED (+=) over rows. */
  rmsNormBackward(
    x: FloatArray,
    weight: FloatArray | null,
    rstd: FloatArray,
    gy: FloatArray,
    gx: FloatArray,
    gWeight: FloatArray | null,
    rows: number,
    cols: number,
  ): void;
  /** out = (x - mean) * rstd * weight + bias; mean and rstd per row saved. */
  layerNorm(
    x: FloatArray,
    weight: FloatArray | null,
    bias: FloatArray | null,
    out: FloatArray,
    mean: FloatArray,
    rstd: FloatArray,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** gx written; gWeight, gBias (if given) ACCUMULATED over rows. */
  layerNormBackward(
    x: FloatArray,
    weight: FloatArray | null,
    mean: FloatArray,
    rstd: FloatArray,
    gy: FloatArray,
    gx: FloatArray,
    gWeight: FloatArray | null,
    gBias: FloatArray | null,
    rows: number,
    cols: number,
  ): void;

  // ---- transformer blocks --------------------------------------------------------------------
  /**
   * Rotary embedding, HF "rotate half" convention, on x [B, T, H, D] (D even, half = D/2):
   *   out[..i]      = x[i] * cos[p, i] - x[i + half] * sin[p, i]
   *   out[..i+half] = x[i + half] * cos[p, i] + x[i] * sin[p, i]
   * with p = positions[b*T + t] and cos/sin tables [maxPos, half]. `inverse` negates sin (the
   * backward pass). out may alias x.
   */
  rope(
    x: FloatArray,
    out: FloatArray,
    cos: FloatArray,
    sin: FloatArray,
    positions: Int32Array,
    B: number,
    T: number,
    H: number,
    D: number,
    inverse: boolean,
  ): void;
  /**
   * Scaled dot-product attention with grouped KV heads (query head h reads KV head
   * floor(h / (Hq / Hkv))). q [B, Tq, Hq, D], k and v [B, Tk, Hkv, D], out [B, Tq, Hq, D],
   * lse [B, Hq, Tq] (log-sum-exp of each row of scaled scores, saved for backward).
   * Causal: query t attends keys j <= t + (Tk - Tq). Dropout on the probabilities with rate
   * dropP (0 = off), mask element (b, h, t, j) = philox(seed, ((b*Hq + h)*Tq + t)*Tk + j),
   * survivors scaled by 1/(1 - dropP).
   */
  attention(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    out: FloatArray,
    lse: FloatArray,
    B: number,
    Tq: number,
    Tk: number,
    Hq: number,
    Hkv: number,
    D: number,
    scale: number,
    causal: boolean,
    dropP: number,
    seed: number,
  ): void;
  /** Gradients of attention; gq, gk, gv are written (not accumulated). */
  attentionBackward(
    q: FloatArray,
    k: FloatArray,
    v: FloatArray,
    out: FloatArray,
    lse: FloatArray,
    gOut: FloatArray,
    gq: FloatArray,
    gk: FloatArray,
    gv: FloatArray,
    B: number,
    Tq: number,
    Tk: number,
    Hq: number,
    Hkv: number,
    D: number,
    scale: number,
    causal: boolean,
    dropP: number,
    seed: number,
  ): void;
  /**
   * `attention` in bf16 compute: every product (q k^T, P v) takes bf16-rounded inputs (round to
   * nearest even) and accumulates in f32; the softmax statistics and lse stay f32. Native runs the
   * products on the active bf16 GEMM path (AMX, AVX512-BF16 or the rounding fallback).
   */
  attentionBf16: Kernels['attention'];
  /** `attentionBackward` in bf16 compute (every product as in attentionBf16). */
  attentionBf16Backward: Kernels['attentionBackward'];
  /** out = silu(gate) * up. */
  swiglu(gate: FloatArray, up: FloatArray, out: FloatArray, n: number): void;
  swigluBackward(
    gate: FloatArray,
    up: FloatArray,
    gy: FloatArray,
    gGate: FloatArray,
    gUp: FloatArray,
    n: number,
  ): void;

  // ---- embeddings ----------------------------------------------------------------------------
  /** out[i, :] = table[ids[i], :] for i < n; table is [rows, dim] (bf16 when tableBf16). */
  gatherRows(
    table: FloatArray | Bf16Array,
    tableBf16: boolean,
    ids: Int32Array,
    out: FloatArray,
    n: number,
    dim: number,
  ): void;
  /** gTable[ids[i], :] += g[i, :] (ACCUMULATES; deterministic order). */
  scatterAddRows(g: FloatArray, ids: Int32Array, gTable: FloatArray, n: number, dim: number): void;
  /**
   * out[j] = dot(a[aRows[j], :], b[bRows[j], :]) for j < k, rows of length n (a, b row-major
   * [*, n]): the sampled product (A B^T) at k index pairs, e.g. a sparse delta's gradient
   * `(g^T x)[r, c]` from g^T and x^T. Each dot runs in index order (deterministic).
   */
  rowPairDots(
    a: FloatArray,
    b: FloatArray,
    aRows: Int32Array,
    bRows: Int32Array,
    out: FloatArray,
    k: number,
    n: number,
  ): void;
  /**
   * In-place unnormalised fast Walsh–Hadamard transform of each of the `rows` rows of `x` [rows, n]
   * (n a power of two; 0 and 1 are no-ops): `x_row <- H_n x_row` with H_n the Sylvester Hadamard
   * matrix (entries +-1, `H_n H_n = n I`), in O(n log n) butterflies per row, each in a fixed order
   * (deterministic).
   */
  fwht(x: FloatArray, rows: number, n: number): void;

  // ---- losses --------------------------------------------------------------------------------
  /**
   * Fused LM head: logits = h [N, d] x w[V, d]^T computed chunk by chunk over V, never [N, V] at once.
   * Fills `outs` per row. Rows whose label is -100 get logp 0 (entropy etc. still computed).
   */
  linearCrossEntropy(
    h: FloatArray,
    w: FloatArray | Bf16Array,
    wBf16: boolean,
    labels: Int32Array,
    N: number,
    d: number,
    V: number,
    outs: LinearCrossEntropyOutputs,
  ): void;
  /**
   * Backward of the fused LM head from per-row coefficients:
   *   dL/dz_v = cLogp (1[v = label] - p_v) + cEnt * (-p_v (log p_v + H)) + cTop1 (1[v = argmax] - p_v)
   * (rows with label -100 use only cEnt and cTop1). gh is written [N, d] when given; gw is
   * ACCUMULATED [V, d] when given (null for a frozen head). cTop1 may be null (all zero).
   */
  linearCrossEntropyBackward(
    h: FloatArray,
    w: FloatArray | Bf16Array,
    wBf16: boolean,
    labels: Int32Array,
    lse: FloatArray,
    entropy: FloatArray,
    argmax: Int32Array,
    cLogp: FloatArray,
    cEnt: FloatArray,
    cTop1: FloatArray | null,
    gh: FloatArray | null,
    gw: FloatArray | null,
    N: number,
    d: number,
    V: number,
  ): void;
  /**
   * linearCrossEntropy with bf16-compute logits (`precision: bf16-mixed`): h and w rounded to bf16
   * (a bf16 w as is), products accumulated in f32 on the gemmBf16 path; the statistics as in f32.
   */
  linearCrossEntropyBf16(
    h: FloatArray,
    w: FloatArray | Bf16Array,
    wBf16: boolean,
    labels: Int32Array,
    N: number,
    d: number,
    V: number,
    outs: LinearCrossEntropyOutputs,
  ): void;
  /**
   * linearCrossEntropyBackward in bf16 compute: logits as linearCrossEntropyBf16, and the two
   * products gh = dZ w, gw += dZ^T h take dZ (computed in f32), w and h rounded to bf16.
   */
  linearCrossEntropyBf16Backward(
    h: FloatArray,
    w: FloatArray | Bf16Array,
    wBf16: boolean,
    labels: Int32Array,
    lse: FloatArray,
    entropy: FloatArray,
    argmax: Int32Array,
    cLogp: FloatArray,
    cEnt: FloatArray,
    cTop1: FloatArray | null,
    gh: FloatArray | null,
    gw: FloatArray | null,
    N: number,
    d: number,
    V: number,
  ): void;
  /**
   * Cross-entropy on materialised logits [rows, cols], labels -100 ignored (loss 0), label
   * smoothing s: loss = -(1-s) logp[label] - s * mean_v logp[v]. loss and lse per row.
   */
  crossEntropy(
    logits: FloatArray,
    labels: Int32Array,
    loss: FloatArray,
    lse: FloatArray,
    rows: number,
    cols: number,
    smoothing: number,
  ): void;
  /** gLogits = gLoss[row] * d loss_row / d logits (0 for ignored rows). */
  crossEntropyBackward(
    logits: FloatArray,
    labels: Int32Array,
    lse: FloatArray,
    gLoss: FloatArray,
    gLogits: FloatArray,
    rows: number,
    cols: number,
    smoothing: number,
  ): void;

  // ---- randomness ----------------------------------------------------------------------------
  /** out[i] = keep ? x[i] / (1 - p) : 0, keep iff uniform(philox(seed, offset + i)) >= p. */
  dropout(x: FloatArray, out: FloatArray, n: number, p: number, seed: number, offset: number): void;
  /** Same mask as `dropout` with the same (seed, offset). */
  dropoutBackward(gy: FloatArray, gx: FloatArray, n: number, p: number, seed: number, offset: number): void;

  // ---- optimizer -----------------------------------------------------------------------------
  /**
   * AdamW (decoupled weight decay, bias correction with `step` >= 1), in place:
   *   m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * (wd * p + mhat / (sqrt(vhat) + eps))
   */
  adamw(
    p: FloatArray,
    g: FloatArray,
    m: FloatArray,
    v: FloatArray,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void;

  // ---- conversions ---------------------------------------------------------------------------
  /** Round-to-nearest-even f32 -> bf16 (NaN stays NaN). */
  f32ToBf16(src: Float32Array, dst: Bf16Array, n: number): void;
  bf16ToF32(src: Bf16Array, dst: Float32Array, n: number): void;
  /** Sum of squares of x (f64 accumulation), for gradient-norm clipping. */
  sumSquares(x: FloatArray, n: number): number;

  // ---- block-quantised frozen weights (int8 / NF4; layout in src/backend/js/quant.ts) ----------
  /**
   * Quantise src[0, n) (f32, or bf16 when srcBf16) block-wise: blocks of 64 consecutive elements,
   * one f32 absmax per block in scales[ceil(n/64)], codes packed into bytes carried by a Uint16Array
   * (little-endian bytes: int8 one byte per element, ceil(n/2) words; nf4 one nibble, high nibble
   * first, ceil(n/4) words). Returns how many elements were not finite (each stored as 0).
   */
  quantize(
    format: QuantFormat,
    src: FloatArray | Bf16Array,
    srcBf16: boolean,
    n: number,
    codes: Uint16Array,
    scales: Float32Array,
  ): number;
  /** out[i] = element offset + i of a quantised array, for i < n (f32: code * absmax / 127, or NF4 level * absmax). */
  dequantize(
    format: QuantFormat,
    codes: Uint16Array,
    scales: Float32Array,
    offset: number,
    n: number,
    out: Float32Array,
  ): void;
  /**
   * C[M, N] = A[M, K] op(W) + beta C with W quantised (codes / scales as `quantize` writes them, of
   * the row-major matrix): transW, W is [N, K] and op(W) = W^T (a Linear's forward x W^T); else W
   * is [K, N] (the input gradient dY W). W is dequantised a tile at a time inside the product,
   * never whole; products accumulate in f32 (f64 on js). beta 0 never reads C.
   */
  qgemm(
    transW: boolean,
    M: number,
    N: number,
    K: number,
    A: FloatArray,
    lda: number,
    format: QuantFormat,
    codes: Uint16Array,
    scales: Float32Array,
    beta: number,
    C: FloatArray,
    ldc: number,
  ): void;
}

/** Block-quantised weight formats: int8 (symmetric absmax) and NF4 (QLoRA's 16 levels). */
export type QuantFormat = 'int8' | 'nf4';

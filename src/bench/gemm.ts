/**
 * `attune bench gemm`: SGEMM throughput (GFLOP/s) per backend, on square sizes and on the matrix
 * products of one SmolLM2-135M layer at 1024 tokens (hidden 576, 9 query / 3 KV heads of 64, FFN
 * 1536, vocabulary 49152), forward and backward. The js backend is timed on small products only.
 */
import { jsKernels, nativeBf16Path, nativeKernels } from '../backend/index.ts';
import type { Kernels } from '../backend/kernels.ts';
import { type BenchEnvelope, type BenchRow, envelope } from './envelope.ts';

export interface GemmBenchOptions {
  /** Square sizes n (n x n times n x n); when given, only these are timed. */
  sizes?: number[];
  backends?: ('js' | 'native')[];
  /** Native thread-pool size for the run (default: the pool's current size). */
  threads?: number;
  /** Time spent per row, in seconds (default 0.5). */
  seconds?: number;
  /** Compute precision: f32 (sgemm, the default) or bf16 (gemmBf16). */
  precision?: GemmPrecision;
}

export type GemmPrecision = 'f32' | 'bf16';

export const DEFAULT_SQUARE_SIZES = [256, 512, 1024, 2048];
/** The js backend times only products of at most this many flops (2 M N K), once if slow. */
const JS_MAX_FLOPS = 2 * 512 ** 3;

export interface GemmShape {
  /** e.g. "square", "q_proj fwd", "down_proj dW". */
  name: string;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
}

const TOKENS = 1024;
const PROJECTIONS: [string, number, number][] = [
  // name, in features, out features (weights are [out, in] as in HF Linear)
  ['q_proj', 576, 576],
  ['k_proj', 576, 192],
  ['v_proj', 576, 192],
  ['o_proj', 576, 576],
  ['gate_proj', 576, 1536],
  ['up_proj', 576, 1536],
  ['down_proj', 1536, 576],
  ['lm_head', 576, 49152],
];

/** The products of one SmolLM2-135M layer (and the LM head) at 1024 tokens. */
export function smolLm2LayerShapes(): GemmShape[] {
  const shapes: GemmShape[] = [];
  for (const [name, inF, outF] of PROJECTIONS) {
    // y = x W^T, dx = dy W, dW = dy^T x
    shapes.push({ name: `${name} fwd`, M: TOKENS, N: outF, K: inF, transA: false, transB: true });
    shapes.push({ name: `${name} dX`, M: TOKENS, N: inF, K: outF, transA: false, transB: false });
    shapes.push({ name: `${name} dW`, M: outF, N: inF, K: TOKENS, transA: true, transB: false });
  }
  return shapes;
}

/**
 * Calls fn repeatedly for about `seconds` (at least once after a warm-up call, which is skipped
 * when one call alone takes longer than `seconds`) and returns the median milliseconds per call.
 */
export function timeCalls(fn: () => void, seconds: number, maxCalls = 10_000): number {
  const first = performance.now();
  fn();
  const firstMs = performance.now() - first;
  if (firstMs >= seconds * 1000) return firstMs;
  const times: number[] = [];
  const end = performance.now() + seconds * 1000;
  while (times.length < maxCalls && (times.length === 0 || performance.now() < end)) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

function randomArray(n: number, seed: number): Float32Array {
  // cheap deterministic fill (xorshift), values in [-1, 1)
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = (s >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** Resizes the native pool for the duration of fn (threads undefined: leave it). */
export async function withNativeThreads<T>(
  threads: number | undefined,
  fn: () => Promise<T> | T,
): Promise<T> {
  const nk = nativeKernels() as (Kernels & { init?: (n: number) => void }) | null;
  if (!nk || threads === undefined || !nk.init) return fn();
  const before = nk.threads();
  nk.init(threads);
  try {
    return await fn();
  } finally {
    nk.init(before);
  }
}

function timeShape(k: Kernels, s: GemmShape, seconds: number, precision: GemmPrecision): BenchRow {
  const A = randomArray(s.M * s.K, 1);
  const B = randomArray(s.K * s.N, 2);
  const C = new Float32Array(s.M * s.N);
  const lda = s.transA ? s.M : s.K;
  const ldb = s.transB ? s.K : s.N;
  const gemm = precision === 'bf16' ? k.gemmBf16 : k.sgemm;
  const ms = timeCalls(
    () => gemm(s.transA, s.transB, s.M, s.N, s.K, 1, A, 0, lda, B, 0, ldb, false, 0, C, 0, s.N, 1, 0, 0, 0),
    seconds,
  );
  const flops = 2 * s.M * s.N * s.K;
  return {
    kernel: precision === 'bf16' ? 'gemmBf16' : 'sgemm',
    backend: k.name,
    precision,
    // Which bf16 path ran: the native one in use, or the js reference.
    bf16Path: precision === 'bf16' ? (k.name === 'native' ? nativeBf16Path() : 'js') : null,
    shape: s.name,
    m: s.M,
    n: s.N,
    k: s.K,
    transA: s.transA,
    transB: s.transB,
    ms: Number(ms.toFixed(3)),
    gflops: Number((flops / (ms * 1e6)).toFixed(2)),
    gbps: null,
  };
}

/** Times SGEMM on each backend; resolves to the bench envelope. */
export async function runGemmBench(opts: GemmBenchOptions = {}): Promise<BenchEnvelope> {
  const nk = nativeKernels();
  const backends = (opts.backends ?? (nk ? ['js', 'native'] : ['js'])).filter((b) => b === 'js' || nk);
  const seconds = opts.seconds ?? 0.5;
  const precision = opts.precision ?? 'f32';
  const shapes: GemmShape[] = (opts.sizes ?? DEFAULT_SQUARE_SIZES).map((n) => ({
    name: 'square',
    M: n,
    N: n,
    K: n,
    transA: false,
    transB: false,
  }));
  if (!opts.sizes) shapes.push(...smolLm2LayerShapes());
  return withNativeThreads(opts.threads, () => {
    const rows: BenchRow[] = [];
    for (const s of shapes) {
      for (const b of backends) {
        if (b === 'js') {
          if (2 * s.M * s.N * s.K > JS_MAX_FLOPS) continue;
          rows.push(timeShape(jsKernels, s, Math.min(seconds, 0.5), precision));
        } else {
          rows.push(timeShape(nk!, s, seconds, precision));
        }
      }
    }
    const main: 'js' | 'native' = backends.includes('native') ? 'native' : 'js';
    return envelope('gemm', main, main === 'native' ? nk!.threads() : 1, rows);
  });
}

/**
 * `attune bench kernels`: the fused kernels at SmolLM2-135M shapes (1024 tokens, hidden 576, 9
 * query / 3 KV heads of 64, FFN 1536, vocabulary 49152). Compute-bound kernels report GFLOP/s from
 * their GEMM-equivalent flops (causal attention counts the half it computes); memory-bound ones
 * report GB/s from the bytes they must read and write. The js backend skips the kernels that would
 * take minutes (fused LM head, attention backward).
 */
import { jsKernels, nativeKernels } from '../backend/index.ts';
import type { Kernels, LinearCrossEntropyOutputs } from '../backend/kernels.ts';
import { type BenchEnvelope, type BenchRow, envelope } from './envelope.ts';
import { timeCalls, withNativeThreads } from './gemm.ts';

export interface KernelsBenchOptions {
  backends?: ('js' | 'native')[];
  /** Native thread-pool size for the run. */
  threads?: number;
  /** Time spent per row, in seconds (default 0.5). */
  seconds?: number;
}

const T = 1024;
const HIDDEN = 576;
const FFN = 1536;
const HQ = 9;
const HKV = 3;
const HEAD_DIM = 64;
const VOCAB = 49152;
const ADAMW_N = 10_000_000;

function fill(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = lo + ((hi - lo) * (s >>> 0)) / 2 ** 32;
  }
  return out;
}

interface KernelCase {
  kernel: string;
  shape: string;
  /** GEMM-equivalent flops per call (compute-bound kernels) */
  flops?: number;
  /** bytes read + written per call (memory-bound kernels) */
  bytes?: number;
  /** whether the js backend is timed (false where one call takes minutes) */
  js: boolean;
  /** builds the inputs once and returns the call */
  setup: (k: Kernels) => () => void;
}

function cases(): KernelCase[] {
  const n = T * HIDDEN;
  const nf = T * FFN;
  const nq = T * HQ * HEAD_DIM;
  const nkv = T * HKV * HEAD_DIM;
  const attnFlops = 2 * 2 * T * T * HEAD_DIM * HQ * 0.5; // QK^T and PV, causal half
  const lceFlops = 2 * T * HIDDEN * VOCAB;
  return [
    {
      kernel: 'rmsNorm',
      shape: `[${T},${HIDDEN}]`,
      bytes: 4 * (2 * n + HIDDEN + T),
      js: true,
      setup: (k) => {
        const [x, w, out, r] = [fill(n, 1), fill(HIDDEN, 2), new Float32Array(n), new Float32Array(T)];
        return () => k.rmsNorm(x, w, out, r, T, HIDDEN, 1e-5);
      },
    },
    {
      kernel: 'rmsNormBackward',
      shape: `[${T},${HIDDEN}]`,
      bytes: 4 * (3 * n + 2 * HIDDEN + T),
      js: true,
      setup: (k) => {
        const [x, w, gy, gx, gw] = [
          fill(n, 1),
          fill(HIDDEN, 2),
          fill(n, 3),
          new Float32Array(n),
          new Float32Array(HIDDEN),
        ];
        const r = fill(T, 4, 0.5, 1.5);
        return () => k.rmsNormBackward(x, w, r, gy, gx, gw, T, HIDDEN);
      },
    },
    {
      kernel: 'rope',
      shape: `q [1,${T},${HQ},${HEAD_DIM}]`,
      bytes: 4 * (2 * nq + 2 * T * (HEAD_DIM / 2) + T),
      js: true,
      setup: (k) => {
        const [x, out] = [fill(nq, 1), new Float32Array(nq)];
        const cos = fill(T * (HEAD_DIM / 2), 2);
        const sin = fill(T * (HEAD_DIM / 2), 3);
        const pos = Int32Array.from({ length: T }, (_, i) => i);
        return () => k.rope(x, out, cos, sin, pos, 1, T, HQ, HEAD_DIM, false);
      },
    },
    {
      kernel: 'swiglu',
      shape: `[${T},${FFN}]`,
      bytes: 4 * 3 * nf,
      js: true,
      setup: (k) => {
        const [g, u, out] = [fill(nf, 1, -4, 4), fill(nf, 2), new Float32Array(nf)];
        return () => k.swiglu(g, u, out, nf);
      },
    },
    {
      kernel: 'swigluBackward',
      shape: `[${T},${FFN}]`,
      bytes: 4 * 5 * nf,
      js: true,
      setup: (k) => {
        const [g, u, gy, gg, gu] = [
          fill(nf, 1, -4, 4),
          fill(nf, 2),
          fill(nf, 3),
          new Float32Array(nf),
          new Float32Array(nf),
        ];
        return () => k.swigluBackward(g, u, gy, gg, gu, nf);
      },
    },
    {
      kernel: 'attention',
      shape: `B=1 T=${T} Hq=${HQ} Hkv=${HKV} D=${HEAD_DIM} causal`,
      flops: attnFlops,
      js: true,
      setup: (k) => {
        const [q, kk, v] = [fill(nq, 1), fill(nkv, 2), fill(nkv, 3)];
        const [out, lse] = [new Float32Array(nq), new Float32Array(HQ * T)];
        return () => k.attention(q, kk, v, out, lse, 1, T, T, HQ, HKV, HEAD_DIM, 0.125, true, 0, 0);
      },
    },
    {
      kernel: 'attentionBackward',
      shape: `B=1 T=${T} Hq=${HQ} Hkv=${HKV} D=${HEAD_DIM} causal`,
      // S recomputed, dP, dV, dQ, dK: five products of the forward's two
      flops: attnFlops * 2.5,
      js: false,
      setup: (k) => {
        const [q, kk, v, gOut] = [fill(nq, 1), fill(nkv, 2), fill(nkv, 3), fill(nq, 4)];
        const [out, lse] = [new Float32Array(nq), new Float32Array(HQ * T)];
        k.attention(q, kk, v, out, lse, 1, T, T, HQ, HKV, HEAD_DIM, 0.125, true, 0, 0);
        const [gq, gk, gv] = [new Float32Array(nq), new Float32Array(nkv), new Float32Array(nkv)];
        return () =>
          k.attentionBackward(
            q,
            kk,
            v,
            out,
            lse,
            gOut,
            gq,
            gk,
            gv,
            1,
            T,
            T,
            HQ,
            HKV,
            HEAD_DIM,
            0.125,
            true,
            0,
            0,
          );
      },
    },
    {
      kernel: 'linearCrossEntropy',
      shape: `N=${T} d=${HIDDEN} V=${VOCAB}`,
      flops: lceFlops,
      js: false,
      setup: (k) => {
        const [h, w] = [fill(T * HIDDEN, 1), fill(VOCAB * HIDDEN, 2, -0.05, 0.05)];
        const labels = Int32Array.from({ length: T }, (_, i) => (i * 7919) % VOCAB);
        const outs = lceOuts(T);
        return () => k.linearCrossEntropy(h, w, false, labels, T, HIDDEN, VOCAB, outs);
      },
    },
    {
      kernel: 'linearCrossEntropyBackward',
      shape: `N=${T} d=${HIDDEN} V=${VOCAB} (gh and gw)`,
      // logits recomputed, gh, gw
      flops: 3 * lceFlops,
      js: false,
      setup: (k) => {
        const [h, w] = [fill(T * HIDDEN, 1), fill(VOCAB * HIDDEN, 2, -0.05, 0.05)];
        const labels = Int32Array.from({ length: T }, (_, i) => (i * 7919) % VOCAB);
        const outs = lceOuts(T);
        k.linearCrossEntropy(h, w, false, labels, T, HIDDEN, VOCAB, outs);
        const cLogp = new Float32Array(T).fill(-1 / T);
        const cEnt = new Float32Array(T);
        const [gh, gw] = [new Float32Array(T * HIDDEN), new Float32Array(VOCAB * HIDDEN)];
        return () =>
          k.linearCrossEntropyBackward(
            h,
            w,
            false,
            labels,
            outs.lse,
            outs.entropy,
            outs.argmax,
            cLogp,
            cEnt,
            null,
            gh,
            gw,
            T,
            HIDDEN,
            VOCAB,
          );
      },
    },
    {
      kernel: 'adamw',
      shape: `n=${ADAMW_N}`,
      bytes: 4 * 7 * ADAMW_N,
      js: true,
      setup: (k) => {
        const [p, g, m, v] = [
          fill(ADAMW_N, 1),
          fill(ADAMW_N, 2),
          new Float32Array(ADAMW_N),
          new Float32Array(ADAMW_N),
        ];
        let step = 1;
        return () => k.adamw(p, g, m, v, ADAMW_N, 1e-4, 0.9, 0.999, 1e-8, 0.01, step++);
      },
    },
  ];
}

function lceOuts(N: number): LinearCrossEntropyOutputs {
  return {
    lse: new Float32Array(N),
    logp: new Float32Array(N),
    entropy: new Float32Array(N),
    argmax: new Int32Array(N),
    top1: new Float32Array(N),
    top2: new Float32Array(N),
  };
}

/** Times the fused kernels on each backend; resolves to the bench envelope. */
export async function runKernelsBench(opts: KernelsBenchOptions = {}): Promise<BenchEnvelope> {
  const nk = nativeKernels();
  const backends = (opts.backends ?? (nk ? ['js', 'native'] : ['js'])).filter((b) => b === 'js' || nk);
  const seconds = opts.seconds ?? 0.5;
  return withNativeThreads(opts.threads, () => {
    const rows: BenchRow[] = [];
    for (const c of cases()) {
      for (const b of backends) {
        if (b === 'js' && !c.js) continue;
        const k = b === 'js' ? jsKernels : nk!;
        const call = c.setup(k);
        const ms = timeCalls(call, b === 'js' ? Math.min(seconds, 0.5) : seconds);
        rows.push({
          kernel: c.kernel,
          backend: k.name,
          shape: c.shape,
          ms: Number(ms.toFixed(3)),
          gflops: c.flops ? Number((c.flops / (ms * 1e6)).toFixed(2)) : null,
          gbps: c.bytes ? Number((c.bytes / (ms * 1e6)).toFixed(2)) : null,
        });
      }
    }
    const main: 'js' | 'native' = backends.includes('native') ? 'native' : 'js';
    return envelope('kernels', main, main === 'native' ? nk!.threads() : 1, rows);
  });
}

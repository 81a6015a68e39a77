#include "gemm.h"

#include <algorithm>

#include "common.h"

namespace attune {
namespace {

constexpr int kMaxTile = 16 * 64;

thread_local AlignedBuf tlsPackA;
thread_local AlignedBuf tlsPackB;
AlignedBuf sharedPackB;  // used only by gemmParallel (one region at a time)

inline long roundUp(long v, long m) { return (v + m - 1) / m * m; }

// Packs rows [i0, i0 + mc) x cols [p0, p0 + kc) of op(A) into panels of MR rows, k-major,
// zero-padded to a multiple of MR rows.
void packARaw(bool transA, const float* A, long lda, long i0, long mc, long p0, long kc, float* dst, int MR) {
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = std::min<long>(MR, mc - ir);
    float* out = dst + ir * kc;
    if (!transA) {
      const float* src = A + (i0 + ir) * lda + p0;
      if (mr == MR) {
        // 16-column strips: each source cache line is consumed whole (rows lda apart may alias).
        long p = 0;
        for (; p + 16 <= kc; p += 16)
          for (int ii = 0; ii < MR; ii++) {
            const float* s = src + ii * lda + p;
            for (int q = 0; q < 16; q++) out[(p + q) * MR + ii] = s[q];
          }
        for (; p < kc; p++)
          for (int ii = 0; ii < MR; ii++) out[p * MR + ii] = src[ii * lda + p];
      } else {
        for (long p = 0; p < kc; p++)
          for (int ii = 0; ii < MR; ii++) out[p * MR + ii] = ii < mr ? src[ii * lda + p] : 0.0f;
      }
    } else {
      const float* src = A + p0 * lda + i0 + ir;
      if (mr == MR) {
        for (long p = 0; p < kc; p++) std::memcpy(out + p * MR, src + p * lda, sizeof(float) * MR);
      } else {
        for (long p = 0; p < kc; p++)
          for (int ii = 0; ii < MR; ii++) out[p * MR + ii] = ii < mr ? src[p * lda + ii] : 0.0f;
      }
    }
  }
}

// Rounds packed values to bf16 in place (the portable bf16-compute path).
void roundToBf16(float* p, long n) {
  for (long i = 0; i < n; i++) p[i] = bf16ToFloat(floatToBf16(p[i]));
}

inline void packA(const GemmDesc& d, long i0, long mc, long p0, long kc, float* dst, int MR) {
  packARaw(d.transA, d.A, d.lda, i0, mc, p0, kc, dst, MR);
  if (d.roundBf16) roundToBf16(dst, roundUp(mc, MR) * kc);
}

// Packs NR-panels [pb, pe) of the block rows [p0, p0 + kc) x cols [j0, j0 + nc) of op(B), with the
// table's vector pack (transposing in registers when transB; bf16 widened exactly).
void packBRaw(const IsaOps* ops, bool transB, const void* B, bool bf16, long ldb, long p0, long kc, long j0, long nc,
              long pb, long pe, float* dst) {
  const int NR = ops->nr;
  for (long panel = pb; panel < pe; panel++) {
    const long jr = panel * NR;
    const long nr = std::min<long>(NR, nc - jr);
    const long off = transB ? (j0 + jr) * ldb + p0 : p0 * ldb + j0 + jr;
    float* out = dst + jr * kc;
    if (bf16)
      ops->packBBf16(static_cast<const uint16_t*>(B) + off, ldb, transB, kc, nr, out);
    else
      ops->packB(static_cast<const float*>(B) + off, ldb, transB, kc, nr, out);
  }
}

inline void packB(const GemmDesc& d, const IsaOps* ops, long p0, long kc, long j0, long nc, long pb, long pe,
                  float* dst) {
  packBRaw(ops, d.transB, d.B, d.bBf16, d.ldb, p0, kc, j0, nc, pb, pe, dst);
  if (d.roundBf16 && !d.bBf16 && pe > pb) roundToBf16(dst + pb * ops->nr * kc, (pe - pb) * ops->nr * kc);
}

// C[mc x (cols of panels [pb, pe))] using packed A (mc rows) and packed B panels.
void macroKernelS(const IsaOps* ops, long mc, long nc, long kc, long pb, long pe, float alpha, const float* pa,
                  long paStride, const float* pbuf, long pbStride, float beta, float* C, long ldc) {
  const int MR = ops->mr, NR = ops->nr;
  alignas(64) float tmp[kMaxTile];
  for (long panel = pb; panel < pe; panel++) {
    const long jr = panel * NR;
    const long nr = std::min<long>(NR, nc - jr);
    const float* b = pbuf + panel * pbStride;
    for (long ir = 0; ir < mc; ir += MR) {
      const long mr = std::min<long>(MR, mc - ir);
      const float* a = pa + (ir / MR) * paStride;
      float* c = C + ir * ldc + jr;
      if (mr == MR && nr == NR) {
        ops->ukr(kc, alpha, a, b, beta, c, ldc);
      } else {
        ops->ukr(kc, alpha, a, b, 0.0f, tmp, NR);
        for (long i = 0; i < mr; i++) {
          float* crow = c + i * ldc;
          const float* t = tmp + i * NR;
          if (beta == 0.0f)
            for (long j = 0; j < nr; j++) crow[j] = t[j];
          else
            for (long j = 0; j < nr; j++) crow[j] = beta * crow[j] + t[j];
        }
      }
    }
  }
}

inline void macroKernel(const IsaOps* ops, long mc, long nc, long kc, long pb, long pe, float alpha, const float* pa,
                        const float* pbuf, float beta, float* C, long ldc) {
  macroKernelS(ops, mc, nc, kc, pb, pe, alpha, pa, ops->mr * kc, pbuf, ops->nr * kc, beta, C, ldc);
}

// Few rows of A (decoding: one row per sequence) against B = W^T: the tiled path would pack the
// whole of B (every weight) into a buffer and read it back, tripling the memory traffic of a
// memory-bound product. Here each NR-column panel of B is packed, one K block at a time, into a
// small per-thread buffer that stays in L1 and is consumed at once by the one-row micro-kernel.
// The per-element arithmetic (K blocks in order, the micro-kernel's FMA chain, the partial-tile
// combine) is the tiled path's, so results do not depend on how many rows are in the batch. On the
// portable bf16 path (roundBf16) A's rows are rounded once up front and B while packing, as the
// tiled path rounds its packed panels.
constexpr long kGemvMaxRows = 4;

bool gemvEligible(const GemmDesc& d) {
  return !d.transA && d.alpha == 1.0f && d.bf16 == nullptr && d.M >= 1 && d.M <= kGemvMaxRows && d.K > 0;
}

// Panels [pb, pe) of C's columns; A holds the M rows (row stride lda) the kernels read.
void gemvPanels(const GemmDesc& d, const IsaOps* ops, const float* A, long lda, long pb, long pe) {
  const int NR = ops->nr;
  const long KC = ops->kc;
  float* buf = tlsPackB.get(static_cast<size_t>(NR * std::min<long>(KC, d.K)));
  alignas(64) float tmp[kMaxTile];
  for (long panel = pb; panel < pe; panel++) {
    const long j0 = panel * NR;
    const long nr = std::min<long>(NR, d.N - j0);
    for (long pc = 0; pc < d.K; pc += KC) {
      const long kc = std::min(KC, d.K - pc);
      const float beta = pc == 0 ? d.beta : 1.0f;
      packB(d, ops, pc, kc, j0, nr, 0, 1, buf);
      for (long i = 0; i < d.M; i++) {
        const float* a = A + i * lda + pc;
        float* c = d.C + i * d.ldc + j0;
        if (nr == NR) {
          ops->ukr1(kc, d.alpha, a, buf, beta, c, d.ldc);
        } else {
          ops->ukr1(kc, d.alpha, a, buf, 0.0f, tmp, NR);
          for (long j = 0; j < nr; j++) c[j] = beta == 0.0f ? tmp[j] : beta * c[j] + tmp[j];
        }
      }
    }
  }
}

// The few-rows product on `threads` threads (the calling one only when 1). Panels are handed out
// in chunks as threads ask for them (a thread whose core is shared takes fewer); which thread
// computes a panel does not change its bits.
void gemvRun(const GemmDesc& d, int threads) {
  const IsaOps* ops = isa();
  const float* A = d.A;
  long lda = d.lda;
  if (d.roundBf16) {
    float* r = tlsPackA.get(static_cast<size_t>(d.M * d.K));
    for (long i = 0; i < d.M; i++) {
      std::memcpy(r + i * d.K, d.A + i * d.lda, sizeof(float) * d.K);
      roundToBf16(r + i * d.K, d.K);
    }
    A = r;
    lda = d.K;
  }
  const long panels = (d.N + ops->nr - 1) / ops->nr;
  if (threads <= 1) return gemvPanels(d, ops, A, lda, 0, panels);
  const long chunk = std::max<long>(1, panels / (4L * threads));
  parallelDynamic((panels + chunk - 1) / chunk, threads, [&](long t, int) {
    gemvPanels(d, ops, A, lda, t * chunk, std::min(panels, (t + 1) * chunk));
  });
}

// C = beta C (beta 0: zero) for the degenerate K == 0 case.
void scaleC(const GemmDesc& d) {
  for (long i = 0; i < d.M; i++) {
    float* c = d.C + i * d.ldc;
    if (d.beta == 0.0f)
      for (long j = 0; j < d.N; j++) c[j] = 0.0f;
    else if (d.beta != 1.0f)
      for (long j = 0; j < d.N; j++) c[j] *= d.beta;
  }
}

}  // namespace

int gemmMR() { return isa()->mr; }
int gemmNR() { return isa()->nr; }

void packAFull(bool transA, const float* A, long lda, long m, long k, float* dst) {
  packARaw(transA, A, lda, 0, m, 0, k, dst, isa()->mr);
}

void packBFull(bool transB, const void* B, bool bf16, long ldb, long k, long n, float* dst) {
  const IsaOps* ops = isa();
  packBRaw(ops, transB, B, bf16, ldb, 0, k, 0, n, 0, (n + ops->nr - 1) / ops->nr, dst);
}

void gemmPacked(long m, long n, long k, float alpha, const float* pa, long paStride, const float* pb, long pbStride,
                float beta, float* C, long ldc) {
  if (m <= 0 || n <= 0) return;
  const IsaOps* ops = isa();
  if (k <= 0) {
    GemmDesc d{};
    d.M = m;
    d.N = n;
    d.beta = beta;
    d.C = C;
    d.ldc = ldc;
    return scaleC(d);
  }
  macroKernelS(ops, m, n, k, 0, (n + ops->nr - 1) / ops->nr, alpha, pa, paStride, pb, pbStride, beta, C, ldc);
}

void gemmSerial(const GemmDesc& d) {
  if (d.M <= 0 || d.N <= 0) return;
  if (d.K <= 0) return scaleC(d);
  if (d.bf16) return gemmBf16Serial(d);
  if (gemvEligible(d)) return gemvRun(d, 1);
  const IsaOps* ops = isa();
  const int MR = ops->mr, NR = ops->nr;
  const long KC = ops->kc;
  const long NC = std::min<long>(ops->nc, roundUp(d.N, NR));
  const long MC = std::min<long>(ops->mc, roundUp(d.M, MR));
  float* pa = tlsPackA.get(static_cast<size_t>(MC * std::min<long>(KC, d.K)));
  float* pb = tlsPackB.get(static_cast<size_t>(NC * std::min<long>(KC, d.K)));
  for (long jc = 0; jc < d.N; jc += NC) {
    const long nc = std::min(NC, d.N - jc);
    const long np = (nc + NR - 1) / NR;
    for (long pc = 0; pc < d.K; pc += KC) {
      const long kc = std::min(KC, d.K - pc);
      const float beta = pc == 0 ? d.beta : 1.0f;
      packB(d, ops, pc, kc, jc, nc, 0, np, pb);
      for (long ic = 0; ic < d.M; ic += MC) {
        const long mc = std::min(MC, d.M - ic);
        packA(d, ic, mc, pc, kc, pa, MR);
        macroKernel(ops, mc, nc, kc, 0, np, d.alpha, pa, pb, beta, d.C + ic * d.ldc + jc, d.ldc);
      }
    }
  }
}

void gemmParallel(const GemmDesc& d) {
  if (d.M <= 0 || d.N <= 0) return;
  const double work = static_cast<double>(d.M) * d.N * (d.K > 0 ? d.K : 1);
  // few rows are memory-bound: worth a second thread from a few hundred KB of weights on
  if (gemvEligible(d)) return gemvRun(d, threadsFor(static_cast<double>(d.N) * d.K, 1 << 16));
  if (gemmBf16FewEligible(d)) return gemmBf16Few(d, threadsFor(static_cast<double>(d.N) * d.K, 1 << 16));
  const int want = threadsFor(work, 1 << 20);
  if (want <= 1 || d.K <= 0) return gemmSerial(d);
  if (d.bf16) return gemmBf16Parallel(d, want);
  const IsaOps* ops = isa();
  const int MR = ops->mr, NR = ops->nr;
  const long KC = ops->kc;
  const long NC = std::min<long>(ops->nc, roundUp(d.N, NR));
  const long MC = std::min<long>(ops->mc, roundUp(d.M, MR));
  float* pb = sharedPackB.get(static_cast<size_t>(NC * std::min<long>(KC, d.K)));
  const long mPanels = (d.M + MR - 1) / MR;
  parallel(want, [&](int tid, int nt) {
    // Thread grid tm x tn over (M panels, N panels of each NC block): the best balanced split.
    const long nPanelsBlock = (std::min(NC, d.N) + NR - 1) / NR;
    int tm = nt, tn = 1;
    double best = -1;
    for (int cand = nt; cand >= 1; cand--) {
      if (nt % cand) continue;
      const int cn = nt / cand;
      const double em = static_cast<double>(mPanels) / (cand * ((mPanels + cand - 1) / cand));
      const double en = static_cast<double>(nPanelsBlock) / (cn * ((nPanelsBlock + cn - 1) / cn));
      const double e = em * en * (cn > 1 ? 0.97 : 1.0);
      if (e > best + 1e-9) {
        best = e;
        tm = cand;
        tn = cn;
      }
    }
    const int im = tid % tm, in = tid / tm;
    long mb, me;
    splitRange(mPanels, im, tm, &mb, &me);
    float* pa = tlsPackA.get(static_cast<size_t>(MC * std::min<long>(KC, d.K)));
    for (long jc = 0; jc < d.N; jc += NC) {
      const long nc = std::min(NC, d.N - jc);
      const long np = (nc + NR - 1) / NR;
      long nb, ne;
      splitRange(np, in, tn, &nb, &ne);
      for (long pc = 0; pc < d.K; pc += KC) {
        const long kc = std::min(KC, d.K - pc);
        const float beta = pc == 0 ? d.beta : 1.0f;
        long pb0, pb1;
        splitRange(np, tid, nt, &pb0, &pb1);
        packB(d, ops, pc, kc, jc, nc, pb0, pb1, pb);
        poolBarrier(nt);
        if (ne > nb) {
          for (long ic = mb * MR; ic < std::min(me * MR, d.M); ic += MC) {
            const long mc = std::min(std::min(MC, me * MR - ic), d.M - ic);
            packA(d, ic, mc, pc, kc, pa, MR);
            macroKernel(ops, mc, nc, kc, nb, ne, d.alpha, pa, pb, beta, d.C + ic * d.ldc + jc, d.ldc);
          }
        }
        poolBarrier(nt);
      }
    }
  });
}

void gemmBatched(const GemmDesc& d, long batch, long strideA, long strideB, long strideC) {
  if (batch <= 0) return;
  const size_t bElem = d.bBf16 ? 2 : 4;
  auto at = [&](long b) {
    GemmDesc g = d;
    g.A = d.A + b * strideA;
    g.B = static_cast<const char*>(d.B) + static_cast<size_t>(b * strideB) * bElem;
    g.C = d.C + b * strideC;
    return g;
  };
  if (batch == 1) return gemmParallel(at(0));
  if (strideC == 0) {  // every product writes the same C: in order, as the reference does
    for (long b = 0; b < batch; b++) gemmParallel(at(b));
    return;
  }
  const double per = static_cast<double>(d.M) * d.N * (d.K > 0 ? d.K : 1);
  // Many small products: one thread per batch range. Large ones: each product on all threads.
  if (per < static_cast<double>(1 << 22) * poolSize() || batch >= 4 * poolSize()) {
    const int want = threadsFor(per * batch, 1 << 20);
    const int nt = static_cast<int>(std::min<long>(want, batch));
    if (nt <= 1) {
      for (long b = 0; b < batch; b++) gemmSerial(at(b));
      return;
    }
    parallel(nt, [&](int tid, int n) {
      long b0, b1;
      splitRange(batch, tid, n, &b0, &b1);
      for (long b = b0; b < b1; b++) gemmSerial(at(b));
    });
    return;
  }
  for (long b = 0; b < batch; b++) gemmParallel(at(b));
}

}  // namespace attune

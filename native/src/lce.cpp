// Fused LM head: logits = h [N, d] x w [V, d]^T computed in vocabulary chunks on the GEMM
// micro-kernels (never [N, V] at once), reduced on the fly to per-row statistics (forward), or turned
// into dL/dlogits per chunk and multiplied straight back into gh and gw (backward).
//
// Determinism: the forward computes per-(chunk, row) statistics and merges them in chunk order (the
// same for any thread count). The backward accumulates gw per chunk over row blocks in order (any
// thread count); gh gets one partial per thread (contiguous chunk ranges) added in thread order.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common.h"
#include "gemm.h"
#include "kernels.h"

namespace attune {
namespace {

inline long roundUp(long v, long m) { return (v + m - 1) / m * m; }

constexpr long kVc = 256;  // vocabulary chunk
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

struct ChunkStat {
  double s;     // sum exp(z - m)
  double t;     // sum exp(z - m) * z
  float m;      // max logit of the chunk
  float m2;     // second largest
  float gold;   // logit of the label when it lies in the chunk
  int32_t arg;  // first index of the max
};

thread_local AlignedBuf sharedH;      // packed h (A panels per K block, then B panels)
thread_local AlignedBuf sharedStats;  // ChunkStat [chunks][N]
thread_local AlignedBuf sharedGh;     // gh partials
thread_local AlignedBuf tlsW, tlsWn, tlsZ, tlsZa, tlsZt;

struct Plan {
  long N, d, V, MR, NR, KC, nb, kBlocks, chunks;
  long aSize;  // floats of packed-A h for one K block (roundUp(N, MR) * kc)
  long bOff;   // offset of the B-format h in the shared buffer
};

Plan makePlan(long N, long d, long V) {
  Plan p{};
  p.N = N;
  p.d = d;
  p.V = V;
  p.MR = gemmMR();
  p.NR = gemmNR();
  p.KC = isa()->kc;
  p.nb = p.MR * std::max<long>(1, (256 + p.MR / 2) / p.MR);
  p.kBlocks = (d + p.KC - 1) / p.KC;
  p.chunks = (V + kVc - 1) / kVc;
  p.aSize = roundUp(N, p.MR) * p.KC;
  p.bOff = p.aSize * p.kBlocks;
  return p;
}

// Packs h as A panels per K block (and as B panels over all rows when asB).
float* packH(const Plan& p, const float* h, bool asB) {
  const long total = p.bOff + (asB ? roundUp(p.d, p.NR) * p.N : 0);
  float* buf = sharedH.get(static_cast<size_t>(total));
  parallelFor(p.kBlocks + (asB ? 1 : 0), 1, [&](long b0, long e0) {
    for (long kb = b0; kb < e0; kb++) {
      if (kb < p.kBlocks) {
        const long k0 = kb * p.KC, kc = std::min(p.KC, p.d - k0);
        packAFull(false, h + k0, p.d, p.N, kc, buf + kb * p.aSize);
      } else {
        packBFull(false, h, false, p.d, p.N, p.d, buf + p.bOff);
      }
    }
  });
  return buf;
}

// Packs w rows [v0, v0 + vc) as B = w^T (per K block, panel stride kc * NR).
void packWt(const Plan& p, const void* w, bool bf16, long v0, long vc, float* dst) {
  const size_t es = bf16 ? 2 : 4;
  const long vcPad = roundUp(vc, p.NR);
  for (long kb = 0; kb < p.kBlocks; kb++) {
    const long k0 = kb * p.KC, kc = std::min(p.KC, p.d - k0);
    const char* src = static_cast<const char*>(w) + (static_cast<size_t>(v0) * p.d + k0) * es;
    packBFull(true, src, bf16, p.d, kc, vc, dst + kb * vcPad * p.KC);
  }
}

// z [m x vc] (ld kVc) = h rows [r0, r0 + m) x w chunk^T.
void chunkLogits(const Plan& p, const float* hp, const float* wt, long r0, long m, long vc, float* z) {
  const long vcPad = roundUp(vc, p.NR);
  for (long kb = 0; kb < p.kBlocks; kb++) {
    const long kc = std::min(p.KC, p.d - kb * p.KC);
    gemmPacked(m, vc, kc, 1.0f, hp + kb * p.aSize + r0 * kc, p.MR * kc, wt + kb * vcPad * p.KC, p.NR * kc,
               kb == 0 ? 0.0f : 1.0f, z, kVc);
  }
}

// z [m x vc] (ld kVc) = h rows [r0, r0 + m) x w rows [v0, v0 + vc)^T in bf16 compute.
void chunkLogitsBf16(const Plan& p, const float* h, const void* w, bool wBf16, long r0, long m, long v0, long vc,
                     float* z) {
  const size_t es = wBf16 ? 2 : 4;
  gemmBf16Here(false, true, m, vc, p.d, 1.0f, h + r0 * p.d, p.d, static_cast<const char*>(w) + static_cast<size_t>(v0) * p.d * es,
               wBf16, p.d, 0.0f, z, kVc);
}

}  // namespace

void linearCrossEntropy(const float* h, const void* w, bool wBf16, const int32_t* labels, long N, long d, long V,
                        const LceOuts& outs, bool bf16Compute) {
  if (N <= 0) return;
  const Plan p = makePlan(N, d, V);
  const IsaOps* ops = isa();
  if (V <= 0 || d <= 0) {
    for (long r = 0; r < N; r++) {
      outs.lse[r] = V <= 0 ? kNegInf : 0.0f;
      outs.logp[r] = 0.0f;
      outs.entropy[r] = 0.0f;
      outs.argmax[r] = 0;
      outs.top1[r] = 0.0f;
      outs.top2[r] = kNegInf;
    }
    if (d <= 0 && V > 0) {  // all logits 0: uniform
      const float l = static_cast<float>(std::log(static_cast<double>(V)));
      for (long r = 0; r < N; r++) {
        outs.lse[r] = l;
        outs.logp[r] = labels[r] == -100 ? 0.0f : -l;
        outs.entropy[r] = l;
        outs.top1[r] = -l;
        outs.top2[r] = V > 1 ? -l : kNegInf;
      }
    }
    return;
  }
  const float* hp = bf16Compute ? nullptr : packH(p, h, false);
  static_assert(sizeof(ChunkStat) % sizeof(float) == 0, "ChunkStat size");
  ChunkStat* stats = reinterpret_cast<ChunkStat*>(
      sharedStats.get(static_cast<size_t>(p.chunks * N) * (sizeof(ChunkStat) / sizeof(float))));
  const double work = 2.0 * N * d * V;
  parallelDynamic(p.chunks, threadsFor(work, 1 << 22), [&](long c, int) {
    const long v0 = c * kVc, vc = std::min(kVc, V - v0);
    float* z = tlsZ.get(static_cast<size_t>(p.nb * kVc));
    float* wt = nullptr;
    if (!bf16Compute) {
      wt = tlsW.get(static_cast<size_t>(roundUp(vc, p.NR) * p.KC * p.kBlocks));
      packWt(p, w, wBf16, v0, vc, wt);
    }
    ChunkStat* cs = stats + c * N;
    for (long r0 = 0; r0 < N; r0 += p.nb) {
      const long m = std::min(p.nb, N - r0);
      if (bf16Compute)
        chunkLogitsBf16(p, h, w, wBf16, r0, m, v0, vc, z);
      else
        chunkLogits(p, hp, wt, r0, m, vc, z);
      for (long i = 0; i < m; i++) {
        const float* zr = z + i * kVc;
        ChunkStat& st = cs[r0 + i];
        float t1, t2;
        ops->top2(zr, vc, &t1, &t2);
        st.m = t1;
        st.m2 = t2;
        long a = 0;
        while (a < vc - 1 && !(zr[a] == t1)) a++;
        st.arg = static_cast<int32_t>(v0 + a);
        double dot = 0;
        st.s = std::isfinite(t1) ? ops->expShiftSumDot(zr, vc, t1, &dot) : 0.0;
        st.t = dot;
        const int32_t lab = labels[r0 + i];
        st.gold = (lab >= v0 && lab < v0 + vc) ? zr[lab - v0] : 0.0f;
      }
    }
  });
  parallelFor(N, 64, [&](long b0, long e0) {
    for (long r = b0; r < e0; r++) {
      double M = -std::numeric_limits<double>::infinity(), S = 0, T = 0;
      float T1 = kNegInf, T2 = kNegInf, gold = 0;
      int32_t A = 0;
      const int32_t lab = labels[r];
      for (long c = 0; c < p.chunks; c++) {
        const ChunkStat& st = stats[c * N + r];
        if (c == 0 || st.m > T1) {
          T2 = c == 0 ? st.m2 : std::max(T1, st.m2);
          T1 = st.m;
          A = st.arg;
        } else {
          T2 = std::max(T2, st.m);
        }
        if (lab >= c * kVc && lab < (c + 1) * kVc) gold = st.gold;
        if (st.s > 0) {
          const double mc = st.m;
          const double mn = std::max(M, mc);
          const double a = S > 0 ? std::exp(M - mn) : 0.0, b = std::exp(mc - mn);
          S = S * a + st.s * b;
          T = T * a + st.t * b;
          M = mn;
        }
      }
      const double lse = S > 0 ? M + std::log(S) : static_cast<double>(T1);
      outs.lse[r] = static_cast<float>(lse);
      outs.entropy[r] = S > 0 ? static_cast<float>(lse - T / S) : 0.0f;
      outs.logp[r] = lab == -100 ? 0.0f : static_cast<float>(gold - lse);
      outs.argmax[r] = A;
      outs.top1[r] = static_cast<float>(T1 - lse);
      outs.top2[r] = V > 1 ? static_cast<float>(T2 - lse) : kNegInf;
    }
  });
}

void linearCrossEntropyBackward(const float* h, const void* w, bool wBf16, const int32_t* labels, const float* lse,
                                const float* entropy, const int32_t* argmax, const float* cLogp, const float* cEnt,
                                const float* cTop1, float* gh, float* gw, long N, long d, long V, bool bf16Compute) {
  if (N <= 0 || d <= 0) return;
  if (V <= 0 || (!gh && !gw)) {
    if (gh) std::fill(gh, gh + N * d, 0.0f);
    return;
  }
  const Plan p = makePlan(N, d, V);
  const IsaOps* ops = isa();
  const float* hp = bf16Compute ? nullptr : packH(p, h, gw != nullptr);
  const float* hb = bf16Compute ? nullptr : hp + p.bOff;
  const size_t es = wBf16 ? 2 : 4;
  const double work = 6.0 * N * d * V;
  const int want = threadsFor(work, 1 << 22);
  const int maxT = static_cast<int>(std::min<long>(want, p.chunks));
  float* ghParts = nullptr;
  if (gh && maxT > 1) ghParts = sharedGh.get(static_cast<size_t>((maxT - 1) * N * d));
  int used = 1;
  parallel(maxT, [&](int tid, int nt) {
    if (tid == 0) used = nt;
    long c0, c1;
    splitRange(p.chunks, tid, nt, &c0, &c1);
    float* ghp = gh ? (tid == 0 ? gh : ghParts + (tid - 1) * N * d) : nullptr;
    if (ghp) std::fill(ghp, ghp + N * d, 0.0f);
    float* wt = tlsW.get(static_cast<size_t>(roundUp(kVc, p.NR) * p.KC * p.kBlocks));
    float* wn = tlsWn.get(static_cast<size_t>(roundUp(d, p.NR) * kVc));
    float* z = tlsZ.get(static_cast<size_t>(p.nb * kVc));
    float* za = tlsZa.get(static_cast<size_t>(roundUp(p.nb, p.MR) * kVc));
    float* zt = tlsZt.get(static_cast<size_t>(roundUp(kVc, p.MR) * p.nb));
    for (long c = c0; c < c1; c++) {
      const long v0 = c * kVc, vc = std::min(kVc, V - v0);
      const char* wChunk = static_cast<const char*>(w) + static_cast<size_t>(v0) * d * es;
      if (!bf16Compute) {
        packWt(p, w, wBf16, v0, vc, wt);
        if (ghp) packBFull(false, wChunk, wBf16, d, vc, d, wn);
      }
      for (long r0 = 0; r0 < N; r0 += p.nb) {
        const long m = std::min(p.nb, N - r0);
        if (bf16Compute)
          chunkLogitsBf16(p, h, w, wBf16, r0, m, v0, vc, z);
        else
          chunkLogits(p, hp, wt, r0, m, vc, z);
        for (long i = 0; i < m; i++) {
          const long r = r0 + i;
          float* zr = z + i * kVc;
          const int32_t lab = labels[r];
          const float cl = lab == -100 ? 0.0f : cLogp[r];
          const float ct = cTop1 ? cTop1[r] : 0.0f;
          const float ce = cEnt[r];
          const float a = cl + ct + ce * (entropy[r] - lse[r]);
          ops->lceGrad(zr, vc, lse[r], a, ce);
          if (lab >= v0 && lab < v0 + vc) zr[lab - v0] += cl;
          const int32_t am = argmax[r];
          if (am >= v0 && am < v0 + vc) zr[am - v0] += ct;
        }
        if (bf16Compute) {
          // the same two products in bf16 compute (dZ, h and w rounded to bf16, f32 accumulation)
          if (gw) gemmBf16Here(true, false, vc, d, m, 1.0f, z, kVc, h + r0 * d, false, d, 1.0f, gw + v0 * d, d);
          if (ghp) gemmBf16Here(false, false, m, d, vc, 1.0f, z, kVc, wChunk, wBf16, d, 1.0f, ghp + r0 * d, d);
          continue;
        }
        if (gw) {
          // gw[v0 .. v0 + vc) += dZ^T h_rows
          packAFull(true, z, kVc, vc, m, zt);
          gemmPacked(vc, d, m, 1.0f, zt, p.MR * m, hb + r0 * p.NR, p.NR * N, 1.0f, gw + v0 * d, d);
        }
        if (ghp) {
          // gh_rows += dZ w_chunk
          packAFull(false, z, kVc, m, vc, za);
          gemmPacked(m, d, vc, 1.0f, za, p.MR * vc, wn, p.NR * vc, 1.0f, ghp + r0 * d, d);
        }
      }
    }
  });
  if (gh && used > 1) {
    parallelFor(N * d, 1 << 15, [&](long b0, long e0) {
      for (int t = 1; t < used; t++) {
        const float* src = ghParts + (t - 1) * N * d;
        for (long i = b0; i < e0; i++) gh[i] += src[i];
      }
    });
  }
}

}  // namespace attune

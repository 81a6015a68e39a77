// Causal / full scaled-dot-product attention with grouped KV heads, computed in tiles flash-attention
// style: scores are never materialised beyond one [Br x Bc] tile, the forward keeps an online
// softmax and stores only lse [B, Hq, Tq]; the backward recomputes each tile's probabilities.
// Every product inside a tile runs on the GEMM micro-kernels over pre-packed operands; under bf16
// compute (AttnShape::bf16, attentionBf16) each product instead takes its operands unpacked and runs
// on the active bf16 GEMM path (gemmBf16SerialActive: AMX, AVX512-BF16 or the rounding fallback),
// which rounds both to bf16 while packing and accumulates in f32. The softmax statistics, lse,
// delta and the dropout mask stay f32 / f64 either way.
//
// Determinism: forward items (b, h, query tile) and backward items (b, h) are independent and each
// computes in a fixed order, so results do not depend on the thread count or the scheduling; the
// per-query-head dK/dV partials of a KV group are added in head order.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"
#include "gemm.h"
#include "kernels.h"

namespace attune {
namespace {

inline long roundUp(long v, long m) { return (v + m - 1) / m * m; }

struct TileDims {
  long br, bc;
};

TileDims tileDims() {
  const long MR = gemmMR(), NR = gemmNR();
  return {MR * std::max<long>(1, (64 + MR / 2) / MR), NR * std::max<long>(1, (128 + NR / 2) / NR)};
}

// Scratch owned by the calling thread (shared with the workers of its region) and per worker.
thread_local AlignedBuf sharedPack;
thread_local AlignedBuf sharedPartial;
thread_local AlignedBuf tlsA, tlsB, tlsC, tlsD, tlsS, tlsP, tlsX, tlsY, tlsZ, tlsRow;

// Number of valid (unmasked) keys of query t inside the key tile [j0, j0 + n).
inline long validKeys(bool causal, long t, long offset, long j0, long n) {
  if (!causal) return n;
  const long lim = t + offset - j0 + 1;
  return lim < 0 ? 0 : lim > n ? n : lim;
}

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, float* lse, const AttnShape& s) {
  const long B = s.B, Tq = s.Tq, Tk = s.Tk, Hq = s.Hq, Hkv = s.Hkv, D = s.D;
  if (B <= 0 || Tq <= 0 || Hq <= 0 || D <= 0) return;
  const long group = Hq / Hkv;
  const long offset = Tk - Tq;
  const long MR = gemmMR(), NR = gemmNR();
  const TileDims td = tileDims();
  const long br = td.br, bc = td.bc;
  const long kpSize = roundUp(std::max<long>(Tk, 1), NR) * D;
  const long vpSize = roundUp(D, NR) * std::max<long>(Tk, 1);
  const long perKv = kpSize + vpSize;
  const bool bf16 = s.bf16;
  float* packs = bf16 ? nullptr : sharedPack.get(static_cast<size_t>(B * Hkv * perKv));
  const long ldq = Hq * D, ldk = Hkv * D;
  const DropoutMask mask(s.seed, s.dropP);
  const bool dropout = s.dropP > 0;
  const float invKeep = static_cast<float>(1.0 / mask.keepProb);

  if (!bf16)
    parallelFor(B * Hkv, 1, [&](long b0, long e0) {
      for (long bh = b0; bh < e0; bh++) {
        const long b = bh / Hkv, hk = bh % Hkv;
        const float* kb = k + (b * Tk * Hkv + hk) * D;
        const float* vb = v + (b * Tk * Hkv + hk) * D;
        packBFull(true, kb, false, ldk, D, Tk, packs + bh * perKv);
        packBFull(false, vb, false, ldk, Tk, D, packs + bh * perKv + kpSize);
      }
    });

  const long nqt = (Tq + br - 1) / br;
  const long items = B * Hq * nqt;
  const double work = static_cast<double>(B) * Hq * Tq * Tk * D * (s.causal ? 0.5 : 1.0);
  parallelDynamic(items, threadsFor(work, 1 << 18), [&](long item, int) {
    // Heaviest (last) query tiles first.
    const long qt = nqt - 1 - item % nqt;
    const long bh = item / nqt;
    const long b = bh / Hq, h = bh % Hq, hk = h / group;
    const long i0 = qt * br;
    const long m = std::min(br, Tq - i0);
    const float* kp = bf16 ? nullptr : packs + (b * Hkv + hk) * perKv;
    const float* vp = bf16 ? nullptr : kp + kpSize;
    const float* qrows = q + ((b * Tq + i0) * Hq + h) * D;
    const float* krows = k + (b * Tk * Hkv + hk) * D;
    const float* vrows = v + (b * Tk * Hkv + hk) * D;
    float* qa = bf16 ? nullptr : tlsA.get(static_cast<size_t>(roundUp(br, MR) * D));
    float* S = tlsS.get(static_cast<size_t>(br * bc));
    float* pa = bf16 ? nullptr : tlsP.get(static_cast<size_t>(roundUp(br, MR) * bc));
    float* O = tlsC.get(static_cast<size_t>(br * D));
    float* rowM = tlsRow.get(static_cast<size_t>(3 * br));
    float* rowL = rowM + br;
    uint8_t* keep = reinterpret_cast<uint8_t*>(tlsX.get(static_cast<size_t>(bc / 4 + 16)));
    if (!bf16) packAFull(false, qrows, ldq, m, D, qa);
    std::fill(O, O + m * D, 0.0f);
    for (long i = 0; i < m; i++) {
      rowM[i] = kNegInf;
      rowL[i] = 0.0f;
    }
    const long kEnd = s.causal ? std::min(Tk, i0 + m + offset) : Tk;
    for (long j0 = 0; j0 < kEnd; j0 += bc) {
      const long n = std::min(bc, kEnd - j0);
      if (bf16)
        gemmBf16Here(false, true, m, n, D, s.scale, qrows, ldq, krows + j0 * ldk, false, ldk, 0.0f, S, bc);
      else
        gemmPacked(m, n, D, s.scale, qa, MR * D, kp + (j0 / NR) * D * NR, D * NR, 0.0f, S, bc);
      for (long i = 0; i < m; i++) {
        const long t = i0 + i;
        float* row = S + i * bc;
        const long lim = validKeys(s.causal, t, offset, j0, n);
        if (lim == 0) {
          std::fill(row, row + n, 0.0f);
          continue;
        }
        const float tileMax = isa()->rowMax(row, lim);
        const float mNew = std::max(rowM[i], tileMax);
        if (mNew == kNegInf) {  // every score so far is -inf
          std::fill(row, row + n, 0.0f);
          continue;
        }
        const float corr = rowM[i] == kNegInf ? 0.0f : std::exp(rowM[i] - mNew);
        const double sum = isa()->expShift(row, row, lim, mNew);
        std::fill(row + lim, row + n, 0.0f);
        rowL[i] = static_cast<float>(static_cast<double>(rowL[i]) * corr + sum);
        if (corr != 1.0f) {
          float* o = O + i * D;
          for (long d = 0; d < D; d++) o[d] *= corr;
        }
        rowM[i] = mNew;
        if (dropout) {
          mask.fill(static_cast<uint64_t>(((b * Hq + h) * Tq + t) * Tk + j0), lim, keep);
          for (long j = 0; j < lim; j++) row[j] = keep[j] ? row[j] * invKeep : 0.0f;
        }
      }
      if (bf16) {
        gemmBf16Here(false, false, m, D, n, 1.0f, S, bc, vrows + j0 * ldk, false, ldk, 1.0f, O, D);
      } else {
        packAFull(false, S, bc, m, n, pa);
        gemmPacked(m, D, n, 1.0f, pa, MR * n, vp + j0 * NR, Tk * NR, 1.0f, O, D);
      }
    }
    for (long i = 0; i < m; i++) {
      const long t = i0 + i;
      float* dst = out + ((b * Tq + t) * Hq + h) * D;
      const float* o = O + i * D;
      float* l = lse + (b * Hq + h) * Tq + t;
      if (rowL[i] > 0.0f) {
        const float inv = 1.0f / rowL[i];
        for (long d = 0; d < D; d++) dst[d] = o[d] * inv;
        *l = rowM[i] + std::log(rowL[i]);
      } else {
        for (long d = 0; d < D; d++) dst[d] = 0.0f;
        *l = kNegInf;
      }
    }
  });
}

void attentionBackward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                       const float* gOut, float* gq, float* gk, float* gv, const AttnShape& s) {
  const long B = s.B, Tq = s.Tq, Tk = s.Tk, Hq = s.Hq, Hkv = s.Hkv, D = s.D;
  if (B <= 0 || Hq <= 0 || D <= 0) return;
  const long group = Hq / Hkv;
  const long offset = Tk - Tq;
  const long MR = gemmMR(), NR = gemmNR();
  const TileDims td = tileDims();
  const long br = td.br, bc = td.bc;
  const long ldq = Hq * D, ldk = Hkv * D;
  const long tkPad = roundUp(std::max<long>(Tk, 1), NR);
  const long kpSize = tkPad * D;                                // K^T as B (k = D, n = Tk)
  const long knSize = roundUp(D, NR) * std::max<long>(Tk, 1);   // K as B (k = Tk, n = D)
  const long perKv = 2 * kpSize + knSize;                       // + V^T as B (k = D, n = Tk)
  const bool bf16 = s.bf16;
  float* packs = bf16 ? nullptr : sharedPack.get(static_cast<size_t>(B * Hkv * perKv));
  float* partial = sharedPartial.get(static_cast<size_t>(2 * B * Hq * std::max<long>(Tk, 1) * D));
  float* dKpart = partial;
  float* dVpart = partial + B * Hq * Tk * D;
  const DropoutMask mask(s.seed, s.dropP);
  const bool dropout = s.dropP > 0;
  const float invKeep = static_cast<float>(1.0 / mask.keepProb);

  if (Tq <= 0 || Tk <= 0) {
    if (Tq > 0) std::fill(gq, gq + B * Tq * Hq * D, 0.0f);
    if (Tk > 0) {
      std::fill(gk, gk + B * Tk * Hkv * D, 0.0f);
      std::fill(gv, gv + B * Tk * Hkv * D, 0.0f);
    }
    return;
  }

  if (!bf16)
    parallelFor(B * Hkv, 1, [&](long b0, long e0) {
      for (long bh = b0; bh < e0; bh++) {
        const long b = bh / Hkv, hk = bh % Hkv;
        const float* kb = k + (b * Tk * Hkv + hk) * D;
        const float* vb = v + (b * Tk * Hkv + hk) * D;
        float* base = packs + bh * perKv;
        packBFull(true, kb, false, ldk, D, Tk, base);
        packBFull(true, vb, false, ldk, D, Tk, base + kpSize);
        packBFull(false, kb, false, ldk, Tk, D, base + 2 * kpSize);
      }
    });

  const double work = static_cast<double>(B) * Hq * Tq * Tk * D * (s.causal ? 0.5 : 1.0);
  parallelDynamic(B * Hq, threadsFor(work * 2.5, 1 << 18), [&](long bh, int) {
    const long b = bh / Hq, h = bh % Hq, hk = h / group;
    const float* kp = bf16 ? nullptr : packs + (b * Hkv + hk) * perKv;
    const float* vpT = bf16 ? nullptr : kp + kpSize;
    const float* kn = bf16 ? nullptr : kp + 2 * kpSize;
    const float* krows = k + (b * Tk * Hkv + hk) * D;
    const float* vrows = v + (b * Tk * Hkv + hk) * D;
    const float* qrows = q + (b * Tq * Hq + h) * D;
    const float* gorows = gOut + (b * Tq * Hq + h) * D;
    const float* orows = out + (b * Tq * Hq + h) * D;
    float* gqrows = gq + (b * Tq * Hq + h) * D;
    const float* lrow = lse + (b * Hq + h) * Tq;
    const long aSize = roundUp(Tq, MR) * D, bSize = roundUp(D, NR) * Tq;
    float* qa = bf16 ? nullptr : tlsA.get(static_cast<size_t>(aSize));
    float* qb = bf16 ? nullptr : tlsB.get(static_cast<size_t>(bSize));
    float* ga = bf16 ? nullptr : tlsC.get(static_cast<size_t>(aSize));
    float* gb = bf16 ? nullptr : tlsD.get(static_cast<size_t>(bSize));
    float* S = tlsS.get(static_cast<size_t>(2 * br * bc));
    float* dP = S + br * bc;
    const long tileA = std::max(roundUp(br, MR) * bc, roundUp(bc, MR) * br);
    float* pa = bf16 ? nullptr : tlsP.get(static_cast<size_t>(3 * tileA));
    float* pa2 = bf16 ? nullptr : pa + tileA;
    float* pa3 = bf16 ? nullptr : pa2 + tileA;
    float* delta = tlsRow.get(static_cast<size_t>(Tq));
    uint8_t* keep = reinterpret_cast<uint8_t*>(tlsX.get(static_cast<size_t>(bc / 4 + 16)));
    if (!bf16) {
      packAFull(false, qrows, ldq, Tq, D, qa);
      packBFull(false, qrows, false, ldq, Tq, D, qb);
      packAFull(false, gorows, ldq, Tq, D, ga);
      packBFull(false, gorows, false, ldq, Tq, D, gb);
    }
    for (long t = 0; t < Tq; t++) {
      const float* g = gorows + t * ldq;
      const float* o = orows + t * ldq;
      double acc = 0;
      for (long d = 0; d < D; d++) acc += static_cast<double>(g[d]) * o[d];
      delta[t] = static_cast<float>(acc);
      std::fill(gqrows + t * ldq, gqrows + t * ldq + D, 0.0f);
    }
    float* dK = dKpart + bh * Tk * D;
    float* dV = dVpart + bh * Tk * D;
    std::fill(dK, dK + Tk * D, 0.0f);
    std::fill(dV, dV + Tk * D, 0.0f);
    for (long j0 = 0; j0 < Tk; j0 += bc) {
      const long n = std::min(bc, Tk - j0);
      const long tFirst = s.causal ? std::max<long>(0, j0 - offset) : 0;
      if (tFirst >= Tq) continue;
      for (long i0 = (tFirst / br) * br; i0 < Tq; i0 += br) {
        const long m = std::min(br, Tq - i0);
        if (bf16) {
          gemmBf16Here(false, true, m, n, D, s.scale, qrows + i0 * ldq, ldq, krows + j0 * ldk, false, ldk, 0.0f, S, bc);
          gemmBf16Here(false, true, m, n, D, 1.0f, gorows + i0 * ldq, ldq, vrows + j0 * ldk, false, ldk, 0.0f, dP, bc);
        } else {
          gemmPacked(m, n, D, s.scale, qa + i0 * D, MR * D, kp + (j0 / NR) * D * NR, D * NR, 0.0f, S, bc);
          gemmPacked(m, n, D, 1.0f, ga + i0 * D, MR * D, vpT + (j0 / NR) * D * NR, D * NR, 0.0f, dP, bc);
        }
        for (long i = 0; i < m; i++) {
          const long t = i0 + i;
          float* prow = S + i * bc;
          float* drow = dP + i * bc;
          const long lim = validKeys(s.causal, t, offset, j0, n);
          if (lim > 0) isa()->expShift(prow, prow, lim, lrow[t]);
          std::fill(prow + lim, prow + n, 0.0f);
          const float dl = delta[t];
          if (dropout) {
            if (lim > 0) mask.fill(static_cast<uint64_t>(((b * Hq + h) * Tq + t) * Tk + j0), lim, keep);
            for (long j = 0; j < lim; j++) {
              const float p = prow[j];
              const bool kept = keep[j] != 0;
              drow[j] = p * ((kept ? drow[j] * invKeep : 0.0f) - dl);
              prow[j] = kept ? p * invKeep : 0.0f;
            }
          } else {
            for (long j = 0; j < lim; j++) drow[j] = prow[j] * (drow[j] - dl);
          }
          std::fill(drow + lim, drow + n, 0.0f);
        }
        // dV[j0..] += P~^T dO_i ; dQ_i += scale dS K_j ; dK[j0..] += scale dS^T Q_i
        if (bf16) {
          gemmBf16Here(true, false, n, D, m, 1.0f, S, bc, gorows + i0 * ldq, false, ldq, 1.0f, dV + j0 * D, D);
          gemmBf16Here(false, false, m, D, n, s.scale, dP, bc, krows + j0 * ldk, false, ldk, 1.0f, gqrows + i0 * ldq, ldq);
          gemmBf16Here(true, false, n, D, m, s.scale, dP, bc, qrows + i0 * ldq, false, ldq, 1.0f, dK + j0 * D, D);
          continue;
        }
        packAFull(true, S, bc, n, m, pa);
        gemmPacked(n, D, m, 1.0f, pa, MR * m, gb + i0 * NR, Tq * NR, 1.0f, dV + j0 * D, D);
        packAFull(false, dP, bc, m, n, pa2);
        gemmPacked(m, D, n, s.scale, pa2, MR * n, kn + j0 * NR, Tk * NR, 1.0f, gqrows + i0 * ldq, ldq);
        packAFull(true, dP, bc, n, m, pa3);
        gemmPacked(n, D, m, s.scale, pa3, MR * m, qb + i0 * NR, Tq * NR, 1.0f, dK + j0 * D, D);
      }
    }
  });

  // gk, gv: sum the group's query heads in head order.
  parallelFor(B * Tk * Hkv, std::max<long>(1, (1 << 14) / (D * group)), [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const long b = r / (Tk * Hkv), t = (r / Hkv) % Tk, hk = r % Hkv;
      float* dk = gk + r * D;
      float* dv = gv + r * D;
      for (long g = 0; g < group; g++) {
        const long h = hk * group + g;
        const float* sk = dKpart + ((b * Hq + h) * Tk + t) * D;
        const float* sv = dVpart + ((b * Hq + h) * Tk + t) * D;
        if (g == 0) {
          std::memcpy(dk, sk, sizeof(float) * D);
          std::memcpy(dv, sv, sizeof(float) * D);
        } else {
          for (long d = 0; d < D; d++) {
            dk[d] += sk[d];
            dv[d] += sv[d];
          }
        }
      }
    }
  });
}

}  // namespace attune

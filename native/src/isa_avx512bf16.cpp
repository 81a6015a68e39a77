// The AVX512-BF16 bf16-compute GEMM table (vdpbf16ps: 16 f32 lanes += pairs of bf16 products),
// compiled with -mavx512bf16 -mavx512f -mavx512bw -mavx512vl; chosen at run time (gemm_bf16.cpp)
// on CPUs with AVX512-BF16 and no AMX (Cooper Lake, AMD Zen 4), or when forced.
#include <cstdint>

#include "bf16gemm.h"

#if defined(__x86_64__) && defined(__AVX512BF16__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#include <immintrin.h>

namespace attune {
namespace {

#include "bf16_impl.h"

// 14 x 32 tile: 28 zmm accumulators + 2 for B + 1 broadcast (the f32 AVX-512 kernel's shape).
constexpr int kMR = 14;

// C[mr x nr] (mr <= R, nr <= 32) = alpha * a * b + beta * C over kp (a multiple of 32) k, with R
// rows of accumulators (R = kMR for the tiled path, 1-4 for decoding: the same arithmetic per row).
template <int R>
void ukrDp(long kp, float alpha, const uint16_t* a, const uint16_t* b, float beta, float* c, long ldc, long mr,
           long nr) {
  __m512 acc[R][2];
#pragma GCC unroll 14
  for (int i = 0; i < R; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (long kb = 0; kb < kp; kb += 32) {
    const uint16_t* ablk = a + kb * kMR;
#pragma GCC unroll 2
    for (int q = 0; q < 32; q += 2) {
      const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b);
      const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + 32);
      b += 64;
#pragma GCC unroll 14
      for (int i = 0; i < R; i++) {
        int pair;
        __builtin_memcpy(&pair, ablk + i * 32 + q, 4);
        const __m512bh av = (__m512bh)_mm512_set1_epi32(pair);
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], av, b0);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], av, b1);
      }
    }
  }
  for (int i = 0; i < mr; i++) {
    storeRow16(c + i * ldc, acc[i][0], nr, alpha, beta);
    storeRow16(c + i * ldc + 16, acc[i][1], nr - 16, alpha, beta);
  }
}

void macroDp(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
             float beta, float* C, long ldc) {
  for (long panel = pb; panel < pe; panel++) {
    const long jr = panel * 32;
    const long nr = minl(32, nc - jr);
    const uint16_t* b = pbuf + panel * 32 * kp;
    for (long ir = 0; ir < mc; ir += kMR)
      ukrDp<kMR>(kp, alpha, pa + ir * kp, b, beta, C + ir * ldc + jr, ldc, minl(kMR, mc - ir), nr);
  }
}

// macroDp for mc <= kBf16FewRows rows (one panel of A).
void macroDpFew(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
                float beta, float* C, long ldc) {
  for (long panel = pb; panel < pe; panel++) {
    const long jr = panel * 32;
    const long nr = minl(32, nc - jr);
    const uint16_t* b = pbuf + panel * 32 * kp;
    float* c = C + jr;
    switch (mc) {
      case 1:
        ukrDp<1>(kp, alpha, pa, b, beta, c, ldc, 1, nr);
        break;
      case 2:
        ukrDp<2>(kp, alpha, pa, b, beta, c, ldc, 2, nr);
        break;
      case 3:
        ukrDp<3>(kp, alpha, pa, b, beta, c, ldc, 3, nr);
        break;
      default:
        ukrDp<4>(kp, alpha, pa, b, beta, c, ldc, minl(4, mc), nr);
    }
  }
}

constexpr Bf16Ops kOps{"avx512bf16", kMR, 32, 112, 256, 2048, &packAT<kMR>, &packBImpl, &macroDp, &macroDpFew};

}  // namespace

const Bf16Ops* bf16Avx512() { return &kOps; }

}  // namespace attune

#else

namespace attune {
const Bf16Ops* bf16Avx512() { return nullptr; }
}  // namespace attune

#endif

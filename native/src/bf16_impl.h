// Packing and epilogue of the bf16 tables (layouts in bf16gemm.h), over AVX-512F/BW/VL. Included
// inside an anonymous namespace by isa_avx512bf16.cpp and isa_amx.cpp, so every copy has internal
// linkage; no standard-library headers on purpose (see isa.h).

#include "avx512_transpose.h"

inline long roundUp32(long v) { return (v + 31) & ~31L; }
inline long minl(long a, long b) { return a < b ? a : b; }

// Lanes of the first n (clamped to [0, 16]) elements.
inline __mmask16 mask16(long n) {
  return n <= 0 ? static_cast<__mmask16>(0) : n >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << n) - 1);
}
inline __mmask32 mask32(long n) {
  return n <= 0 ? static_cast<__mmask32>(0) : n >= 32 ? static_cast<__mmask32>(0xffffffffu) : static_cast<__mmask32>((1u << n) - 1);
}

// f32 lanes -> bf16 bits in the low half of each 32-bit lane: round to nearest even, NaN kept quiet
// (the rule of floatToBf16 in common.h and of the js reference; unlike vcvtne2ps2bf16, denormals
// are kept, so every path rounds its inputs identically).
inline __m512i roundLanes(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  const __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan =
      _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  return _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
}

// 16 bf16 of p[0..n) (zeros beyond n, which may be <= 0).
inline __m256i cvt16(const float* p, long n) {
  return _mm512_cvtepi32_epi16(roundLanes(_mm512_maskz_loadu_ps(mask16(n), p)));
}

// 16 bf16 (in the low halves of 32-bit lanes) of row elements [0, n), from f32 or bf16 storage.
inline __m512i lanes16(const void* p, bool bf16, long n) {
  if (bf16) return _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask16(n), p));
  return roundLanes(_mm512_maskz_loadu_ps(mask16(n), p));
}

// 32 bf16 of row elements [0, n) as 16 dwords (k pairs adjacent), from f32 or bf16 storage.
inline __m512i pairs32(const void* p, bool bf16, long n) {
  if (bf16) return _mm512_maskz_loadu_epi16(mask32(n), p);
  const float* f = static_cast<const float*>(p);
  return _mm512_inserti64x4(_mm512_castsi256_si512(cvt16(f, n)), n > 16 ? cvt16(f + 16, n - 16) : _mm256_setzero_si256(), 1);
}

template <int MR>
void packAT(bool transA, const float* A, long lda, long mc, long kc, uint16_t* dst) {
  const long kp = roundUp32(kc);
  for (long ir = 0; ir < mc; ir += MR) {
    const long mr = minl(MR, mc - ir);
    uint16_t* panel = dst + ir * kp;
    for (long kb = 0; kb < kp; kb += 32) {
      uint16_t* blk = panel + kb * MR;  // [MR rows][32 k]
      const long kn = kc - kb;          // valid k from kb on (may exceed 32)
      if (!transA) {
        for (int i = 0; i < MR; i++) {
          __m256i* row = reinterpret_cast<__m256i*>(blk + i * 32);
          if (i < mr) {
            const float* s = A + (ir + i) * lda + kb;
            _mm256_storeu_si256(row, cvt16(s, kn));
            _mm256_storeu_si256(row + 1, kn > 16 ? cvt16(s + 16, kn - 16) : _mm256_setzero_si256());
          } else {
            _mm256_storeu_si256(row, _mm256_setzero_si256());
            _mm256_storeu_si256(row + 1, _mm256_setzero_si256());
          }
        }
      } else {
        // op(A)(i, k) = A[k * lda + i]: a source row holds one k of consecutive rows i. Pairs of
        // source rows make dwords (k, k + 1) per row i; a 16 x 16 dword transpose gives rows i.
        for (int i0 = 0; i0 < MR; i0 += 16) {
          const long ni = mr - i0;
          __m512i r[16];
          for (int q = 0; q < 16; q++) {
            const long k = kb + 2 * q;
            const __m512i lo = k < kc && ni > 0 ? lanes16(A + k * lda + ir + i0, false, ni) : _mm512_setzero_si512();
            const __m512i hi =
                k + 1 < kc && ni > 0 ? lanes16(A + (k + 1) * lda + ir + i0, false, ni) : _mm512_setzero_si512();
            r[q] = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
          }
          transpose16x16(r);
          for (int i = 0; i < 16 && i0 + i < MR; i++) _mm512_storeu_si512(blk + (i0 + i) * 32, r[i]);
        }
      }
    }
  }
}

// How far ahead (in k) packBImpl prefetches each column of a transposed B: a panel reads 32
// columns (rows of W) in parallel, more streams than the hardware prefetchers follow (64 k:
// measured best of 32-512 for one row against bf16 W on an AMD EPYC, 10 -> 15-16 GB/s).
constexpr long kPrefetchK = 64;

void packBImpl(bool transB, const void* Bv, bool bf16, long ldb, long kc, long nc, long pb, long pe, uint16_t* dst) {
  const long kp = roundUp32(kc);
  const long esz = bf16 ? 2 : 4;
  const char* B = static_cast<const char*>(Bv);
  for (long panel = pb; panel < pe; panel++) {
    const long j0 = panel * 32;
    const long nr = minl(32, nc - j0);
    uint16_t* out = dst + panel * 32 * kp;  // [kp / 2][32 columns][2 k]
    if (!transB) {
      for (long p = 0; p < kp; p += 2) {
        for (int h = 0; h < 2; h++) {
          const long n = nr - 16 * h;
          const long j = j0 + 16 * h;
          const __m512i lo = p < kc ? lanes16(B + (p * ldb + j) * esz, bf16, n) : _mm512_setzero_si512();
          const __m512i hi = p + 1 < kc ? lanes16(B + ((p + 1) * ldb + j) * esz, bf16, n) : _mm512_setzero_si512();
          _mm512_storeu_si512(out + p * 32 + 32 * h, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
        }
      }
    } else {
      // op(B)(k, n) = B[n * ldb + k]: a source row is one column, its k pairs already adjacent;
      // a 16 x 16 dword transpose per 16 columns gives the pair rows.
      for (long kb = 0; kb < kp; kb += 32) {
        for (int h = 0; h < 2; h++) {
          __m512i r[16];
          for (int jj = 0; jj < 16; jj++) {
            const long j = 16 * h + jj;
            if (j < nr && kb + kPrefetchK < kc)
              __builtin_prefetch(B + ((j0 + j) * ldb + kb + kPrefetchK) * esz);
            r[jj] = j < nr ? pairs32(B + ((j0 + j) * ldb + kb) * esz, bf16, kc - kb) : _mm512_setzero_si512();
          }
          transpose16x16(r);
          for (int q = 0; q < 16; q++) _mm512_storeu_si512(out + (kb / 2 + q) * 64 + 32 * h, r[q]);
        }
      }
    }
  }
}

// c[0..n) of one row = alpha * acc + beta * c (beta 0: c not read); n in [0, 16].
inline void storeRow16(float* c, __m512 acc, long n, float alpha, float beta) {
  const __mmask16 m = mask16(n);
  if (!m) return;
  __m512 v = _mm512_mul_ps(acc, _mm512_set1_ps(alpha));
  if (beta != 0.0f) v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(m, c), v);
  _mm512_mask_storeu_ps(c, m, v);
}

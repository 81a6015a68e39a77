// AVX-512 kernels (compiled with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma; selected at run
// time when the CPU has AVX-512F/DQ/BW/VL).
#include "isa.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__AVX512DQ__)
#include <immintrin.h>

namespace attune {
namespace {

#include "avx512_transpose.h"

struct V {
  using R = __m512;
  static constexpr int W = 16;
  static R zero() { return _mm512_setzero_ps(); }
  static R set1(float a) { return _mm512_set1_ps(a); }
  static R load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static R add(R a, R b) { return _mm512_add_ps(a, b); }
  static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R div(R a, R b) { return _mm512_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  static R max(R a, R b) { return _mm512_max_ps(a, b); }
  static R loadBf16(const uint16_t* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static void transpose(R* r) { transpose16x16(reinterpret_cast<__m512i*>(r)); }
  static R min(R a, R b) { return _mm512_min_ps(a, b); }
  static float hsum(R v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static float hmax(R v) {
    __m256 h = _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  static R exp(R x0) {
    R x = _mm512_min_ps(_mm512_max_ps(x0, _mm512_set1_ps(-88.3762626647949f)), _mm512_set1_ps(88.3762626647949f));
    const R fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), x);
    R y = _mm512_set1_ps(1.9875691500E-4f);
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.3981999507E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(8.3334519073E-3f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(4.1665795894E-2f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(1.6666665459E-1f));
    y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(5.0000001201E-1f));
    y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    y = _mm512_mul_ps(y, _mm512_castsi512_ps(e));
    y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x0, _mm512_set1_ps(88.72283935546875f), _CMP_GT_OQ),
                           _mm512_set1_ps(__builtin_inff()));
    return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x0, x0, _CMP_UNORD_Q), x0);
  }
};

#include "isa_impl.h"

// 16 int8 codes per step: sign-extend, convert, one multiply (the scalar rule's product).
void dequantInt8Avx512(const int8_t* codes, const float* steps, long block, long k0, long n, float* out) {
  dequantBlocks(steps, block, k0, n, out, [&](long k, long m, float step, float* o) {
    const __m512 s = _mm512_set1_ps(step);
    long t = 0;
    for (; t + 16 <= m; t += 16) {
      const __m512i v = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + k + t)));
      _mm512_storeu_ps(o + t, _mm512_mul_ps(_mm512_cvtepi32_ps(v), s));
    }
    dequantInt8Run(codes, k + t, m - t, step, o + t);
  });
}

// 32 NF4 elements (16 bytes) per step: the 16 levels sit in one zmm and vpermps looks up each
// nibble; high nibbles (even elements) and low ones (odd) are then interleaved. levels[i] * absmax
// per element, as the scalar rule.
void dequantNf4Avx512(const uint8_t* codes, const float* steps, long block, const float* levels, long k0, long n,
                      float* out) {
  const __m512 table = _mm512_loadu_ps(levels);
  const __m512i lowMask = _mm512_set1_epi32(0x0f);
  const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  dequantBlocks(steps, block, k0, n, out, [&](long k, long m, float absmax, float* o) {
    long t = 0;
    if (k & 1) {  // start on a byte boundary
      dequantNf4Run(codes, levels, k, 1, absmax, o);
      t = 1;
    }
    const __m512 s = _mm512_set1_ps(absmax);
    for (; t + 32 <= m; t += 32) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(codes + ((k + t) >> 1)));
      const __m512i b = _mm512_cvtepu8_epi32(bytes);
      const __m512 hi = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_srli_epi32(b, 4), table), s);
      const __m512 lo = _mm512_mul_ps(_mm512_permutexvar_ps(_mm512_and_si512(b, lowMask), table), s);
      _mm512_storeu_ps(o + t, _mm512_permutex2var_ps(hi, first, lo));
      _mm512_storeu_ps(o + t + 16, _mm512_permutex2var_ps(hi, second, lo));
    }
    dequantNf4Run(codes, levels, k + t, m - t, absmax, o + t);
  });
}

constexpr IsaOps withDequant(IsaOps ops) {
  ops.dequantInt8 = &dequantInt8Avx512;
  ops.dequantNf4 = &dequantNf4Avx512;
  return ops;
}

// 14 x 32 tile: 28 zmm accumulators + 2 for B + 1 broadcast.
constexpr IsaOps kOps = withDequant(makeOps<14, 2>("avx512", 112, 256, 4096));

}  // namespace

const IsaOps* isaAvx512() { return &kOps; }

}  // namespace attune

#else

namespace attune {
const IsaOps* isaAvx512() { return nullptr; }
}  // namespace attune

#endif

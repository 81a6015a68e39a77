// The portable base level: NEON on aarch64, SSE2 on x86-64 (reported as "scalar": no wide SIMD
// level was detected), plain scalar C++ elsewhere. Compiled without extra target flags.
#include "isa.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace attune {
namespace {

#if defined(__aarch64__)

struct V {
  using R = float32x4_t;
  static constexpr int W = 4;
  static R zero() { return vdupq_n_f32(0.0f); }
  static R set1(float a) { return vdupq_n_f32(a); }
  static R load(const float* p) { return vld1q_f32(p); }
  static void store(float* p, R v) { vst1q_f32(p, v); }
  static R add(R a, R b) { return vaddq_f32(a, b); }
  static R sub(R a, R b) { return vsubq_f32(a, b); }
  static R mul(R a, R b) { return vmulq_f32(a, b); }
  static R div(R a, R b) { return vdivq_f32(a, b); }
  static R fma(R a, R b, R c) { return vfmaq_f32(c, a, b); }
  static R max(R a, R b) { return vmaxq_f32(a, b); }
  static R loadBf16(const uint16_t* p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }
  static void transpose(R* r) {
    const float32x4x2_t a = vtrnq_f32(r[0], r[1]), b = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(a.val[0]), vget_low_f32(b.val[0]));
    r[1] = vcombine_f32(vget_low_f32(a.val[1]), vget_low_f32(b.val[1]));
    r[2] = vcombine_f32(vget_high_f32(a.val[0]), vget_high_f32(b.val[0]));
    r[3] = vcombine_f32(vget_high_f32(a.val[1]), vget_high_f32(b.val[1]));
  }
  static R min(R a, R b) { return vminq_f32(a, b); }
  static float hsum(R v) { return vaddvq_f32(v); }
  static float hmax(R v) { return vmaxvq_f32(v); }
  static R exp(R x0) {
    R x = vminq_f32(vmaxq_f32(x0, vdupq_n_f32(-88.3762626647949f)), vdupq_n_f32(88.3762626647949f));
    const R fx = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    x = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
    x = vfmsq_f32(x, fx, vdupq_n_f32(-2.12194440e-4f));
    R y = vdupq_n_f32(1.9875691500E-4f);
    y = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), y, x);
    y = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), y, x);
    y = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), y, x);
    y = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), y, x);
    y = vfmaq_f32(vaddq_f32(x, vdupq_n_f32(1.0f)), y, vmulq_f32(x, x));
    const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(fx), vdupq_n_s32(127)), 23);
    y = vmulq_f32(y, vreinterpretq_f32_s32(e));
    y = vbslq_f32(vcgtq_f32(x0, vdupq_n_f32(88.72283935546875f)), vdupq_n_f32(__builtin_inff()), y);
    return vbslq_f32(vceqq_f32(x0, x0), y, x0);
  }
};
constexpr const char* kName = "neon";
constexpr int kMR = 8, kNV = 3, kMC = 128, kKC = 256, kNC = 4080;

#elif defined(__SSE2__)

struct V {
  using R = __m128;
  static constexpr int W = 4;
  static R zero() { return _mm_setzero_ps(); }
  static R set1(float a) { return _mm_set1_ps(a); }
  static R load(const float* p) { return _mm_loadu_ps(p); }
  static void store(float* p, R v) { _mm_storeu_ps(p, v); }
  static R add(R a, R b) { return _mm_add_ps(a, b); }
  static R sub(R a, R b) { return _mm_sub_ps(a, b); }
  static R mul(R a, R b) { return _mm_mul_ps(a, b); }
  static R div(R a, R b) { return _mm_div_ps(a, b); }
  static R fma(R a, R b, R c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
  static R max(R a, R b) { return _mm_max_ps(a, b); }
  static R loadBf16(const uint16_t* p) {
    return _mm_castsi128_ps(_mm_unpacklo_epi16(_mm_setzero_si128(), _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static void transpose(R* r) { _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); }
  static R min(R a, R b) { return _mm_min_ps(a, b); }
  static float hsum(R v) {
    R s = _mm_add_ps(v, _mm_movehl_ps(v, v));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static float hmax(R v) {
    R s = _mm_max_ps(v, _mm_movehl_ps(v, v));
    s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static R select(R mask, R a, R b) { return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b)); }
  static R exp(R x0) {
    R x = _mm_min_ps(_mm_max_ps(x0, _mm_set1_ps(-88.3762626647949f)), _mm_set1_ps(88.3762626647949f));
    const __m128i n = _mm_cvtps_epi32(_mm_mul_ps(x, _mm_set1_ps(1.44269504088896341f)));
    const R fx = _mm_cvtepi32_ps(n);
    x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(0.693359375f)));
    x = _mm_sub_ps(x, _mm_mul_ps(fx, _mm_set1_ps(-2.12194440e-4f)));
    R y = _mm_set1_ps(1.9875691500E-4f);
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(1.3981999507E-3f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(8.3334519073E-3f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(4.1665795894E-2f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(1.6666665459E-1f));
    y = _mm_add_ps(_mm_mul_ps(y, x), _mm_set1_ps(5.0000001201E-1f));
    y = _mm_add_ps(_mm_mul_ps(y, _mm_mul_ps(x, x)), _mm_add_ps(x, _mm_set1_ps(1.0f)));
    const __m128i e = _mm_slli_epi32(_mm_add_epi32(n, _mm_set1_epi32(127)), 23);
    y = _mm_mul_ps(y, _mm_castsi128_ps(e));
    y = select(_mm_cmpgt_ps(x0, _mm_set1_ps(88.72283935546875f)), _mm_set1_ps(__builtin_inff()), y);
    return select(_mm_cmpunord_ps(x0, x0), x0, y);
  }
};
constexpr const char* kName = "scalar";
constexpr int kMR = 4, kNV = 2, kMC = 128, kKC = 256, kNC = 4080;

#else

struct V {
  using R = float;
  static constexpr int W = 1;
  static R zero() { return 0.0f; }
  static R set1(float a) { return a; }
  static R load(const float* p) { return *p; }
  static void store(float* p, R v) { *p = v; }
  static R add(R a, R b) { return a + b; }
  static R sub(R a, R b) { return a - b; }
  static R mul(R a, R b) { return a * b; }
  static R div(R a, R b) { return a / b; }
  static R fma(R a, R b, R c) { return a * b + c; }
  static R max(R a, R b) { return a > b ? a : b; }
  static R loadBf16(const uint16_t* p) {
    const uint32_t u = static_cast<uint32_t>(*p) << 16;
    float f;
    __builtin_memcpy(&f, &u, 4);
    return f;
  }
  static void transpose(R*) {}
  static R min(R a, R b) { return a < b ? a : b; }
  static float hsum(R v) { return v; }
  static float hmax(R v) { return v; }
  static R exp(R x) { return __builtin_expf(x); }
};
constexpr const char* kName = "scalar";
constexpr int kMR = 4, kNV = 4, kMC = 128, kKC = 256, kNC = 4096;

#endif

#include "isa_impl.h"

constexpr IsaOps kOps = makeOps<kMR, kNV>(kName, kMC, kKC, kNC);

}  // namespace

const IsaOps* isaBase() { return &kOps; }

}  // namespace attune

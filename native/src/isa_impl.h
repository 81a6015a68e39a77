// Kernel bodies written once over a vector type V, included by each ISA translation unit inside an
// anonymous namespace (so every instantiation has internal linkage). V provides:
//   R (register type), W (lanes), zero(), set1(f), load(p), store(p, r) (both unaligned),
//   add, sub, mul, fma(a, b, c) = a * b + c, max, min, hsum(r), hmax(r), exp(r),
//   loadBf16(p) (W bf16 widened to f32), transpose(r) (r[i] lane j <-> r[j] lane i, W registers).
// No standard-library headers are used here on purpose (see isa.h).

using R = typename V::R;
constexpr int W = V::W;
constexpr float kNegInf = -__builtin_inff();

inline R loadTail(const float* p, long n, float fill) {
  float t[W];
  for (int i = 0; i < W; i++) t[i] = i < n ? p[i] : fill;
  return V::load(t);
}

inline void storeTail(float* p, R v, long n) {
  float t[W];
  V::store(t, v);
  for (int i = 0; i < n; i++) p[i] = t[i];
}

template <int MR, int NV>
void ukrT(long kc, float alpha, const float* __restrict a, const float* __restrict b, float beta,
          float* __restrict c, long ldc) {
  constexpr int NR = NV * W;
  // C is touched only after the k loop: start pulling its lines in now.
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++) {
    __builtin_prefetch(c + i * ldc, 1, 3);
    __builtin_prefetch(c + i * ldc + NR - 1, 1, 3);
  }
  R acc[MR][NV];
#pragma GCC unroll 32
  for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++) acc[i][j] = V::zero();
#pragma GCC unroll 4
  for (long p = 0; p < kc; p++) {
    R bv[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; j++) bv[j] = V::load(b + j * W);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++) {
      const R av = V::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) acc[i][j] = V::fma(av, bv[j], acc[i][j]);
    }
    a += MR;
    b += NR;
  }
  const R va = V::set1(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) V::store(c + i * ldc + j * W, V::mul(acc[i][j], va));
  } else {
    const R vb = V::set1(beta);
#pragma GCC unroll 32
    for (int i = 0; i < MR; i++)
#pragma GCC unroll 8
      for (int j = 0; j < NV; j++) {
        float* cp = c + i * ldc + j * W;
        V::store(cp, V::fma(acc[i][j], va, V::mul(vb, V::load(cp))));
      }
  }
}

float rowMaxT(const float* x, long n) {
  R m0 = V::set1(kNegInf), m1 = m0;
  long i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    m0 = V::max(m0, V::load(x + i));
    m1 = V::max(m1, V::load(x + i + W));
  }
  for (; i + W <= n; i += W) m0 = V::max(m0, V::load(x + i));
  if (i < n) m1 = V::max(m1, loadTail(x + i, n - i, kNegInf));
  return V::hmax(V::max(m0, m1));
}

double expShiftT(const float* x, float* y, long n, float shift) {
  const R s = V::set1(shift);
  R a0 = V::zero(), a1 = V::zero();
  long i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const R e0 = V::exp(V::sub(V::load(x + i), s));
    const R e1 = V::exp(V::sub(V::load(x + i + W), s));
    V::store(y + i, e0);
    V::store(y + i + W, e1);
    a0 = V::add(a0, e0);
    a1 = V::add(a1, e1);
  }
  for (; i + W <= n; i += W) {
    const R e = V::exp(V::sub(V::load(x + i), s));
    V::store(y + i, e);
    a0 = V::add(a0, e);
  }
  double sum = static_cast<double>(V::hsum(V::add(a0, a1)));
  if (i < n) {
    const R e = V::exp(V::sub(loadTail(x + i, n - i, kNegInf), s));
    storeTail(y + i, e, n - i);
    sum += static_cast<double>(V::hsum(e));
  }
  return sum;
}

double expShiftSumDotT(const float* x, long n, float shift, double* dot) {
  const R s = V::set1(shift);
  R a0 = V::zero(), d0 = V::zero();
  long i = 0;
  for (; i + W <= n; i += W) {
    const R v = V::load(x + i);
    const R e = V::exp(V::sub(v, s));
    a0 = V::add(a0, e);
    d0 = V::fma(e, v, d0);
  }
  double sum = static_cast<double>(V::hsum(a0));
  double dt = static_cast<double>(V::hsum(d0));
  if (i < n) {
    // Fill with the shift itself, then zero those lanes' exp by masking through the tail buffer.
    float t[W], e[W];
    for (int l = 0; l < W; l++) t[l] = l < n - i ? x[i + l] : shift;
    V::store(e, V::exp(V::sub(V::load(t), s)));
    for (int l = 0; l < n - i; l++) {
      sum += static_cast<double>(e[l]);
      dt += static_cast<double>(e[l]) * static_cast<double>(t[l]);
    }
  }
  *dot = dt;
  return sum;
}

void top2T(const float* x, long n, float* t1, float* t2) {
  R a = V::set1(kNegInf), b = a;
  long i = 0;
  for (; i + W <= n; i += W) {
    const R v = V::load(x + i);
    b = V::max(b, V::min(a, v));
    a = V::max(a, v);
  }
  float la[W], lb[W];
  V::store(la, a);
  V::store(lb, b);
  float m1 = kNegInf, m2 = kNegInf;
  auto push = [&](float v) {
    if (v > m1) {
      m2 = m1;
      m1 = v;
    } else if (v > m2) {
      m2 = v;
    }
  };
  for (int l = 0; l < W; l++) {
    push(la[l]);
    push(lb[l]);
  }
  for (; i < n; i++) push(x[i]);
  *t1 = m1;
  *t2 = m2;
}

void lceGradT(float* z, long n, float lse, float a, float ce) {
  const R vl = V::set1(lse), va = V::set1(a), vc = V::set1(ce);
  long i = 0;
  for (; i + W <= n; i += W) {
    const R v = V::load(z + i);
    const R p = V::exp(V::sub(v, vl));
    V::store(z + i, V::sub(V::zero(), V::mul(p, V::fma(vc, v, va))));
  }
  if (i < n) {
    const R v = loadTail(z + i, n - i, 0.0f);
    const R p = V::exp(V::sub(v, vl));
    storeTail(z + i, V::sub(V::zero(), V::mul(p, V::fma(vc, v, va))), n - i);
  }
}

template <class F>
inline void mapArr(const float* x, float* y, long n, F f) {
  long i = 0;
  for (; i + W <= n; i += W) V::store(y + i, f(V::load(x + i)));
  if (i < n) storeTail(y + i, f(loadTail(x + i, n - i, 0.0f)), n - i);
}

inline R sigmoidV(R x) {
  // 1 / (1 + exp(-x)); exp saturates to inf for x < -88.7 which gives exactly 0.
  return V::div(V::set1(1.0f), V::add(V::set1(1.0f), V::exp(V::sub(V::zero(), x))));
}

void expArrT(const float* x, float* y, long n) {
  mapArr(x, y, n, [](R v) { return V::exp(v); });
}
void sigmoidArrT(const float* x, float* y, long n) {
  mapArr(x, y, n, [](R v) { return sigmoidV(v); });
}
void siluArrT(const float* x, float* y, long n) {
  mapArr(x, y, n, [](R v) { return V::mul(v, sigmoidV(v)); });
}

inline R siluGradV(R x) {
  const R s = sigmoidV(x);
  const R one = V::set1(1.0f);
  return V::mul(s, V::fma(x, V::sub(one, s), one));
}

void siluBwdT(const float* x, const float* gy, float* gx, long n) {
  long i = 0;
  for (; i + W <= n; i += W) V::store(gx + i, V::mul(V::load(gy + i), siluGradV(V::load(x + i))));
  if (i < n) storeTail(gx + i, V::mul(loadTail(gy + i, n - i, 0.0f), siluGradV(loadTail(x + i, n - i, 0.0f))), n - i);
}

void swigluT(const float* g, const float* u, float* out, long n) {
  long i = 0;
  for (; i + W <= n; i += W) {
    const R x = V::load(g + i);
    V::store(out + i, V::mul(V::mul(x, sigmoidV(x)), V::load(u + i)));
  }
  if (i < n) {
    const R x = loadTail(g + i, n - i, 0.0f);
    storeTail(out + i, V::mul(V::mul(x, sigmoidV(x)), loadTail(u + i, n - i, 0.0f)), n - i);
  }
}

inline void swigluBwdV(R x, R up, R dy, R* dg, R* du) {
  const R s = sigmoidV(x);
  const R one = V::set1(1.0f);
  *du = V::mul(dy, V::mul(x, s));
  *dg = V::mul(V::mul(dy, up), V::mul(s, V::fma(x, V::sub(one, s), one)));
}

void swigluBwdT(const float* g, const float* u, const float* gy, float* gg, float* gu, long n) {
  long i = 0;
  R dg, du;
  for (; i + W <= n; i += W) {
    swigluBwdV(V::load(g + i), V::load(u + i), V::load(gy + i), &dg, &du);
    V::store(gg + i, dg);
    V::store(gu + i, du);
  }
  if (i < n) {
    const long t = n - i;
    swigluBwdV(loadTail(g + i, t, 0.0f), loadTail(u + i, t, 0.0f), loadTail(gy + i, t, 0.0f), &dg, &du);
    storeTail(gg + i, dg, t);
    storeTail(gu + i, du, t);
  }
}

// W values of row p[0..n) (n <= W; zeros beyond), f32 or bf16 widened.
inline R loadPart(const float* p, long n) { return n >= W ? V::load(p) : loadTail(p, n, 0.0f); }
inline R loadPart(const uint16_t* p, long n) {
  if (n >= W) return V::loadBf16(p);
  uint16_t t[W];
  for (int i = 0; i < W; i++) t[i] = i < n ? p[i] : static_cast<uint16_t>(0);
  return V::loadBf16(t);
}

// How far ahead packPanelT prefetches each row of b.
constexpr long kPrefetchBytes = 128;

// IsaOps::packB for transB: W columns of op(B) at a time are W rows of b; each W x W block is
// transposed in registers, so every source cache line is read whole and every store is a vector.
template <int NR, typename T>
void packPanelT(const T* b, long ldb, long kc, long n, float* out) {
  for (int g = 0; g < NR; g += W) {
    const long rows = n - g;  // columns of this group that exist
    if (rows <= 0) {
      for (long p = 0; p < kc; p++) V::store(out + p * NR + g, V::zero());
      continue;
    }
    const T* src = b + g * ldb;
    long p = 0;
    if (rows >= W) {
      for (; p + W <= kc; p += W) {
        R r[W];
#pragma GCC unroll 16
        for (int i = 0; i < W; i++) {
          // W rows stream in parallel, more than the hardware prefetchers follow: fetch 2 lines ahead
          if (p + kPrefetchBytes / static_cast<long>(sizeof(T)) < kc)
            __builtin_prefetch(src + i * ldb + p + kPrefetchBytes / static_cast<long>(sizeof(T)));
          r[i] = loadPart(src + i * ldb + p, W);
        }
        V::transpose(r);
#pragma GCC unroll 16
        for (int q = 0; q < W; q++) V::store(out + (p + q) * NR + g, r[q]);
      }
    }
    for (; p < kc; p += W) {  // k tail, or a group with fewer than W columns
      const long kn = kc - p < W ? kc - p : W;
      R r[W];
      for (int i = 0; i < W; i++) r[i] = i < rows ? loadPart(src + i * ldb + p, kn) : V::zero();
      V::transpose(r);
      for (int q = 0; q < kn; q++) V::store(out + (p + q) * NR + g, r[q]);
    }
  }
}

// IsaOps::packB without transB: row p of the panel is b[p * ldb + 0..n).
template <int NR, typename T>
void packPanelN(const T* b, long ldb, long kc, long n, float* out) {
  for (long p = 0; p < kc; p++) {
    const T* src = b + p * ldb;
#pragma GCC unroll 8
    for (int g = 0; g < NR; g += W) V::store(out + p * NR + g, n - g > 0 ? loadPart(src + g, n - g) : V::zero());
  }
}

template <int NR>
void packBT(const float* b, long ldb, bool transB, long kc, long n, float* out) {
  if (transB)
    packPanelT<NR>(b, ldb, kc, n, out);
  else
    packPanelN<NR>(b, ldb, kc, n, out);
}
template <int NR>
void packBBf16T(const uint16_t* b, long ldb, bool transB, long kc, long n, float* out) {
  if (transB)
    packPanelT<NR>(b, ldb, kc, n, out);
  else
    packPanelN<NR>(b, ldb, kc, n, out);
}

// IsaOps::dequantInt8 / dequantNf4, plain loops the compiler vectorises for the unit's ISA (the
// AVX-512 unit replaces the inner ones with explicit ones). `Inner(k, n, step, out)` dequantises
// n elements from k that share one block.
template <typename Inner>
void dequantBlocks(const float* steps, long block, long k0, long n, float* out, Inner inner) {
  long t = 0;
  while (t < n) {
    const long k = k0 + t;
    const long end = (k / block + 1) * block;
    const long seg = end - k < n - t ? end - k : n - t;
    inner(k, seg, steps[k / block], out + t);
    t += seg;
  }
}

void dequantInt8Run(const int8_t* codes, long k, long n, float step, float* out) {
  for (long t = 0; t < n; t++) out[t] = static_cast<float>(codes[k + t]) * step;
}

void dequantNf4Run(const uint8_t* codes, const float* levels, long k0, long n, float absmax, float* out) {
  for (long t = 0; t < n; t++) {
    const long k = k0 + t;
    const uint8_t b = codes[k >> 1];
    out[t] = levels[(k & 1) ? (b & 0x0f) : (b >> 4)] * absmax;
  }
}

void dequantInt8T(const int8_t* codes, const float* steps, long block, long k0, long n, float* out) {
  dequantBlocks(steps, block, k0, n, out,
                [&](long k, long m, float step, float* o) { dequantInt8Run(codes, k, m, step, o); });
}

void dequantNf4T(const uint8_t* codes, const float* steps, long block, const float* levels, long k0, long n,
                 float* out) {
  dequantBlocks(steps, block, k0, n, out,
                [&](long k, long m, float absmax, float* o) { dequantNf4Run(codes, levels, k, m, absmax, o); });
}

template <int MR, int NV>
constexpr IsaOps makeOps(const char* name, int mc, int kc, int nc) {
  return IsaOps{name,        MR,           NV * W,      mc,         kc,         nc,         &ukrT<MR, NV>,
                &ukrT<1, NV>, &packBT<NV * W>, &packBBf16T<NV * W>,
                &rowMaxT,    &expShiftT,   &expShiftSumDotT,        &top2T,     &lceGradT,  &expArrT,
                &sigmoidArrT, &siluArrT,   &siluBwdT,   &swigluT,   &swigluBwdT, &dequantInt8T,
                &dequantNf4T};
}

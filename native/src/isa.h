// The per-instruction-set kernel table. Each SIMD level (AVX-512, AVX2+FMA, and the portable base:
// NEON on aarch64, SSE2 on x86-64, scalar elsewhere) is compiled in its own translation unit with
// its own target flags and exports one IsaOps table; the rest of the addon is compiled for the
// baseline architecture and calls through the table chosen at run time (cpu.cpp).
//
// Only plain declarations live here: no inline functions or templates, so a translation unit built
// with -mavx512f can never leak an AVX-512 copy of a shared inline function into generic code.
#pragma once
#include <cstddef>
#include <cstdint>

namespace attune {

struct IsaOps {
  const char* name;  // "avx512" | "avx2" | "neon" | "scalar"
  // GEMM micro-tile (mr x nr) and cache blocking (mc, nc multiples of mr, nr).
  int mr, nr, mc, kc, nc;
  // C[mr x nr] (row stride ldc) = alpha * A * B + beta * C over kc steps, A packed k-major in
  // panels of mr, B packed k-major in panels of nr. beta == 0: C is not read. Full tiles only.
  void (*ukr)(long kc, float alpha, const float* a, const float* b, float beta, float* c, long ldc);
  // The same for one row of A (a: kc contiguous values): each C element gets exactly the
  // arithmetic `ukr` gives it, so a product computed row by row equals the tiled one bit for bit.
  void (*ukr1)(long kc, float alpha, const float* a, const float* b, float beta, float* c, long ldc);
  // Packs one panel of op(B) for ukr / ukr1: out[p * nr_ + j] = op(B)(p, j) for p in [0, kc),
  // j in [0, n) (n <= nr_; columns n..nr_ are zero), b pointing at op(B)(0, 0): op(B)(p, j) is
  // b[j * ldb + p] when transB (a Linear's W, transposed in registers), else b[p * ldb + j].
  // Values are copied exactly (the bf16 one widens bf16 to f32, also exact).
  void (*packB)(const float* b, long ldb, bool transB, long kc, long n, float* out);
  void (*packBBf16)(const uint16_t* b, long ldb, bool transB, long kc, long n, float* out);

  // Row helpers (n may be anything, tails handled inside).
  float (*rowMax)(const float* x, long n);
  // y = exp(x - shift) (y may alias x); returns the sum of y (accumulated in f32 lanes, then f64).
  double (*expShift)(const float* x, float* y, long n, float shift);
  // Returns sum exp(x - shift); *dot = sum exp(x - shift) * x. Nothing stored.
  double (*expShiftSumDot)(const float* x, long n, float shift, double* dot);
  // Largest and second largest (duplicates count: [3, 3] gives 3, 3) of x (n >= 1).
  void (*top2)(const float* x, long n, float* t1, float* t2);
  // z = -exp(z - lse) * (a + ce * z), in place (the fused LM head's gradient, before one-hot terms).
  void (*lceGrad)(float* z, long n, float lse, float a, float ce);

  // Elementwise with the vector exp.
  void (*expArr)(const float* x, float* y, long n);
  void (*sigmoidArr)(const float* x, float* y, long n);
  void (*siluArr)(const float* x, float* y, long n);
  // gx = gy * silu'(x)
  void (*siluBwd)(const float* x, const float* gy, float* gx, long n);
  // out = silu(g) * u
  void (*swiglu)(const float* g, const float* u, float* out, long n);
  void (*swigluBwd)(const float* g, const float* u, const float* gy, float* gg, float* gu, long n);

  // Dequantisation of elements [k0, k0 + n) of a block-quantised matrix (qgemm.cpp; blocks of
  // `block` elements, block b's scale steps[b]), the scalar rule's exact products:
  // int8: out[t] = float(codes[k]) * steps[k / block] (steps: absmax / 127 per block);
  // NF4: out[t] = levels[nibble of k] * steps[k / block] (steps: absmax; element k's nibble is the
  // high half of codes[k / 2] for even k, the low half for odd k), with k = k0 + t.
  void (*dequantInt8)(const int8_t* codes, const float* steps, long block, long k0, long n, float* out);
  void (*dequantNf4)(const uint8_t* codes, const float* steps, long block, const float* levels, long k0, long n,
                     float* out);
};

const IsaOps* isaAvx512();  // nullptr when not compiled in
const IsaOps* isaAvx2();    // nullptr when not compiled in
const IsaOps* isaAvx2Wide();  // AVX2 with the AVX-512 tile shape (testing only)
const IsaOps* isaBase();    // always available

}  // namespace attune

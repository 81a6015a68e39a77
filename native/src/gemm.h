// SGEMM: packing, cache blocking (MC/KC/NC), register micro-kernels from the IsaOps table.
// Every C element is accumulated in the same order whatever the thread count (tile positions and
// K blocks do not depend on it), so results are bitwise identical across thread counts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attune {

struct Bf16Ops;

struct GemmDesc {
  bool transA, transB;
  long M, N, K;
  float alpha;
  const float* A;
  long lda;
  const void* B;  // float, or uint16_t bf16 when bBf16
  long ldb;
  bool bBf16;
  float beta;
  float* C;
  long ldc;
  // bf16 compute (gemmBf16Batched sets one of them): round A and B to bf16 while packing for the
  // f32 kernels (the portable fallback), or run a bf16 table (AMX, AVX512-BF16; gemm_bf16.cpp).
  bool roundBf16;
  const Bf16Ops* bf16;
};

// C = alpha op(A) op(B) + beta C on the calling thread only (safe inside a parallel region).
void gemmSerial(const GemmDesc& d);
// The same on the thread pool.
void gemmParallel(const GemmDesc& d);
// Batched: batch b uses A + b*strideA, B + b*strideB (elements), C + b*strideC.
void gemmBatched(const GemmDesc& d, long batch, long strideA, long strideB, long strideC);

// bf16 compute (gemm_bf16.cpp): inputs rounded to bf16 (nearest even), products accumulated in f32,
// on the active path: "amx", "avx512bf16" or "fallback".
void gemmBf16Batched(const GemmDesc& d, long batch, long strideA, long strideB, long strideC);
// bf16 compute on the active path, on the calling thread only (safe inside a parallel region).
void gemmBf16SerialActive(const GemmDesc& d);
// The same from plain arguments: C [m x n] (ldc) = alpha op(A) op(B) + beta C (beta 0: C not read),
// A f32, B f32 or bf16 (bBf16); the fused kernels' tile products (attention, LM head).
void gemmBf16Here(bool transA, bool transB, long m, long n, long k, float alpha, const float* A, long lda,
                  const void* B, bool bBf16, long ldb, float beta, float* C, long ldc);
// The drivers of a bf16 table (d.bf16 set), called by gemmSerial / gemmParallel.
void gemmBf16Serial(const GemmDesc& d);
void gemmBf16Parallel(const GemmDesc& d, int threads);
// Whether a bf16 table's few-rows path takes d (1 to kBf16FewRows rows of A, not transposed), and
// that path on `threads` threads (the calling one only when 1): same results as gemmBf16Serial.
bool gemmBf16FewEligible(const GemmDesc& d);
void gemmBf16Few(const GemmDesc& d, int threads);
// The active path's name; ATTUNE_BF16_PATH caps the automatic choice (docs/kernels.md).
const char* bf16PathName();
// Makes `name` the active path ("auto": the best this CPU has); false when unknown or unavailable.
bool setBf16Path(const char* name);
// The paths this CPU and build can run, best first.
std::vector<std::string> bf16Paths();

// Packed-operand pieces for the fused kernels (attention, LM head). op(A) rows are packed in panels
// of MR rows (panel stride k * MR floats, k-major inside), op(B) columns in panels of NR columns
// (panel stride k * NR). Row/column offsets into packed operands must be multiples of MR / NR.
int gemmMR();
int gemmNR();
// dst gets roundUp(m, MR) * k floats.
void packAFull(bool transA, const float* A, long lda, long m, long k, float* dst);
// dst gets roundUp(n, NR) * k floats (B is uint16_t bf16 when bf16).
void packBFull(bool transB, const void* B, bool bf16, long ldb, long k, long n, float* dst);
// C[m x n] = alpha * A * B + beta * C (beta 0: not read) from packed panels with the given strides.
void gemmPacked(long m, long n, long k, float alpha, const float* pa, long paStride, const float* pb, long pbStride,
                float beta, float* C, long ldc);

}  // namespace attune

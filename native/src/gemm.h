// SGEMM: packing, cache blocking (MC/KC/NC), register micro-kernels from the IsaOps table.
// Every C element is accumulated in the same order whatever the thread count (tile positions and
// K blocks do not depend on it), so results are bitwise identical across thread counts.
#pragma once
#include <cstdint>

namespace attune {

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
};

// C = alpha op(A) op(B) + beta C on the calling thread only (safe inside a parallel region).
void gemmSerial(const GemmDesc& d);
// The same on the thread pool.
void gemmParallel(const GemmDesc& d);
// Batched: batch b uses A + b*strideA, B + b*strideB (elements), C + b*strideC.
void gemmBatched(const GemmDesc& d, long batch, long strideA, long strideB, long strideC);

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

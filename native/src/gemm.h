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

}  // namespace attune

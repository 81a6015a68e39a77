// Block-quantised frozen weights (int8 absmax, QLoRA's NF4) and the GEMM that dequantises them a
// tile at a time (qgemm.cpp). Layout and rounding: src/backend/js/quant.ts (the js reference).
#pragma once
#include <cstdint>

namespace attune {

enum class QuantFormat { Int8, Nf4 };

// Elements per block (one f32 absmax each).
constexpr long kQuantBlock = 64;

// Bytes of codes for n elements (int8: n, nf4: ceil(n / 2)).
inline long quantCodeBytes(QuantFormat f, long n) { return f == QuantFormat::Int8 ? n : (n + 1) / 2; }

// Quantises src[0, n) (f32, or bf16 bits when srcBf16) into codes / scales; returns the number of
// non-finite inputs (each stored as 0).
long quantizeBlocks(QuantFormat f, const void* src, bool srcBf16, long n, uint8_t* codes, float* scales);
// out[i] = element offset + i, for i < n.
void dequantizeRange(QuantFormat f, const uint8_t* codes, const float* scales, long offset, long n, float* out);
// C[M, N] = A[M, K] op(W) + beta C; W row-major [N, K] with op = transpose when transW, else [K, N].
void qgemm(bool transW, long M, long N, long K, const float* A, long lda, QuantFormat f, const uint8_t* codes,
           const float* scales, float beta, float* C, long ldc);

}  // namespace attune

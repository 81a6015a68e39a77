// Native kernel entry points (raw pointers; argument checking is done in binding.cpp). Semantics are
// those of src/backend/kernels.ts.
#pragma once
#include <cstddef>
#include <cstdint>

namespace attune {

enum class UnaryOp {
  Neg, Exp, Log, Sqrt, Rsqrt, Abs, Tanh, Sigmoid, Relu, Silu, GeluTanh, GeluErf, Softplus, Square, Pow,
  AddScalar, MulScalar
};
enum class BinaryOp { Add, Sub, Mul, Div, Max, Min, Eq, Gt };
enum class ReduceOp { Sum, Max, LogSumExp };
enum class ElemType { F32, F64, I32, U16, U8, I8, I16, U32 };

constexpr int kMaxRank = 16;

// ---- elementwise (elementwise.cpp) ----
void unary(UnaryOp op, const float* x, float* out, long n, float param);
void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, long n, float param);
void binary(BinaryOp op, const float* a, const long* aStrides, const float* b, const long* bStrides, float* out,
            const long* shape, int rank);
void where(const void* cond, ElemType condType, const long* cStrides, const float* a, const long* aStrides,
           const float* b, const long* bStrides, float* out, const long* shape, int rank);
void copyStrided(const void* src, long srcOffset, const long* srcStrides, void* dst, long dstOffset,
                 const long* dstStrides, const long* shape, int rank, int elemSize);
void swiglu(const float* g, const float* u, float* out, long n);
void swigluBackward(const float* g, const float* u, const float* gy, float* gg, float* gu, long n);
void dropout(const float* x, float* out, long n, double p, uint32_t seed, uint64_t offset);
void adamw(float* p, const float* g, float* m, float* v, long n, double lr, double beta1, double beta2, double eps,
           double weightDecay, double step);
void f32ToBf16(const float* src, uint16_t* dst, long n);
void bf16ToF32(const uint16_t* src, float* dst, long n);
double sumSquares(const float* x, long n);
void gatherRows(const void* table, bool bf16, const int32_t* ids, float* out, long n, long dim);
void scatterAddRows(const float* g, const int32_t* ids, float* gTable, long n, long dim);
void fwht(float* x, long rows, long n);
void rowPairDots(const float* a, const float* b, const int32_t* aRows, const int32_t* bRows, float* out, long k,
                 long n);

// ---- reductions and softmax family (reduce.cpp) ----
void reduce(ReduceOp op, const float* x, float* out, long outer, long len, long inner);
void softmax(const float* x, float* out, long rows, long cols);
void softmaxBackward(const float* y, const float* gy, float* gx, long rows, long cols);
void logSoftmax(const float* x, float* out, long rows, long cols);
void logSoftmaxBackward(const float* y, const float* gy, float* gx, long rows, long cols);
void crossEntropy(const float* logits, const int32_t* labels, float* loss, float* lse, long rows, long cols,
                  double smoothing);
void crossEntropyBackward(const float* logits, const int32_t* labels, const float* lse, const float* gLoss,
                          float* gLogits, long rows, long cols, double smoothing);

// ---- normalisation and rope (norm.cpp) ----
void rmsNorm(const float* x, const float* w, float* out, float* rstd, long rows, long cols, double eps);
void rmsNormBackward(const float* x, const float* w, const float* rstd, const float* gy, float* gx, float* gw,
                     long rows, long cols);
void layerNorm(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd, long rows,
               long cols, double eps);
void layerNormBackward(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                       float* gx, float* gw, float* gb, long rows, long cols);
void rope(const float* x, float* out, const float* cos, const float* sin, const int32_t* positions, long B, long T,
          long H, long D, bool inverse);

// ---- attention (attention.cpp) ----
struct AttnShape {
  long B, Tq, Tk, Hq, Hkv, D;
  float scale;
  bool causal;
  double dropP;
  uint32_t seed;
  // bf16 compute: every product takes bf16-rounded inputs with f32 accumulation (attentionBf16).
  bool bf16;
};
void attention(const float* q, const float* k, const float* v, float* out, float* lse, const AttnShape& s);
void attentionBackward(const float* q, const float* k, const float* v, const float* out, const float* lse,
                       const float* gOut, float* gq, float* gk, float* gv, const AttnShape& s);

// ---- fused LM head (lce.cpp) ----
struct LceOuts {
  float* lse;
  float* logp;
  float* entropy;
  int32_t* argmax;
  float* top1;
  float* top2;
};
// bf16Compute: the logits GEMM takes bf16-rounded h and w (and the backward GEMMs bf16-rounded dZ,
// w, h) with f32 accumulation, on the active gemmBf16 path; the statistics stay f32 / f64.
void linearCrossEntropy(const float* h, const void* w, bool wBf16, const int32_t* labels, long N, long d, long V,
                        const LceOuts& outs, bool bf16Compute);
void linearCrossEntropyBackward(const float* h, const void* w, bool wBf16, const int32_t* labels, const float* lse,
                                const float* entropy, const int32_t* argmax, const float* cLogp, const float* cEnt,
                                const float* cTop1, float* gh, float* gw, long N, long d, long V, bool bf16Compute);

}  // namespace attune

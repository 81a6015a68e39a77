// GENERATED from src/backend/manifest.ts by `node --import tsx scripts/gen-native-manifest.ts`.
// Do not edit: change the manifest and regenerate (docs/kernels.md).
#pragma once

namespace attune {
namespace manifest {

enum class Kind { Float, FloatOrBf16, I32, U16, Numeric, Count, Int, Number, Boolean, Choice, Dims, Object };

struct Arg {
  const char* name;
  Kind kind;
  bool optional;
  const char* const* choices;
  int nChoices;
};

struct Kernel {
  const char* name;
  int argc;
  const Arg* args;
  const char* signature;
};

inline constexpr Arg sgemm_args[] = {
    {"transA", Kind::Boolean, false, nullptr, 0},
    {"transB", Kind::Boolean, false, nullptr, 0},
    {"M", Kind::Count, false, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"K", Kind::Count, false, nullptr, 0},
    {"alpha", Kind::Number, false, nullptr, 0},
    {"A", Kind::Float, false, nullptr, 0},
    {"aOffset", Kind::Count, false, nullptr, 0},
    {"lda", Kind::Count, false, nullptr, 0},
    {"B", Kind::FloatOrBf16, false, nullptr, 0},
    {"bOffset", Kind::Count, false, nullptr, 0},
    {"ldb", Kind::Count, false, nullptr, 0},
    {"bBf16", Kind::Boolean, false, nullptr, 0},
    {"beta", Kind::Number, false, nullptr, 0},
    {"C", Kind::Float, false, nullptr, 0},
    {"cOffset", Kind::Count, false, nullptr, 0},
    {"ldc", Kind::Count, false, nullptr, 0},
    {"batch", Kind::Count, false, nullptr, 0},
    {"strideA", Kind::Count, false, nullptr, 0},
    {"strideB", Kind::Count, false, nullptr, 0},
    {"strideC", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel sgemm{"sgemm", 21, sgemm_args,
                              "boolean transA, boolean transB, count M, count N, count K, number alpha, float A, count aOffset, count lda, floatOrBf16(bBf16) B, count bOffset, count ldb, boolean bBf16, number beta, float C inout, count cOffset, count ldc, count batch, count strideA, count strideB, count strideC"};

inline constexpr Arg gemmBf16_args[] = {
    {"transA", Kind::Boolean, false, nullptr, 0},
    {"transB", Kind::Boolean, false, nullptr, 0},
    {"M", Kind::Count, false, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"K", Kind::Count, false, nullptr, 0},
    {"alpha", Kind::Number, false, nullptr, 0},
    {"A", Kind::Float, false, nullptr, 0},
    {"aOffset", Kind::Count, false, nullptr, 0},
    {"lda", Kind::Count, false, nullptr, 0},
    {"B", Kind::FloatOrBf16, false, nullptr, 0},
    {"bOffset", Kind::Count, false, nullptr, 0},
    {"ldb", Kind::Count, false, nullptr, 0},
    {"bBf16", Kind::Boolean, false, nullptr, 0},
    {"beta", Kind::Number, false, nullptr, 0},
    {"C", Kind::Float, false, nullptr, 0},
    {"cOffset", Kind::Count, false, nullptr, 0},
    {"ldc", Kind::Count, false, nullptr, 0},
    {"batch", Kind::Count, false, nullptr, 0},
    {"strideA", Kind::Count, false, nullptr, 0},
    {"strideB", Kind::Count, false, nullptr, 0},
    {"strideC", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel gemmBf16{"gemmBf16", 21, gemmBf16_args,
                              "boolean transA, boolean transB, count M, count N, count K, number alpha, float A, count aOffset, count lda, floatOrBf16(bBf16) B, count bOffset, count ldb, boolean bBf16, number beta, float C inout, count cOffset, count ldc, count batch, count strideA, count strideB, count strideC"};

inline constexpr const char* unary_op_choices[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu", "silu", "gelu_tanh", "gelu_erf", "softplus", "square", "pow", "add_scalar", "mul_scalar"};
inline constexpr Arg unary_args[] = {
    {"op", Kind::Choice, false, unary_op_choices, 17},
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"param", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel unary{"unary", 5, unary_args,
                              "choice(neg|exp|log|sqrt|rsqrt|abs|tanh|sigmoid|relu|silu|gelu_tanh|gelu_erf|softplus|square|pow|add_scalar|mul_scalar) op, float x[n], float out[n] out, count n, number param"};

inline constexpr const char* unaryBackward_op_choices[] = {"neg", "exp", "log", "sqrt", "rsqrt", "abs", "tanh", "sigmoid", "relu", "silu", "gelu_tanh", "gelu_erf", "softplus", "square", "pow", "add_scalar", "mul_scalar"};
inline constexpr Arg unaryBackward_args[] = {
    {"op", Kind::Choice, false, unaryBackward_op_choices, 17},
    {"x", Kind::Float, false, nullptr, 0},
    {"y", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"param", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel unaryBackward{"unaryBackward", 7, unaryBackward_args,
                              "choice(neg|exp|log|sqrt|rsqrt|abs|tanh|sigmoid|relu|silu|gelu_tanh|gelu_erf|softplus|square|pow|add_scalar|mul_scalar) op, float x[n], float y[n], float gy[n], float gx[n] out, count n, number param"};

inline constexpr const char* binary_op_choices[] = {"add", "sub", "mul", "div", "max", "min", "eq", "gt"};
inline constexpr Arg binary_args[] = {
    {"op", Kind::Choice, false, binary_op_choices, 8},
    {"a", Kind::Float, false, nullptr, 0},
    {"aStrides", Kind::Dims, false, nullptr, 0},
    {"b", Kind::Float, false, nullptr, 0},
    {"bStrides", Kind::Dims, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"shape", Kind::Dims, false, nullptr, 0},
};
inline constexpr Kernel binary{"binary", 7, binary_args,
                              "choice(add|sub|mul|div|max|min|eq|gt) op, float a, dims aStrides, float b, dims bStrides, float out out, dims shape"};

inline constexpr Arg where_args[] = {
    {"cond", Kind::Numeric, false, nullptr, 0},
    {"condStrides", Kind::Dims, false, nullptr, 0},
    {"a", Kind::Float, false, nullptr, 0},
    {"aStrides", Kind::Dims, false, nullptr, 0},
    {"b", Kind::Float, false, nullptr, 0},
    {"bStrides", Kind::Dims, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"shape", Kind::Dims, false, nullptr, 0},
};
inline constexpr Kernel where{"where", 8, where_args,
                              "numeric cond, dims condStrides, float a, dims aStrides, float b, dims bStrides, float out out, dims shape"};

inline constexpr Arg copyStrided_args[] = {
    {"src", Kind::Numeric, false, nullptr, 0},
    {"srcOffset", Kind::Int, false, nullptr, 0},
    {"srcStrides", Kind::Dims, false, nullptr, 0},
    {"dst", Kind::Numeric, false, nullptr, 0},
    {"dstOffset", Kind::Int, false, nullptr, 0},
    {"dstStrides", Kind::Dims, false, nullptr, 0},
    {"shape", Kind::Dims, false, nullptr, 0},
};
inline constexpr Kernel copyStrided{"copyStrided", 7, copyStrided_args,
                              "numeric src, int srcOffset, dims srcStrides, numeric dst inout, int dstOffset, dims dstStrides, dims shape"};

inline constexpr const char* reduce_op_choices[] = {"sum", "max", "logsumexp"};
inline constexpr Arg reduce_args[] = {
    {"op", Kind::Choice, false, reduce_op_choices, 3},
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"outer", Kind::Count, false, nullptr, 0},
    {"len", Kind::Count, false, nullptr, 0},
    {"inner", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel reduce{"reduce", 6, reduce_args,
                              "choice(sum|max|logsumexp) op, float x[outer*len*inner], float out[outer*inner] out, count outer, count len, count inner"};

inline constexpr Arg softmax_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel softmax{"softmax", 4, softmax_args,
                              "float x[rows*cols], float out[rows*cols] out, count rows, count cols"};

inline constexpr Arg softmaxBackward_args[] = {
    {"y", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel softmaxBackward{"softmaxBackward", 5, softmaxBackward_args,
                              "float y[rows*cols], float gy[rows*cols], float gx[rows*cols] out, count rows, count cols"};

inline constexpr Arg logSoftmax_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel logSoftmax{"logSoftmax", 4, logSoftmax_args,
                              "float x[rows*cols], float out[rows*cols] out, count rows, count cols"};

inline constexpr Arg logSoftmaxBackward_args[] = {
    {"y", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel logSoftmaxBackward{"logSoftmaxBackward", 5, logSoftmaxBackward_args,
                              "float y[rows*cols], float gy[rows*cols], float gx[rows*cols] out, count rows, count cols"};

inline constexpr Arg rmsNorm_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"weight", Kind::Float, true, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"rstd", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
    {"eps", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel rmsNorm{"rmsNorm", 7, rmsNorm_args,
                              "float x[rows*cols], float? weight[cols], float out[rows*cols] out, float rstd[rows] out, count rows, count cols, number eps"};

inline constexpr Arg rmsNormBackward_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"weight", Kind::Float, true, nullptr, 0},
    {"rstd", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"gWeight", Kind::Float, true, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel rmsNormBackward{"rmsNormBackward", 8, rmsNormBackward_args,
                              "float x[rows*cols], float? weight[cols], float rstd[rows], float gy[rows*cols], float gx[rows*cols] out, float? gWeight[cols] inout, count rows, count cols"};

inline constexpr Arg layerNorm_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"weight", Kind::Float, true, nullptr, 0},
    {"bias", Kind::Float, true, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"mean", Kind::Float, false, nullptr, 0},
    {"rstd", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
    {"eps", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel layerNorm{"layerNorm", 9, layerNorm_args,
                              "float x[rows*cols], float? weight[cols], float? bias[cols], float out[rows*cols] out, float mean[rows] out, float rstd[rows] out, count rows, count cols, number eps"};

inline constexpr Arg layerNormBackward_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"weight", Kind::Float, true, nullptr, 0},
    {"mean", Kind::Float, false, nullptr, 0},
    {"rstd", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"gWeight", Kind::Float, true, nullptr, 0},
    {"gBias", Kind::Float, true, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel layerNormBackward{"layerNormBackward", 10, layerNormBackward_args,
                              "float x[rows*cols], float? weight[cols], float mean[rows], float rstd[rows], float gy[rows*cols], float gx[rows*cols] out, float? gWeight[cols] inout, float? gBias[cols] inout, count rows, count cols"};

inline constexpr Arg rope_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"cos", Kind::Float, false, nullptr, 0},
    {"sin", Kind::Float, false, nullptr, 0},
    {"positions", Kind::I32, false, nullptr, 0},
    {"B", Kind::Count, false, nullptr, 0},
    {"T", Kind::Count, false, nullptr, 0},
    {"H", Kind::Count, false, nullptr, 0},
    {"D", Kind::Count, false, nullptr, 0},
    {"inverse", Kind::Boolean, false, nullptr, 0},
};
inline constexpr Kernel rope{"rope", 10, rope_args,
                              "float x[B*T*H*D], float out[B*T*H*D] out, float cos, float sin, i32 positions[B*T], count B, count T, count H, count D, boolean inverse"};

inline constexpr Arg attention_args[] = {
    {"q", Kind::Float, false, nullptr, 0},
    {"k", Kind::Float, false, nullptr, 0},
    {"v", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"B", Kind::Count, false, nullptr, 0},
    {"Tq", Kind::Count, false, nullptr, 0},
    {"Tk", Kind::Count, false, nullptr, 0},
    {"Hq", Kind::Count, false, nullptr, 0},
    {"Hkv", Kind::Count, false, nullptr, 0},
    {"D", Kind::Count, false, nullptr, 0},
    {"scale", Kind::Number, false, nullptr, 0},
    {"causal", Kind::Boolean, false, nullptr, 0},
    {"dropP", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel attention{"attention", 15, attention_args,
                              "float q[B*Tq*Hq*D], float k[B*Tk*Hkv*D], float v[B*Tk*Hkv*D], float out[B*Tq*Hq*D] out, float lse[B*Hq*Tq] out, count B, count Tq, count Tk, count Hq, count Hkv, count D, number scale, boolean causal, number dropP, number seed"};

inline constexpr Arg attentionBackward_args[] = {
    {"q", Kind::Float, false, nullptr, 0},
    {"k", Kind::Float, false, nullptr, 0},
    {"v", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"gOut", Kind::Float, false, nullptr, 0},
    {"gq", Kind::Float, false, nullptr, 0},
    {"gk", Kind::Float, false, nullptr, 0},
    {"gv", Kind::Float, false, nullptr, 0},
    {"B", Kind::Count, false, nullptr, 0},
    {"Tq", Kind::Count, false, nullptr, 0},
    {"Tk", Kind::Count, false, nullptr, 0},
    {"Hq", Kind::Count, false, nullptr, 0},
    {"Hkv", Kind::Count, false, nullptr, 0},
    {"D", Kind::Count, false, nullptr, 0},
    {"scale", Kind::Number, false, nullptr, 0},
    {"causal", Kind::Boolean, false, nullptr, 0},
    {"dropP", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel attentionBackward{"attentionBackward", 19, attentionBackward_args,
                              "float q[B*Tq*Hq*D], float k[B*Tk*Hkv*D], float v[B*Tk*Hkv*D], float out[B*Tq*Hq*D], float lse[B*Hq*Tq], float gOut[B*Tq*Hq*D], float gq[B*Tq*Hq*D] out, float gk[B*Tk*Hkv*D] out, float gv[B*Tk*Hkv*D] out, count B, count Tq, count Tk, count Hq, count Hkv, count D, number scale, boolean causal, number dropP, number seed"};

inline constexpr Arg attentionBf16_args[] = {
    {"q", Kind::Float, false, nullptr, 0},
    {"k", Kind::Float, false, nullptr, 0},
    {"v", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"B", Kind::Count, false, nullptr, 0},
    {"Tq", Kind::Count, false, nullptr, 0},
    {"Tk", Kind::Count, false, nullptr, 0},
    {"Hq", Kind::Count, false, nullptr, 0},
    {"Hkv", Kind::Count, false, nullptr, 0},
    {"D", Kind::Count, false, nullptr, 0},
    {"scale", Kind::Number, false, nullptr, 0},
    {"causal", Kind::Boolean, false, nullptr, 0},
    {"dropP", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel attentionBf16{"attentionBf16", 15, attentionBf16_args,
                              "float q[B*Tq*Hq*D], float k[B*Tk*Hkv*D], float v[B*Tk*Hkv*D], float out[B*Tq*Hq*D] out, float lse[B*Hq*Tq] out, count B, count Tq, count Tk, count Hq, count Hkv, count D, number scale, boolean causal, number dropP, number seed"};

inline constexpr Arg attentionBf16Backward_args[] = {
    {"q", Kind::Float, false, nullptr, 0},
    {"k", Kind::Float, false, nullptr, 0},
    {"v", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"gOut", Kind::Float, false, nullptr, 0},
    {"gq", Kind::Float, false, nullptr, 0},
    {"gk", Kind::Float, false, nullptr, 0},
    {"gv", Kind::Float, false, nullptr, 0},
    {"B", Kind::Count, false, nullptr, 0},
    {"Tq", Kind::Count, false, nullptr, 0},
    {"Tk", Kind::Count, false, nullptr, 0},
    {"Hq", Kind::Count, false, nullptr, 0},
    {"Hkv", Kind::Count, false, nullptr, 0},
    {"D", Kind::Count, false, nullptr, 0},
    {"scale", Kind::Number, false, nullptr, 0},
    {"causal", Kind::Boolean, false, nullptr, 0},
    {"dropP", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel attentionBf16Backward{"attentionBf16Backward", 19, attentionBf16Backward_args,
                              "float q[B*Tq*Hq*D], float k[B*Tk*Hkv*D], float v[B*Tk*Hkv*D], float out[B*Tq*Hq*D], float lse[B*Hq*Tq], float gOut[B*Tq*Hq*D], float gq[B*Tq*Hq*D] out, float gk[B*Tk*Hkv*D] out, float gv[B*Tk*Hkv*D] out, count B, count Tq, count Tk, count Hq, count Hkv, count D, number scale, boolean causal, number dropP, number seed"};

inline constexpr Arg swiglu_args[] = {
    {"gate", Kind::Float, false, nullptr, 0},
    {"up", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel swiglu{"swiglu", 4, swiglu_args,
                              "float gate[n], float up[n], float out[n] out, count n"};

inline constexpr Arg swigluBackward_args[] = {
    {"gate", Kind::Float, false, nullptr, 0},
    {"up", Kind::Float, false, nullptr, 0},
    {"gy", Kind::Float, false, nullptr, 0},
    {"gGate", Kind::Float, false, nullptr, 0},
    {"gUp", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel swigluBackward{"swigluBackward", 6, swigluBackward_args,
                              "float gate[n], float up[n], float gy[n], float gGate[n] out, float gUp[n] out, count n"};

inline constexpr Arg gatherRows_args[] = {
    {"table", Kind::FloatOrBf16, false, nullptr, 0},
    {"tableBf16", Kind::Boolean, false, nullptr, 0},
    {"ids", Kind::I32, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"dim", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel gatherRows{"gatherRows", 6, gatherRows_args,
                              "floatOrBf16(tableBf16) table, boolean tableBf16, i32 ids[n], float out[n*dim] out, count n, count dim"};

inline constexpr Arg scatterAddRows_args[] = {
    {"g", Kind::Float, false, nullptr, 0},
    {"ids", Kind::I32, false, nullptr, 0},
    {"gTable", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"dim", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel scatterAddRows{"scatterAddRows", 5, scatterAddRows_args,
                              "float g[n*dim], i32 ids[n], float gTable inout, count n, count dim"};

inline constexpr Arg rowPairDots_args[] = {
    {"a", Kind::Float, false, nullptr, 0},
    {"b", Kind::Float, false, nullptr, 0},
    {"aRows", Kind::I32, false, nullptr, 0},
    {"bRows", Kind::I32, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"k", Kind::Count, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel rowPairDots{"rowPairDots", 7, rowPairDots_args,
                              "float a, float b, i32 aRows[k], i32 bRows[k], float out[k] out, count k, count n"};

inline constexpr Arg fwht_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel fwht{"fwht", 3, fwht_args,
                              "float x[rows*n] inout, count rows, count n"};

inline constexpr Arg linearCrossEntropy_args[] = {
    {"h", Kind::Float, false, nullptr, 0},
    {"w", Kind::FloatOrBf16, false, nullptr, 0},
    {"wBf16", Kind::Boolean, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"d", Kind::Count, false, nullptr, 0},
    {"V", Kind::Count, false, nullptr, 0},
    {"outs", Kind::Object, false, nullptr, 0},
};
inline constexpr Kernel linearCrossEntropy{"linearCrossEntropy", 8, linearCrossEntropy_args,
                              "float h[N*d], floatOrBf16(wBf16) w[V*d], boolean wBf16, i32 labels[N], count N, count d, count V, lceOuts outs out"};

inline constexpr Arg linearCrossEntropyBackward_args[] = {
    {"h", Kind::Float, false, nullptr, 0},
    {"w", Kind::FloatOrBf16, false, nullptr, 0},
    {"wBf16", Kind::Boolean, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"entropy", Kind::Float, false, nullptr, 0},
    {"argmax", Kind::I32, false, nullptr, 0},
    {"cLogp", Kind::Float, false, nullptr, 0},
    {"cEnt", Kind::Float, false, nullptr, 0},
    {"cTop1", Kind::Float, true, nullptr, 0},
    {"gh", Kind::Float, true, nullptr, 0},
    {"gw", Kind::Float, true, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"d", Kind::Count, false, nullptr, 0},
    {"V", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel linearCrossEntropyBackward{"linearCrossEntropyBackward", 15, linearCrossEntropyBackward_args,
                              "float h[N*d], floatOrBf16(wBf16) w[V*d], boolean wBf16, i32 labels[N], float lse[N], float entropy[N], i32 argmax[N], float cLogp[N], float cEnt[N], float? cTop1[N], float? gh[N*d] out, float? gw[V*d] inout, count N, count d, count V"};

inline constexpr Arg linearCrossEntropyBf16_args[] = {
    {"h", Kind::Float, false, nullptr, 0},
    {"w", Kind::FloatOrBf16, false, nullptr, 0},
    {"wBf16", Kind::Boolean, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"d", Kind::Count, false, nullptr, 0},
    {"V", Kind::Count, false, nullptr, 0},
    {"outs", Kind::Object, false, nullptr, 0},
};
inline constexpr Kernel linearCrossEntropyBf16{"linearCrossEntropyBf16", 8, linearCrossEntropyBf16_args,
                              "float h[N*d], floatOrBf16(wBf16) w[V*d], boolean wBf16, i32 labels[N], count N, count d, count V, lceOuts outs out"};

inline constexpr Arg linearCrossEntropyBf16Backward_args[] = {
    {"h", Kind::Float, false, nullptr, 0},
    {"w", Kind::FloatOrBf16, false, nullptr, 0},
    {"wBf16", Kind::Boolean, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"entropy", Kind::Float, false, nullptr, 0},
    {"argmax", Kind::I32, false, nullptr, 0},
    {"cLogp", Kind::Float, false, nullptr, 0},
    {"cEnt", Kind::Float, false, nullptr, 0},
    {"cTop1", Kind::Float, true, nullptr, 0},
    {"gh", Kind::Float, true, nullptr, 0},
    {"gw", Kind::Float, true, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"d", Kind::Count, false, nullptr, 0},
    {"V", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel linearCrossEntropyBf16Backward{"linearCrossEntropyBf16Backward", 15, linearCrossEntropyBf16Backward_args,
                              "float h[N*d], floatOrBf16(wBf16) w[V*d], boolean wBf16, i32 labels[N], float lse[N], float entropy[N], i32 argmax[N], float cLogp[N], float cEnt[N], float? cTop1[N], float? gh[N*d] out, float? gw[V*d] inout, count N, count d, count V"};

inline constexpr Arg crossEntropy_args[] = {
    {"logits", Kind::Float, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"loss", Kind::Float, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
    {"smoothing", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel crossEntropy{"crossEntropy", 7, crossEntropy_args,
                              "float logits[rows*cols], i32 labels[rows], float loss[rows] out, float lse[rows] out, count rows, count cols, number smoothing"};

inline constexpr Arg crossEntropyBackward_args[] = {
    {"logits", Kind::Float, false, nullptr, 0},
    {"labels", Kind::I32, false, nullptr, 0},
    {"lse", Kind::Float, false, nullptr, 0},
    {"gLoss", Kind::Float, false, nullptr, 0},
    {"gLogits", Kind::Float, false, nullptr, 0},
    {"rows", Kind::Count, false, nullptr, 0},
    {"cols", Kind::Count, false, nullptr, 0},
    {"smoothing", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel crossEntropyBackward{"crossEntropyBackward", 8, crossEntropyBackward_args,
                              "float logits[rows*cols], i32 labels[rows], float lse[rows], float gLoss[rows], float gLogits[rows*cols] out, count rows, count cols, number smoothing"};

inline constexpr Arg dropout_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"p", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
    {"offset", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel dropout{"dropout", 6, dropout_args,
                              "float x[n], float out[n] out, count n, number p, number seed, count offset"};

inline constexpr Arg dropoutBackward_args[] = {
    {"gy", Kind::Float, false, nullptr, 0},
    {"gx", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"p", Kind::Number, false, nullptr, 0},
    {"seed", Kind::Number, false, nullptr, 0},
    {"offset", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel dropoutBackward{"dropoutBackward", 6, dropoutBackward_args,
                              "float gy[n], float gx[n] out, count n, number p, number seed, count offset"};

inline constexpr Arg adamw_args[] = {
    {"p", Kind::Float, false, nullptr, 0},
    {"g", Kind::Float, false, nullptr, 0},
    {"m", Kind::Float, false, nullptr, 0},
    {"v", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"lr", Kind::Number, false, nullptr, 0},
    {"beta1", Kind::Number, false, nullptr, 0},
    {"beta2", Kind::Number, false, nullptr, 0},
    {"eps", Kind::Number, false, nullptr, 0},
    {"weightDecay", Kind::Number, false, nullptr, 0},
    {"step", Kind::Number, false, nullptr, 0},
};
inline constexpr Kernel adamw{"adamw", 11, adamw_args,
                              "float p[n] inout, float g[n], float m[n] inout, float v[n] inout, count n, number lr, number beta1, number beta2, number eps, number weightDecay, number step"};

inline constexpr Arg f32ToBf16_args[] = {
    {"src", Kind::Float, false, nullptr, 0},
    {"dst", Kind::U16, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel f32ToBf16{"f32ToBf16", 3, f32ToBf16_args,
                              "float32 src[n], u16 dst[n] out, count n"};

inline constexpr Arg bf16ToF32_args[] = {
    {"src", Kind::U16, false, nullptr, 0},
    {"dst", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel bf16ToF32{"bf16ToF32", 3, bf16ToF32_args,
                              "u16 src[n], float32 dst[n] out, count n"};

inline constexpr Arg sumSquares_args[] = {
    {"x", Kind::Float, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel sumSquares{"sumSquares", 2, sumSquares_args,
                              "float x[n], count n -> number"};

inline constexpr const char* quantize_format_choices[] = {"int8", "nf4"};
inline constexpr Arg quantize_args[] = {
    {"format", Kind::Choice, false, quantize_format_choices, 2},
    {"src", Kind::FloatOrBf16, false, nullptr, 0},
    {"srcBf16", Kind::Boolean, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"codes", Kind::U16, false, nullptr, 0},
    {"scales", Kind::Float, false, nullptr, 0},
};
inline constexpr Kernel quantize{"quantize", 6, quantize_args,
                              "choice(int8|nf4) format, floatOrBf16(srcBf16) src[n], boolean srcBf16, count n, u16 codes out, float32 scales out -> number"};

inline constexpr const char* dequantize_format_choices[] = {"int8", "nf4"};
inline constexpr Arg dequantize_args[] = {
    {"format", Kind::Choice, false, dequantize_format_choices, 2},
    {"codes", Kind::U16, false, nullptr, 0},
    {"scales", Kind::Float, false, nullptr, 0},
    {"offset", Kind::Count, false, nullptr, 0},
    {"n", Kind::Count, false, nullptr, 0},
    {"out", Kind::Float, false, nullptr, 0},
};
inline constexpr Kernel dequantize{"dequantize", 6, dequantize_args,
                              "choice(int8|nf4) format, u16 codes, float32 scales, count offset, count n, float32 out[n] out"};

inline constexpr const char* qgemm_format_choices[] = {"int8", "nf4"};
inline constexpr Arg qgemm_args[] = {
    {"transW", Kind::Boolean, false, nullptr, 0},
    {"M", Kind::Count, false, nullptr, 0},
    {"N", Kind::Count, false, nullptr, 0},
    {"K", Kind::Count, false, nullptr, 0},
    {"A", Kind::Float, false, nullptr, 0},
    {"lda", Kind::Count, false, nullptr, 0},
    {"format", Kind::Choice, false, qgemm_format_choices, 2},
    {"codes", Kind::U16, false, nullptr, 0},
    {"scales", Kind::Float, false, nullptr, 0},
    {"beta", Kind::Number, false, nullptr, 0},
    {"C", Kind::Float, false, nullptr, 0},
    {"ldc", Kind::Count, false, nullptr, 0},
};
inline constexpr Kernel qgemm{"qgemm", 12, qgemm_args,
                              "boolean transW, count M, count N, count K, float A, count lda, choice(int8|nf4) format, u16 codes, float32 scales, number beta, float C inout, count ldc"};

inline constexpr int kMaxArgs = 21;

inline constexpr const Kernel* kAll[] = {&sgemm, &gemmBf16, &unary, &unaryBackward, &binary, &where, &copyStrided, &reduce, &softmax, &softmaxBackward, &logSoftmax, &logSoftmaxBackward, &rmsNorm, &rmsNormBackward, &layerNorm, &layerNormBackward, &rope, &attention, &attentionBackward, &attentionBf16, &attentionBf16Backward, &swiglu, &swigluBackward, &gatherRows, &scatterAddRows, &rowPairDots, &fwht, &linearCrossEntropy, &linearCrossEntropyBackward, &linearCrossEntropyBf16, &linearCrossEntropyBf16Backward, &crossEntropy, &crossEntropyBackward, &dropout, &dropoutBackward, &adamw, &f32ToBf16, &bf16ToF32, &sumSquares, &quantize, &dequantize, &qgemm};

}  // namespace manifest
}  // namespace attune

// X(name) for every kernel, in manifest order.
#define ATTUNE_MANIFEST_KERNELS(X) \
  X(sgemm) \
  X(gemmBf16) \
  X(unary) \
  X(unaryBackward) \
  X(binary) \
  X(where) \
  X(copyStrided) \
  X(reduce) \
  X(softmax) \
  X(softmaxBackward) \
  X(logSoftmax) \
  X(logSoftmaxBackward) \
  X(rmsNorm) \
  X(rmsNormBackward) \
  X(layerNorm) \
  X(layerNormBackward) \
  X(rope) \
  X(attention) \
  X(attentionBackward) \
  X(attentionBf16) \
  X(attentionBf16Backward) \
  X(swiglu) \
  X(swigluBackward) \
  X(gatherRows) \
  X(scatterAddRows) \
  X(rowPairDots) \
  X(fwht) \
  X(linearCrossEntropy) \
  X(linearCrossEntropyBackward) \
  X(linearCrossEntropyBf16) \
  X(linearCrossEntropyBf16Backward) \
  X(crossEntropy) \
  X(crossEntropyBackward) \
  X(dropout) \
  X(dropoutBackward) \
  X(adamw) \
  X(f32ToBf16) \
  X(bf16ToF32) \
  X(sumSquares) \
  X(quantize) \
  X(dequantize) \
  X(qgemm)

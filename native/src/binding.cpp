// N-API surface: every Kernels method of src/backend/kernels.ts under its own name with the same
// positional arguments, plus init(threads), threads() and cpuInfo(). Arrays are used in place
// (typed array data pointer, byte offset included); arguments are checked here so a bad call throws
// a TypeError / RangeError naming the kernel and the argument instead of touching memory it must not.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "gemm.h"
#include "kernels.h"

namespace attune {
std::vector<std::string> cpuFeatures();
}

using namespace attune;

namespace {

struct Arr {
  napi_typedarray_type type;
  size_t length;
  void* data;
};

class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn, size_t count) : info_(info), env_(info.Env()), fn_(fn) {
    if (info.Length() < count)
      throw Napi::TypeError::New(env_, std::string(fn) + ": expected " + std::to_string(count) + " arguments, got " +
                                           std::to_string(info.Length()));
  }

  [[noreturn]] void typeError(const std::string& what) const {
    throw Napi::TypeError::New(env_, std::string(fn_) + ": " + what);
  }
  [[noreturn]] void rangeError(const std::string& what) const {
    throw Napi::RangeError::New(env_, std::string(fn_) + ": " + what);
  }

  bool isNull(size_t i) const { return info_[i].IsNull() || info_[i].IsUndefined(); }

  Arr arr(size_t i, const char* name) const {
    napi_value v = info_[i];
    bool is = false;
    napi_is_typedarray(env_, v, &is);
    if (!is) typeError(std::string(name) + " must be a typed array");
    Arr a{};
    napi_value ab;
    size_t off;
    napi_get_typedarray_info(env_, v, &a.type, &a.length, &a.data, &ab, &off);
    return a;
  }

  void need(const Arr& a, double count, const char* name) const {
    if (count > static_cast<double>(a.length))
      rangeError(std::string(name) + " has " + std::to_string(a.length) + " elements, needs " +
                 std::to_string(static_cast<long long>(count)));
  }

  float* f32(size_t i, const char* name, double count) const {
    Arr a = arr(i, name);
    if (a.type == napi_float64_array)
      typeError(std::string(name) + " is a Float64Array: native kernels take Float32Array (f64 runs on the js backend)");
    if (a.type != napi_float32_array) typeError(std::string(name) + " must be a Float32Array");
    need(a, count, name);
    return static_cast<float*>(a.data);
  }
  float* f32opt(size_t i, const char* name, double count) const { return isNull(i) ? nullptr : f32(i, name, count); }

  int32_t* i32(size_t i, const char* name, double count) const {
    Arr a = arr(i, name);
    if (a.type != napi_int32_array) typeError(std::string(name) + " must be an Int32Array");
    need(a, count, name);
    return static_cast<int32_t*>(a.data);
  }

  uint16_t* u16(size_t i, const char* name, double count) const {
    Arr a = arr(i, name);
    if (a.type != napi_uint16_array) typeError(std::string(name) + " must be a Uint16Array (bf16)");
    need(a, count, name);
    return static_cast<uint16_t*>(a.data);
  }

  // Float32Array, or Uint16Array when bf16.
  const void* f32OrBf16(size_t i, bool bf16, const char* name, double count) const {
    return bf16 ? static_cast<const void*>(u16(i, name, count)) : static_cast<const void*>(f32(i, name, count));
  }

  double num(size_t i, const char* name) const {
    napi_value v = info_[i];
    double d;
    if (napi_get_value_double(env_, v, &d) != napi_ok) typeError(std::string(name) + " must be a number");
    return d;
  }

  long count(size_t i, const char* name) const {
    const double d = num(i, name);
    if (!(d >= 0) || d != std::floor(d) || d > 9007199254740991.0)
      rangeError(std::string(name) + " must be a non-negative integer, got " + std::to_string(d));
    return static_cast<long>(d);
  }

  long integer(size_t i, const char* name) const {
    const double d = num(i, name);
    if (!std::isfinite(d) || d != std::floor(d)) rangeError(std::string(name) + " must be an integer");
    return static_cast<long>(d);
  }

  bool flag(size_t i) const { return info_[i].ToBoolean().Value(); }

  std::string str(size_t i, const char* name) const {
    if (!info_[i].IsString()) typeError(std::string(name) + " must be a string");
    return info_[i].As<Napi::String>().Utf8Value();
  }

  // A JS array (or typed array) of numbers; entries beyond its length read as 0.
  void longs(size_t i, const char* name, int rank, long* out) const {
    for (int d = 0; d < rank; d++) out[d] = 0;
    napi_value v = info_[i];
    bool isArr = false;
    napi_is_array(env_, v, &isArr);
    if (isArr) {
      uint32_t len;
      napi_get_array_length(env_, v, &len);
      for (uint32_t d = 0; d < len && static_cast<int>(d) < rank; d++) {
        napi_value e;
        napi_get_element(env_, v, d, &e);
        double x;
        if (napi_get_value_double(env_, e, &x) != napi_ok || !std::isfinite(x) || x != std::floor(x))
          typeError(std::string(name) + "[" + std::to_string(d) + "] must be an integer");
        out[d] = static_cast<long>(x);
      }
      return;
    }
    bool isTa = false;
    napi_is_typedarray(env_, v, &isTa);
    if (!isTa) typeError(std::string(name) + " must be an array of integers");
    Arr a = arr(i, name);
    for (size_t d = 0; d < a.length && static_cast<int>(d) < rank; d++) {
      double x = 0;
      switch (a.type) {
        case napi_int32_array: x = static_cast<int32_t*>(a.data)[d]; break;
        case napi_uint32_array: x = static_cast<uint32_t*>(a.data)[d]; break;
        case napi_float64_array: x = static_cast<double*>(a.data)[d]; break;
        case napi_float32_array: x = static_cast<float*>(a.data)[d]; break;
        default: typeError(std::string(name) + " must hold integers");
      }
      out[d] = static_cast<long>(x);
    }
  }

  int rankOf(size_t i, const char* name) const {
    napi_value v = info_[i];
    bool isArr = false;
    napi_is_array(env_, v, &isArr);
    uint32_t len = 0;
    if (isArr) {
      napi_get_array_length(env_, v, &len);
    } else {
      len = static_cast<uint32_t>(arr(i, name).length);
    }
    if (len > static_cast<uint32_t>(kMaxRank)) rangeError(std::string(name) + ": rank above " + std::to_string(kMaxRank));
    return static_cast<int>(len);
  }

  // Checks that every index offset + idx . strides over shape stays inside [0, length).
  void checkStrided(const Arr& a, long offset, const long* strides, const long* shape, int rank,
                    const char* name) const {
    long lo = offset, hi = offset;
    for (int d = 0; d < rank; d++) {
      if (shape[d] == 0) return;
      const long span = (shape[d] - 1) * strides[d];
      if (span > 0) hi += span;
      else lo += span;
    }
    if (lo < 0 || hi >= static_cast<long>(a.length))
      rangeError(std::string(name) + ": strided view [" + std::to_string(lo) + ", " + std::to_string(hi) +
                 "] outside an array of " + std::to_string(a.length));
  }

  Napi::Env env() const { return env_; }

 private:
  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
};

UnaryOp unaryOp(const Args& a, const std::string& s) {
  static const char* names[] = {"neg",      "exp",       "log",      "sqrt",    "rsqrt",  "abs",
                                "tanh",     "sigmoid",   "relu",     "silu",    "gelu_tanh", "gelu_erf",
                                "softplus", "square",    "pow",      "add_scalar", "mul_scalar"};
  for (int i = 0; i < 17; i++)
    if (s == names[i]) return static_cast<UnaryOp>(i);
  a.typeError("unknown unary op '" + s + "'");
}

BinaryOp binaryOp(const Args& a, const std::string& s) {
  static const char* names[] = {"add", "sub", "mul", "div", "max", "min", "eq", "gt"};
  for (int i = 0; i < 8; i++)
    if (s == names[i]) return static_cast<BinaryOp>(i);
  a.typeError("unknown binary op '" + s + "'");
}

ElemType elemType(const Args& a, napi_typedarray_type t, int* size) {
  switch (t) {
    case napi_float32_array: *size = 4; return ElemType::F32;
    case napi_float64_array: *size = 8; return ElemType::F64;
    case napi_int32_array: *size = 4; return ElemType::I32;
    case napi_uint32_array: *size = 4; return ElemType::U32;
    case napi_uint16_array: *size = 2; return ElemType::U16;
    case napi_int16_array: *size = 2; return ElemType::I16;
    case napi_uint8_array:
    case napi_uint8_clamped_array: *size = 1; return ElemType::U8;
    case napi_int8_array: *size = 1; return ElemType::I8;
    default: a.typeError("unsupported typed array type");
  }
}

// ---- lifecycle ---------------------------------------------------------------------------------

Napi::Value Init(const Napi::CallbackInfo& info) {
  const Args a(info, "init", 0);
  const long n = info.Length() > 0 && !a.isNull(0) ? a.count(0, "threads") : 0;
  poolInit(static_cast<int>(n));
  isa();
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), poolSize()); }

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", isa()->name);
  const std::vector<std::string> f = cpuFeatures();
  Napi::Array arr = Napi::Array::New(env, f.size());
  for (size_t i = 0; i < f.size(); i++) arr.Set(static_cast<uint32_t>(i), f[i]);
  o.Set("features", arr);
  o.Set("gemmTile", Napi::String::New(env, std::to_string(isa()->mr) + "x" + std::to_string(isa()->nr)));
  return o;
}

// ---- GEMM --------------------------------------------------------------------------------------

Napi::Value Sgemm(const Napi::CallbackInfo& info) {
  const Args a(info, "sgemm", 21);
  GemmDesc d{};
  d.transA = a.flag(0);
  d.transB = a.flag(1);
  d.M = a.count(2, "M");
  d.N = a.count(3, "N");
  d.K = a.count(4, "K");
  d.alpha = static_cast<float>(a.num(5, "alpha"));
  const long aOff = a.count(7, "aOffset"), lda = a.count(8, "lda");
  const long bOff = a.count(10, "bOffset"), ldb = a.count(11, "ldb");
  d.bBf16 = a.flag(12);
  d.beta = static_cast<float>(a.num(13, "beta"));
  const long cOff = a.count(15, "cOffset"), ldc = a.count(16, "ldc");
  const long batch = a.count(17, "batch");
  const long sA = a.count(18, "strideA"), sB = a.count(19, "strideB"), sC = a.count(20, "strideC");
  if (d.M == 0 || d.N == 0 || batch == 0) return info.Env().Undefined();
  // Extents of one operand (last element index + 1).
  const double aRows = d.transA ? d.K : d.M, aCols = d.transA ? d.M : d.K;
  const double bRows = d.transB ? d.N : d.K, bCols = d.transB ? d.K : d.N;
  if (aCols > lda && aRows > 1) a.rangeError("lda smaller than the row length of A");
  if (bCols > ldb && bRows > 1) a.rangeError("ldb smaller than the row length of B");
  if (d.N > ldc && d.M > 1) a.rangeError("ldc smaller than N");
  const double aExt = d.K == 0 ? 0 : aOff + (batch - 1) * static_cast<double>(sA) + (aRows - 1) * lda + aCols;
  const double bExt = d.K == 0 ? 0 : bOff + (batch - 1) * static_cast<double>(sB) + (bRows - 1) * ldb + bCols;
  const double cExt = cOff + (batch - 1) * static_cast<double>(sC) + (d.M - 1) * static_cast<double>(ldc) + d.N;
  const float* A = a.f32(6, "A", aExt);
  const void* B = a.f32OrBf16(9, d.bBf16, "B", bExt);
  float* C = a.f32(14, "C", cExt);
  d.A = A + aOff;
  d.lda = lda;
  d.B = d.bBf16 ? static_cast<const void*>(static_cast<const uint16_t*>(B) + bOff)
                : static_cast<const void*>(static_cast<const float*>(B) + bOff);
  d.ldb = ldb;
  d.C = C + cOff;
  d.ldc = ldc;
  gemmBatched(d, batch, sA, sB, sC);
  return info.Env().Undefined();
}

// ---- elementwise -------------------------------------------------------------------------------

Napi::Value Unary(const Napi::CallbackInfo& info) {
  const Args a(info, "unary", 5);
  const UnaryOp op = unaryOp(a, a.str(0, "op"));
  const long n = a.count(3, "n");
  const float* x = a.f32(1, "x", n);
  float* out = a.f32(2, "out", n);
  unary(op, x, out, n, static_cast<float>(a.num(4, "param")));
  return info.Env().Undefined();
}

Napi::Value UnaryBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "unaryBackward", 7);
  const UnaryOp op = unaryOp(a, a.str(0, "op"));
  const long n = a.count(5, "n");
  const float* x = a.f32(1, "x", n);
  const float* y = a.f32(2, "y", n);
  const float* gy = a.f32(3, "gy", n);
  float* gx = a.f32(4, "gx", n);
  unaryBackward(op, x, y, gy, gx, n, static_cast<float>(a.num(6, "param")));
  return info.Env().Undefined();
}

Napi::Value Binary(const Napi::CallbackInfo& info) {
  const Args a(info, "binary", 7);
  const BinaryOp op = binaryOp(a, a.str(0, "op"));
  const int rank = a.rankOf(6, "shape");
  long shape[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  a.longs(6, "shape", rank, shape);
  a.longs(2, "aStrides", rank, sa);
  a.longs(4, "bStrides", rank, sb);
  double total = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] < 0) a.rangeError("negative dimension");
    total *= shape[d];
  }
  const Arr A = a.arr(1, "a"), B = a.arr(3, "b");
  const float* pa = a.f32(1, "a", 0);
  const float* pb = a.f32(3, "b", 0);
  float* out = a.f32(5, "out", total);
  if (total == 0) return info.Env().Undefined();
  a.checkStrided(A, 0, sa, shape, rank, "a");
  a.checkStrided(B, 0, sb, shape, rank, "b");
  binary(op, pa, sa, pb, sb, out, shape, rank);
  return info.Env().Undefined();
}

Napi::Value Where(const Napi::CallbackInfo& info) {
  const Args a(info, "where", 8);
  const int rank = a.rankOf(7, "shape");
  long shape[kMaxRank], sc[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  a.longs(7, "shape", rank, shape);
  a.longs(1, "condStrides", rank, sc);
  a.longs(3, "aStrides", rank, sa);
  a.longs(5, "bStrides", rank, sb);
  double total = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] < 0) a.rangeError("negative dimension");
    total *= shape[d];
  }
  const Arr C = a.arr(0, "cond"), A = a.arr(2, "a"), B = a.arr(4, "b");
  int size;
  const ElemType ct = elemType(a, C.type, &size);
  const float* pa = a.f32(2, "a", 0);
  const float* pb = a.f32(4, "b", 0);
  float* out = a.f32(6, "out", total);
  if (total == 0) return info.Env().Undefined();
  a.checkStrided(C, 0, sc, shape, rank, "cond");
  a.checkStrided(A, 0, sa, shape, rank, "a");
  a.checkStrided(B, 0, sb, shape, rank, "b");
  where(C.data, ct, sc, pa, sa, pb, sb, out, shape, rank);
  return info.Env().Undefined();
}

Napi::Value CopyStrided(const Napi::CallbackInfo& info) {
  const Args a(info, "copyStrided", 7);
  const int rank = a.rankOf(6, "shape");
  long shape[kMaxRank], ss[kMaxRank], ds[kMaxRank];
  a.longs(6, "shape", rank, shape);
  a.longs(2, "srcStrides", rank, ss);
  a.longs(5, "dstStrides", rank, ds);
  for (int d = 0; d < rank; d++)
    if (shape[d] < 0) a.rangeError("negative dimension");
  const Arr S = a.arr(0, "src"), D = a.arr(3, "dst");
  int sSize, dSize;
  elemType(a, S.type, &sSize);
  elemType(a, D.type, &dSize);
  if (sSize != dSize) a.typeError("src and dst must have the same element type");
  const long so = a.integer(1, "srcOffset"), dof = a.integer(4, "dstOffset");
  a.checkStrided(S, so, ss, shape, rank, "src");
  a.checkStrided(D, dof, ds, shape, rank, "dst");
  copyStrided(S.data, so, ss, D.data, dof, ds, shape, rank, sSize);
  return info.Env().Undefined();
}

// ---- reductions --------------------------------------------------------------------------------

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  const Args a(info, "reduce", 6);
  const std::string op = a.str(0, "op");
  ReduceOp r;
  if (op == "sum") r = ReduceOp::Sum;
  else if (op == "max") r = ReduceOp::Max;
  else if (op == "logsumexp") r = ReduceOp::LogSumExp;
  else a.typeError("unknown reduce op '" + op + "'");
  const long outer = a.count(3, "outer"), len = a.count(4, "len"), inner = a.count(5, "inner");
  const float* x = a.f32(1, "x", static_cast<double>(outer) * len * inner);
  float* out = a.f32(2, "out", static_cast<double>(outer) * inner);
  reduce(r, x, out, outer, len, inner);
  return info.Env().Undefined();
}

template <void (*F)(const float*, float*, long, long)>
Napi::Value RowsUnary(const Napi::CallbackInfo& info, const char* name) {
  const Args a(info, name, 4);
  const long rows = a.count(2, "rows"), cols = a.count(3, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, "x", n);
  float* out = a.f32(1, "out", n);
  if (n > 0) F(x, out, rows, cols);
  return info.Env().Undefined();
}

template <void (*F)(const float*, const float*, float*, long, long)>
Napi::Value RowsBackward(const Napi::CallbackInfo& info, const char* name) {
  const Args a(info, name, 5);
  const long rows = a.count(3, "rows"), cols = a.count(4, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* y = a.f32(0, "y", n);
  const float* gy = a.f32(1, "gy", n);
  float* gx = a.f32(2, "gx", n);
  if (n > 0) F(y, gy, gx, rows, cols);
  return info.Env().Undefined();
}

Napi::Value Softmax(const Napi::CallbackInfo& info) { return RowsUnary<softmax>(info, "softmax"); }
Napi::Value LogSoftmax(const Napi::CallbackInfo& info) { return RowsUnary<logSoftmax>(info, "logSoftmax"); }
Napi::Value SoftmaxBackward(const Napi::CallbackInfo& info) {
  return RowsBackward<softmaxBackward>(info, "softmaxBackward");
}
Napi::Value LogSoftmaxBackward(const Napi::CallbackInfo& info) {
  return RowsBackward<logSoftmaxBackward>(info, "logSoftmaxBackward");
}

// ---- normalisation -----------------------------------------------------------------------------

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const Args a(info, "rmsNorm", 7);
  const long rows = a.count(4, "rows"), cols = a.count(5, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, "x", n);
  const float* w = a.f32opt(1, "weight", cols);
  float* out = a.f32(2, "out", n);
  float* rstd = a.f32(3, "rstd", rows);
  if (n > 0) rmsNorm(x, w, out, rstd, rows, cols, a.num(6, "eps"));
  return info.Env().Undefined();
}

Napi::Value RmsNormBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "rmsNormBackward", 8);
  const long rows = a.count(6, "rows"), cols = a.count(7, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, "x", n);
  const float* w = a.f32opt(1, "weight", cols);
  const float* rstd = a.f32(2, "rstd", rows);
  const float* gy = a.f32(3, "gy", n);
  float* gx = a.f32(4, "gx", n);
  float* gw = a.f32opt(5, "gWeight", cols);
  if (n > 0) rmsNormBackward(x, w, rstd, gy, gx, gw, rows, cols);
  return info.Env().Undefined();
}

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  const Args a(info, "layerNorm", 9);
  const long rows = a.count(6, "rows"), cols = a.count(7, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, "x", n);
  const float* w = a.f32opt(1, "weight", cols);
  const float* b = a.f32opt(2, "bias", cols);
  float* out = a.f32(3, "out", n);
  float* mean = a.f32(4, "mean", rows);
  float* rstd = a.f32(5, "rstd", rows);
  if (n > 0) layerNorm(x, w, b, out, mean, rstd, rows, cols, a.num(8, "eps"));
  return info.Env().Undefined();
}

Napi::Value LayerNormBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "layerNormBackward", 10);
  const long rows = a.count(8, "rows"), cols = a.count(9, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, "x", n);
  const float* w = a.f32opt(1, "weight", cols);
  const float* mean = a.f32(2, "mean", rows);
  const float* rstd = a.f32(3, "rstd", rows);
  const float* gy = a.f32(4, "gy", n);
  float* gx = a.f32(5, "gx", n);
  float* gw = a.f32opt(6, "gWeight", cols);
  float* gb = a.f32opt(7, "gBias", cols);
  if (n > 0) layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, cols);
  return info.Env().Undefined();
}

// ---- transformer blocks ------------------------------------------------------------------------

Napi::Value Rope(const Napi::CallbackInfo& info) {
  const Args a(info, "rope", 10);
  const long B = a.count(5, "B"), T = a.count(6, "T"), H = a.count(7, "H"), D = a.count(8, "D");
  if (D % 2) a.rangeError("D must be even");
  const double n = static_cast<double>(B) * T * H * D;
  const float* x = a.f32(0, "x", n);
  float* out = a.f32(1, "out", n);
  const Arr C = a.arr(2, "cos");
  const float* cs = a.f32(2, "cos", 0);
  const float* sn = a.f32(3, "sin", static_cast<double>(C.length));
  const int32_t* pos = a.i32(4, "positions", static_cast<double>(B) * T);
  const long half = D / 2;
  if (n == 0) return info.Env().Undefined();
  const long maxPos = half > 0 ? static_cast<long>(C.length) / half : 0;
  for (long i = 0; i < B * T; i++)
    if (pos[i] < 0 || pos[i] >= maxPos)
      a.rangeError("position " + std::to_string(pos[i]) + " at " + std::to_string(i) + " outside the cos/sin table of " +
                   std::to_string(maxPos) + " positions");
  rope(x, out, cs, sn, pos, B, T, H, D, a.flag(9));
  return info.Env().Undefined();
}

AttnShape attnShape(const Args& a, size_t at) {
  AttnShape s{};
  s.B = a.count(at, "B");
  s.Tq = a.count(at + 1, "Tq");
  s.Tk = a.count(at + 2, "Tk");
  s.Hq = a.count(at + 3, "Hq");
  s.Hkv = a.count(at + 4, "Hkv");
  s.D = a.count(at + 5, "D");
  s.scale = static_cast<float>(a.num(at + 6, "scale"));
  s.causal = a.flag(at + 7);
  s.dropP = a.num(at + 8, "dropP");
  s.seed = toUint32(a.num(at + 9, "seed"));
  if (s.Hkv == 0 || s.Hq % s.Hkv != 0) a.rangeError("Hq must be a positive multiple of Hkv");
  if (!(s.dropP >= 0 && s.dropP <= 1)) a.rangeError("dropP must be in [0, 1]");
  return s;
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  const Args a(info, "attention", 15);
  const AttnShape s = attnShape(a, 5);
  const double nq = static_cast<double>(s.B) * s.Tq * s.Hq * s.D, nk = static_cast<double>(s.B) * s.Tk * s.Hkv * s.D;
  const float* q = a.f32(0, "q", nq);
  const float* k = a.f32(1, "k", nk);
  const float* v = a.f32(2, "v", nk);
  float* out = a.f32(3, "out", nq);
  float* lse = a.f32(4, "lse", static_cast<double>(s.B) * s.Hq * s.Tq);
  attention(q, k, v, out, lse, s);
  return info.Env().Undefined();
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "attentionBackward", 19);
  const AttnShape s = attnShape(a, 9);
  const double nq = static_cast<double>(s.B) * s.Tq * s.Hq * s.D, nk = static_cast<double>(s.B) * s.Tk * s.Hkv * s.D;
  const float* q = a.f32(0, "q", nq);
  const float* k = a.f32(1, "k", nk);
  const float* v = a.f32(2, "v", nk);
  const float* out = a.f32(3, "out", nq);
  const float* lse = a.f32(4, "lse", static_cast<double>(s.B) * s.Hq * s.Tq);
  const float* gOut = a.f32(5, "gOut", nq);
  float* gq = a.f32(6, "gq", nq);
  float* gk = a.f32(7, "gk", nk);
  float* gv = a.f32(8, "gv", nk);
  attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, s);
  return info.Env().Undefined();
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  const Args a(info, "swiglu", 4);
  const long n = a.count(3, "n");
  const float* g = a.f32(0, "gate", n);
  const float* u = a.f32(1, "up", n);
  float* out = a.f32(2, "out", n);
  swiglu(g, u, out, n);
  return info.Env().Undefined();
}

Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "swigluBackward", 6);
  const long n = a.count(5, "n");
  const float* g = a.f32(0, "gate", n);
  const float* u = a.f32(1, "up", n);
  const float* gy = a.f32(2, "gy", n);
  float* gg = a.f32(3, "gGate", n);
  float* gu = a.f32(4, "gUp", n);
  swigluBackward(g, u, gy, gg, gu, n);
  return info.Env().Undefined();
}

// ---- embeddings --------------------------------------------------------------------------------

Napi::Value GatherRows(const Napi::CallbackInfo& info) {
  const Args a(info, "gatherRows", 6);
  const bool bf16 = a.flag(1);
  const long n = a.count(4, "n"), dim = a.count(5, "dim");
  const Arr T = a.arr(0, "table");
  const void* table = a.f32OrBf16(0, bf16, "table", 0);
  const int32_t* ids = a.i32(2, "ids", n);
  float* out = a.f32(3, "out", static_cast<double>(n) * dim);
  const long rows = dim > 0 ? static_cast<long>(T.length) / dim : 0;
  for (long i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows)
      a.rangeError("id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " outside a table of " +
                   std::to_string(rows) + " rows");
  if (dim > 0) gatherRows(table, bf16, ids, out, n, dim);
  return info.Env().Undefined();
}

Napi::Value ScatterAddRows(const Napi::CallbackInfo& info) {
  const Args a(info, "scatterAddRows", 5);
  const long n = a.count(3, "n"), dim = a.count(4, "dim");
  const float* g = a.f32(0, "g", static_cast<double>(n) * dim);
  const int32_t* ids = a.i32(1, "ids", n);
  const Arr T = a.arr(2, "gTable");
  float* gt = a.f32(2, "gTable", 0);
  const long rows = dim > 0 ? static_cast<long>(T.length) / dim : 0;
  for (long i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows)
      a.rangeError("id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " outside a table of " +
                   std::to_string(rows) + " rows");
  if (dim > 0) scatterAddRows(g, ids, gt, n, dim);
  return info.Env().Undefined();
}

// ---- losses ------------------------------------------------------------------------------------

void checkLabels(const Args& a, const int32_t* labels, long n, long V, bool allowIgnore = true) {
  for (long i = 0; i < n; i++) {
    const int32_t l = labels[i];
    if ((l < 0 || l >= V) && !(allowIgnore && l == -100))
      a.rangeError("label " + std::to_string(l) + " at row " + std::to_string(i) + " outside [0, " + std::to_string(V) +
                   ") (use -100 to ignore a row)");
  }
}

float* outField(const Args& a, Napi::Object o, const char* name, long n) {
  Napi::Value v = o.Get(name);
  bool is = false;
  napi_is_typedarray(a.env(), v, &is);
  if (!is) a.typeError(std::string("outs.") + name + " must be a Float32Array");
  napi_typedarray_type t;
  size_t len;
  void* data;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(a.env(), v, &t, &len, &data, &ab, &off);
  if (std::string(name) == "argmax") {
    if (t != napi_int32_array) a.typeError("outs.argmax must be an Int32Array");
  } else if (t != napi_float32_array) {
    a.typeError(std::string("outs.") + name + " must be a Float32Array");
  }
  if (static_cast<long>(len) < n) a.rangeError(std::string("outs.") + name + " too short");
  return static_cast<float*>(data);
}

Napi::Value LinearCrossEntropy(const Napi::CallbackInfo& info) {
  const Args a(info, "linearCrossEntropy", 8);
  const bool bf16 = a.flag(2);
  const long N = a.count(4, "N"), d = a.count(5, "d"), V = a.count(6, "V");
  const float* h = a.f32(0, "h", static_cast<double>(N) * d);
  const void* w = a.f32OrBf16(1, bf16, "w", static_cast<double>(V) * d);
  const int32_t* labels = a.i32(3, "labels", N);
  if (!info[7].IsObject()) a.typeError("outs must be an object");
  Napi::Object o = info[7].As<Napi::Object>();
  LceOuts outs{};
  outs.lse = outField(a, o, "lse", N);
  outs.logp = outField(a, o, "logp", N);
  outs.entropy = outField(a, o, "entropy", N);
  outs.argmax = reinterpret_cast<int32_t*>(outField(a, o, "argmax", N));
  outs.top1 = outField(a, o, "top1", N);
  outs.top2 = outField(a, o, "top2", N);
  checkLabels(a, labels, N, V);
  linearCrossEntropy(h, w, bf16, labels, N, d, V, outs);
  return info.Env().Undefined();
}

Napi::Value LinearCrossEntropyBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "linearCrossEntropyBackward", 15);
  const bool bf16 = a.flag(2);
  const long N = a.count(12, "N"), d = a.count(13, "d"), V = a.count(14, "V");
  const float* h = a.f32(0, "h", static_cast<double>(N) * d);
  const void* w = a.f32OrBf16(1, bf16, "w", static_cast<double>(V) * d);
  const int32_t* labels = a.i32(3, "labels", N);
  const float* lse = a.f32(4, "lse", N);
  const float* ent = a.f32(5, "entropy", N);
  const int32_t* am = a.i32(6, "argmax", N);
  const float* cl = a.f32(7, "cLogp", N);
  const float* ce = a.f32(8, "cEnt", N);
  const float* ct = a.f32opt(9, "cTop1", N);
  float* gh = a.f32opt(10, "gh", static_cast<double>(N) * d);
  float* gw = a.f32opt(11, "gw", static_cast<double>(V) * d);
  checkLabels(a, labels, N, V);
  linearCrossEntropyBackward(h, w, bf16, labels, lse, ent, am, cl, ce, ct, gh, gw, N, d, V);
  return info.Env().Undefined();
}

Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  const Args a(info, "crossEntropy", 7);
  const long rows = a.count(4, "rows"), cols = a.count(5, "cols");
  const float* logits = a.f32(0, "logits", static_cast<double>(rows) * cols);
  const int32_t* labels = a.i32(1, "labels", rows);
  float* loss = a.f32(2, "loss", rows);
  float* lse = a.f32(3, "lse", rows);
  checkLabels(a, labels, rows, cols);
  if (cols > 0) crossEntropy(logits, labels, loss, lse, rows, cols, a.num(6, "smoothing"));
  return info.Env().Undefined();
}

Napi::Value CrossEntropyBackward(const Napi::CallbackInfo& info) {
  const Args a(info, "crossEntropyBackward", 8);
  const long rows = a.count(5, "rows"), cols = a.count(6, "cols");
  const double n = static_cast<double>(rows) * cols;
  const float* logits = a.f32(0, "logits", n);
  const int32_t* labels = a.i32(1, "labels", rows);
  const float* lse = a.f32(2, "lse", rows);
  const float* gLoss = a.f32(3, "gLoss", rows);
  float* gl = a.f32(4, "gLogits", n);
  checkLabels(a, labels, rows, cols);
  if (cols > 0) crossEntropyBackward(logits, labels, lse, gLoss, gl, rows, cols, a.num(7, "smoothing"));
  return info.Env().Undefined();
}

// ---- randomness, optimizer, conversions --------------------------------------------------------

Napi::Value DropoutImpl(const Napi::CallbackInfo& info, const char* name) {
  const Args a(info, name, 6);
  const long n = a.count(2, "n");
  const float* x = a.f32(0, "x", n);
  float* out = a.f32(1, "out", n);
  const double p = a.num(3, "p");
  if (!(p >= 0 && p <= 1)) a.rangeError("p must be in [0, 1]");
  const double off = a.num(5, "offset");
  if (!(off >= 0) || off != std::floor(off)) a.rangeError("offset must be a non-negative integer");
  dropout(x, out, n, p, toUint32(a.num(4, "seed")), static_cast<uint64_t>(off));
  return info.Env().Undefined();
}
Napi::Value Dropout(const Napi::CallbackInfo& info) { return DropoutImpl(info, "dropout"); }
Napi::Value DropoutBackward(const Napi::CallbackInfo& info) { return DropoutImpl(info, "dropoutBackward"); }

Napi::Value Adamw(const Napi::CallbackInfo& info) {
  const Args a(info, "adamw", 11);
  const long n = a.count(4, "n");
  float* p = a.f32(0, "p", n);
  const float* g = a.f32(1, "g", n);
  float* m = a.f32(2, "m", n);
  float* v = a.f32(3, "v", n);
  const double step = a.num(10, "step");
  if (!(step >= 1)) a.rangeError("step must be >= 1 (bias correction), got " + std::to_string(step));
  adamw(p, g, m, v, n, a.num(5, "lr"), a.num(6, "beta1"), a.num(7, "beta2"), a.num(8, "eps"),
        a.num(9, "weightDecay"), a.num(10, "step"));
  return info.Env().Undefined();
}

Napi::Value F32ToBf16(const Napi::CallbackInfo& info) {
  const Args a(info, "f32ToBf16", 3);
  const long n = a.count(2, "n");
  f32ToBf16(a.f32(0, "src", n), a.u16(1, "dst", n), n);
  return info.Env().Undefined();
}

Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  const Args a(info, "bf16ToF32", 3);
  const long n = a.count(2, "n");
  bf16ToF32(a.u16(0, "src", n), a.f32(1, "dst", n), n);
  return info.Env().Undefined();
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  const Args a(info, "sumSquares", 2);
  const long n = a.count(1, "n");
  return Napi::Number::New(info.Env(), sumSquares(a.f32(0, "x", n), n));
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("sgemm", Napi::Function::New(env, Sgemm, "sgemm"));
  exports.Set("unary", Napi::Function::New(env, Unary, "unary"));
  exports.Set("unaryBackward", Napi::Function::New(env, UnaryBackward, "unaryBackward"));
  exports.Set("binary", Napi::Function::New(env, Binary, "binary"));
  exports.Set("where", Napi::Function::New(env, Where, "where"));
  exports.Set("copyStrided", Napi::Function::New(env, CopyStrided, "copyStrided"));
  exports.Set("reduce", Napi::Function::New(env, Reduce, "reduce"));
  exports.Set("softmax", Napi::Function::New(env, Softmax, "softmax"));
  exports.Set("softmaxBackward", Napi::Function::New(env, SoftmaxBackward, "softmaxBackward"));
  exports.Set("logSoftmax", Napi::Function::New(env, LogSoftmax, "logSoftmax"));
  exports.Set("logSoftmaxBackward", Napi::Function::New(env, LogSoftmaxBackward, "logSoftmaxBackward"));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm, "rmsNorm"));
  exports.Set("rmsNormBackward", Napi::Function::New(env, RmsNormBackward, "rmsNormBackward"));
  exports.Set("layerNorm", Napi::Function::New(env, LayerNorm, "layerNorm"));
  exports.Set("layerNormBackward", Napi::Function::New(env, LayerNormBackward, "layerNormBackward"));
  exports.Set("rope", Napi::Function::New(env, Rope, "rope"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu, "swiglu"));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward, "swigluBackward"));
  exports.Set("gatherRows", Napi::Function::New(env, GatherRows, "gatherRows"));
  exports.Set("scatterAddRows", Napi::Function::New(env, ScatterAddRows, "scatterAddRows"));
  exports.Set("linearCrossEntropy", Napi::Function::New(env, LinearCrossEntropy, "linearCrossEntropy"));
  exports.Set("linearCrossEntropyBackward",
              Napi::Function::New(env, LinearCrossEntropyBackward, "linearCrossEntropyBackward"));
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy, "crossEntropy"));
  exports.Set("crossEntropyBackward", Napi::Function::New(env, CrossEntropyBackward, "crossEntropyBackward"));
  exports.Set("dropout", Napi::Function::New(env, Dropout, "dropout"));
  exports.Set("dropoutBackward", Napi::Function::New(env, DropoutBackward, "dropoutBackward"));
  exports.Set("adamw", Napi::Function::New(env, Adamw, "adamw"));
  exports.Set("f32ToBf16", Napi::Function::New(env, F32ToBf16, "f32ToBf16"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  return exports;
}

}  // namespace

NODE_API_MODULE(attune_native, InitModule)

// N-API surface: every kernel of src/backend/manifest.ts (the Kernels interface) under its own name
// with the same positional arguments, plus init(threads), threads(), cpuInfo() and
// kernelSignatures(). Kernel_<name> is the wrapper of kernel <name>; the kernel list, the argument
// counts, kinds and enum names come from manifest.gen.h (generated from the manifest), so a wrapper
// only checks sizes and values. Arrays are used in place (typed array data pointer, byte offset
// included); a bad call throws a TypeError / RangeError naming the kernel and the argument instead of
// touching memory it must not.
#include <napi.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "common.h"
#include "gemm.h"
#include "kernels.h"
#include "manifest.gen.h"
#include "qgemm.h"

namespace attune {
std::vector<std::string> cpuFeatures();
Napi::Value MapFile(const Napi::CallbackInfo& info);
}

using namespace attune;

namespace {

struct Arr {
  napi_typedarray_type type;
  size_t length;
  void* data;
};

// The arguments of one kernel call, checked against the kernel's manifest entry (manifest.gen.h) on
// construction: the count, each argument's kind (typed array type, number, integer, boolean, enum
// name, array of dims), null only where the manifest says optional. Each argument is read from N-API
// once; the wrappers then ask for sizes-checked pointers and parsed scalars by index.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const manifest::Kernel& k) : info_(info), env_(info.Env()), k_(k) {
    if (info.Length() != static_cast<size_t>(k.argc))
      throw Napi::TypeError::New(env_, std::string(k.name) + ": expected " + std::to_string(k.argc) +
                                           " arguments, got " + std::to_string(info.Length()));
    for (int i = 0; i < k.argc; i++) parse(i);
  }

  [[noreturn]] void typeError(const std::string& what) const {
    throw Napi::TypeError::New(env_, std::string(k_.name) + ": " + what);
  }
  [[noreturn]] void rangeError(const std::string& what) const {
    throw Napi::RangeError::New(env_, std::string(k_.name) + ": " + what);
  }

  const char* name(size_t i) const { return k_.args[i].name; }
  bool isNull(size_t i) const { return slots_[i].null; }
  const Arr& arr(size_t i) const { return slots_[i].arr; }

  void need(const Arr& a, double count, const char* name) const {
    if (count > static_cast<double>(a.length))
      rangeError(std::string(name) + " has " + std::to_string(a.length) + " elements, needs " +
                 std::to_string(static_cast<long long>(count)));
  }

  float* f32(size_t i, double count) const {
    need(slots_[i].arr, count, name(i));
    return static_cast<float*>(slots_[i].arr.data);
  }
  float* f32opt(size_t i, double count) const { return isNull(i) ? nullptr : f32(i, count); }
  int32_t* i32(size_t i, double count) const {
    need(slots_[i].arr, count, name(i));
    return static_cast<int32_t*>(slots_[i].arr.data);
  }
  uint16_t* u16(size_t i, double count) const {
    need(slots_[i].arr, count, name(i));
    return static_cast<uint16_t*>(slots_[i].arr.data);
  }
  // Float32Array, or Uint16Array when bf16 (the manifest's floatOrBf16).
  const void* f32OrBf16(size_t i, bool bf16, double count) const {
    const napi_typedarray_type want = bf16 ? napi_uint16_array : napi_float32_array;
    if (slots_[i].arr.type != want)
      typeError(std::string(name(i)) + (bf16 ? " must be a Uint16Array (its bf16 flag is true)"
                                             : " must be a Float32Array (its bf16 flag is false)"));
    need(slots_[i].arr, count, name(i));
    return slots_[i].arr.data;
  }

  double num(size_t i) const { return slots_[i].num; }
  long count(size_t i) const { return static_cast<long>(slots_[i].num); }
  long integer(size_t i) const { return static_cast<long>(slots_[i].num); }
  bool flag(size_t i) const { return slots_[i].flag; }
  int choice(size_t i) const { return slots_[i].choice; }
  napi_value value(size_t i) const { return info_[i]; }

  // A JS array (or typed array) of integers; entries beyond its length read as 0.
  void longs(size_t i, int rank, long* out) const {
    for (int d = 0; d < rank; d++) out[d] = 0;
    napi_value v = info_[i];
    if (!slots_[i].isTypedArray) {
      uint32_t len;
      napi_get_array_length(env_, v, &len);
      for (uint32_t d = 0; d < len && static_cast<int>(d) < rank; d++) {
        napi_value e;
        napi_get_element(env_, v, d, &e);
        double x;
        if (napi_get_value_double(env_, e, &x) != napi_ok || !std::isfinite(x) || x != std::floor(x))
          typeError(std::string(name(i)) + "[" + std::to_string(d) + "] must be an integer");
        out[d] = static_cast<long>(x);
      }
      return;
    }
    const Arr& a = slots_[i].arr;
    for (size_t d = 0; d < a.length && static_cast<int>(d) < rank; d++) {
      double x = 0;
      switch (a.type) {
        case napi_int32_array: x = static_cast<int32_t*>(a.data)[d]; break;
        case napi_uint32_array: x = static_cast<uint32_t*>(a.data)[d]; break;
        case napi_float64_array: x = static_cast<double*>(a.data)[d]; break;
        case napi_float32_array: x = static_cast<float*>(a.data)[d]; break;
        default: typeError(std::string(name(i)) + " must hold integers");
      }
      out[d] = static_cast<long>(x);
    }
  }

  int rankOf(size_t i) const {
    uint32_t len = 0;
    if (slots_[i].isTypedArray) len = static_cast<uint32_t>(slots_[i].arr.length);
    else napi_get_array_length(env_, info_[i], &len);
    if (len > static_cast<uint32_t>(kMaxRank)) rangeError(std::string(name(i)) + ": rank above " + std::to_string(kMaxRank));
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
  struct Slot {
    Arr arr{};
    double num = 0;
    int choice = -1;
    bool flag = false;
    bool null = false;
    bool isTypedArray = false;
  };

  bool typedArray(size_t i, Arr* a) const {
    napi_value ab;
    size_t off;
    return napi_get_typedarray_info(env_, info_[i], &a->type, &a->length, &a->data, &ab, &off) == napi_ok;
  }

  void typedArrayOf(size_t i, napi_typedarray_type want, const char* what) {
    Slot& s = slots_[i];
    if (!typedArray(i, &s.arr) || s.arr.type != want) {
      if (want == napi_float32_array && s.arr.type == napi_float64_array && typedArray(i, &s.arr))
        typeError(std::string(name(i)) +
                  " is a Float64Array: native kernels take Float32Array (f64 runs on the js backend)");
      typeError(std::string(name(i)) + " must be " + what);
    }
  }

  double number(size_t i) const {
    double d;
    if (napi_get_value_double(env_, info_[i], &d) != napi_ok) typeError(std::string(name(i)) + " must be a number");
    return d;
  }

  void parse(size_t i) {
    using manifest::Kind;
    const manifest::Arg& spec = k_.args[i];
    Slot& s = slots_[i];
    if (spec.optional) {
      napi_valuetype t;
      napi_typeof(env_, info_[i], &t);
      if (t == napi_null || t == napi_undefined) {
        s.null = true;
        return;
      }
    }
    switch (spec.kind) {
      case Kind::Float: typedArrayOf(i, napi_float32_array, "a Float32Array"); break;
      case Kind::I32: typedArrayOf(i, napi_int32_array, "an Int32Array"); break;
      case Kind::U16: typedArrayOf(i, napi_uint16_array, "a Uint16Array (bf16)"); break;
      case Kind::FloatOrBf16:
        if (!typedArray(i, &s.arr) || (s.arr.type != napi_float32_array && s.arr.type != napi_uint16_array))
          typeError(std::string(name(i)) + " must be a Float32Array or a Uint16Array (bf16)");
        break;
      case Kind::Numeric:
        if (!typedArray(i, &s.arr)) typeError(std::string(name(i)) + " must be a typed array");
        break;
      case Kind::Number: s.num = number(i); break;
      case Kind::Count:
        s.num = number(i);
        if (!(s.num >= 0) || s.num != std::floor(s.num) || s.num > 9007199254740991.0)
          rangeError(std::string(name(i)) + " must be a non-negative integer, got " + std::to_string(s.num));
        break;
      case Kind::Int:
        s.num = number(i);
        if (!std::isfinite(s.num) || s.num != std::floor(s.num)) rangeError(std::string(name(i)) + " must be an integer");
        break;
      case Kind::Boolean:
        if (napi_get_value_bool(env_, info_[i], &s.flag) != napi_ok) typeError(std::string(name(i)) + " must be a boolean");
        break;
      case Kind::Choice: {
        char buf[64];
        size_t len = 0;
        if (napi_get_value_string_utf8(env_, info_[i], buf, sizeof buf, &len) != napi_ok)
          typeError(std::string(name(i)) + " must be a string");
        for (int c = 0; c < spec.nChoices; c++)
          if (std::strcmp(buf, spec.choices[c]) == 0) s.choice = c;
        if (s.choice < 0) typeError("unknown " + std::string(name(i)) + " '" + buf + "'");
        break;
      }
      case Kind::Dims: {
        bool isArr = false;
        napi_is_array(env_, info_[i], &isArr);
        if (!isArr) {
          if (!typedArray(i, &s.arr)) typeError(std::string(name(i)) + " must be an array of integers");
          s.isTypedArray = true;
        }
        break;
      }
      case Kind::Object: {
        napi_valuetype t;
        napi_typeof(env_, info_[i], &t);
        if (t != napi_object) typeError(std::string(name(i)) + " must be an object");
        break;
      }
    }
  }

  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const manifest::Kernel& k_;
  Slot slots_[manifest::kMaxArgs];
};

// The manifest's enum names are in the order of the C++ enums (kernels.h); the conformance test
// checks each name runs the same op on native and js.
static_assert(sizeof(manifest::unary_op_choices) / sizeof(char*) == static_cast<int>(UnaryOp::MulScalar) + 1);
static_assert(sizeof(manifest::binary_op_choices) / sizeof(char*) == static_cast<int>(BinaryOp::Gt) + 1);
static_assert(sizeof(manifest::reduce_op_choices) / sizeof(char*) == static_cast<int>(ReduceOp::LogSumExp) + 1);

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
  double n = 0;
  if (info.Length() > 0 && !info[0].IsNull() && !info[0].IsUndefined()) {
    if (!info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "init: threads must be a number");
    n = info[0].As<Napi::Number>().DoubleValue();
    if (!(n >= 0 && n <= 4096) || n != std::floor(n))
      throw Napi::RangeError::New(info.Env(), "init: threads must be an integer in [0, 4096], got " + std::to_string(n));
  }
  poolInit(static_cast<int>(n));
  isa();
  return info.Env().Undefined();
}

Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), poolSize()); }

// {kernel: signature line} from manifest.gen.h, compared with src/backend/manifest.ts at load so a
// stale build is an error naming the kernel.
Napi::Value KernelSignatures(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  for (const manifest::Kernel* k : manifest::kAll) o.Set(k->name, k->signature);
  return o;
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("simd", isa()->name);
  const std::vector<std::string> f = cpuFeatures();
  Napi::Array arr = Napi::Array::New(env, f.size());
  for (size_t i = 0; i < f.size(); i++) arr.Set(static_cast<uint32_t>(i), f[i]);
  o.Set("features", arr);
  o.Set("gemmTile", Napi::String::New(env, std::to_string(isa()->mr) + "x" + std::to_string(isa()->nr)));
  o.Set("bf16Path", bf16PathName());
  const std::vector<std::string> paths = bf16Paths();
  Napi::Array pa = Napi::Array::New(env, paths.size());
  for (size_t i = 0; i < paths.size(); i++) pa.Set(static_cast<uint32_t>(i), paths[i]);
  o.Set("bf16Paths", pa);
  return o;
}

// ---- GEMM --------------------------------------------------------------------------------------

// sgemm and gemmBf16 share the argument list; bf16: inputs rounded to bf16, f32 accumulation.
Napi::Value GemmImpl(const Napi::CallbackInfo& info, const manifest::Kernel& k, bool bf16Compute) {
  const Args a(info, k);
  GemmDesc d{};
  d.transA = a.flag(0);
  d.transB = a.flag(1);
  d.M = a.count(2);
  d.N = a.count(3);
  d.K = a.count(4);
  d.alpha = static_cast<float>(a.num(5));
  const long aOff = a.count(7), lda = a.count(8);
  const long bOff = a.count(10), ldb = a.count(11);
  d.bBf16 = a.flag(12);
  d.beta = static_cast<float>(a.num(13));
  const long cOff = a.count(15), ldc = a.count(16);
  const long batch = a.count(17);
  const long sA = a.count(18), sB = a.count(19), sC = a.count(20);
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
  const float* A = a.f32(6, aExt);
  const void* B = a.f32OrBf16(9, d.bBf16, bExt);
  float* C = a.f32(14, cExt);
  d.A = A + aOff;
  d.lda = lda;
  d.B = d.bBf16 ? static_cast<const void*>(static_cast<const uint16_t*>(B) + bOff)
                : static_cast<const void*>(static_cast<const float*>(B) + bOff);
  d.ldb = ldb;
  d.C = C + cOff;
  d.ldc = ldc;
  if (bf16Compute)
    gemmBf16Batched(d, batch, sA, sB, sC);
  else
    gemmBatched(d, batch, sA, sB, sC);
  return info.Env().Undefined();
}
Napi::Value Kernel_sgemm(const Napi::CallbackInfo& info) { return GemmImpl(info, manifest::sgemm, false); }
Napi::Value Kernel_gemmBf16(const Napi::CallbackInfo& info) { return GemmImpl(info, manifest::gemmBf16, true); }

// bf16Path(name?): with a name ("amx" | "avx512bf16" | "fallback" | "auto") makes it gemmBf16's
// path (an Error when this CPU lacks it); returns the active path's name. A test and bench hook.
Napi::Value Bf16Path(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
    if (!info[0].IsString()) throw Napi::TypeError::New(env, "bf16Path: name must be a string");
    const std::string name = info[0].As<Napi::String>().Utf8Value();
    if (!setBf16Path(name.c_str())) {
      std::string avail;
      for (const std::string& p : bf16Paths()) avail += (avail.empty() ? "" : ", ") + p;
      throw Napi::Error::New(env, "bf16Path: '" + name + "' is not available on this CPU (expected auto or one of: " +
                                      avail + ")");
    }
  }
  return Napi::String::New(env, bf16PathName());
}

// ---- elementwise -------------------------------------------------------------------------------

Napi::Value Kernel_unary(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::unary);
  const UnaryOp op = static_cast<UnaryOp>(a.choice(0));
  const long n = a.count(3);
  const float* x = a.f32(1, n);
  float* out = a.f32(2, n);
  unary(op, x, out, n, static_cast<float>(a.num(4)));
  return info.Env().Undefined();
}

Napi::Value Kernel_unaryBackward(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::unaryBackward);
  const UnaryOp op = static_cast<UnaryOp>(a.choice(0));
  const long n = a.count(5);
  const float* x = a.f32(1, n);
  const float* y = a.f32(2, n);
  const float* gy = a.f32(3, n);
  float* gx = a.f32(4, n);
  unaryBackward(op, x, y, gy, gx, n, static_cast<float>(a.num(6)));
  return info.Env().Undefined();
}

Napi::Value Kernel_binary(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::binary);
  const BinaryOp op = static_cast<BinaryOp>(a.choice(0));
  const int rank = a.rankOf(6);
  long shape[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  a.longs(6, rank, shape);
  a.longs(2, rank, sa);
  a.longs(4, rank, sb);
  double total = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] < 0) a.rangeError("negative dimension");
    total *= shape[d];
  }
  const Arr A = a.arr(1), B = a.arr(3);
  const float* pa = a.f32(1, 0);
  const float* pb = a.f32(3, 0);
  float* out = a.f32(5, total);
  if (total == 0) return info.Env().Undefined();
  a.checkStrided(A, 0, sa, shape, rank, "a");
  a.checkStrided(B, 0, sb, shape, rank, "b");
  binary(op, pa, sa, pb, sb, out, shape, rank);
  return info.Env().Undefined();
}

Napi::Value Kernel_where(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::where);
  const int rank = a.rankOf(7);
  long shape[kMaxRank], sc[kMaxRank], sa[kMaxRank], sb[kMaxRank];
  a.longs(7, rank, shape);
  a.longs(1, rank, sc);
  a.longs(3, rank, sa);
  a.longs(5, rank, sb);
  double total = 1;
  for (int d = 0; d < rank; d++) {
    if (shape[d] < 0) a.rangeError("negative dimension");
    total *= shape[d];
  }
  const Arr C = a.arr(0), A = a.arr(2), B = a.arr(4);
  int size;
  const ElemType ct = elemType(a, C.type, &size);
  const float* pa = a.f32(2, 0);
  const float* pb = a.f32(4, 0);
  float* out = a.f32(6, total);
  if (total == 0) return info.Env().Undefined();
  a.checkStrided(C, 0, sc, shape, rank, "cond");
  a.checkStrided(A, 0, sa, shape, rank, "a");
  a.checkStrided(B, 0, sb, shape, rank, "b");
  where(C.data, ct, sc, pa, sa, pb, sb, out, shape, rank);
  return info.Env().Undefined();
}

Napi::Value Kernel_copyStrided(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::copyStrided);
  const int rank = a.rankOf(6);
  long shape[kMaxRank], ss[kMaxRank], ds[kMaxRank];
  a.longs(6, rank, shape);
  a.longs(2, rank, ss);
  a.longs(5, rank, ds);
  for (int d = 0; d < rank; d++)
    if (shape[d] < 0) a.rangeError("negative dimension");
  const Arr S = a.arr(0), D = a.arr(3);
  int sSize, dSize;
  elemType(a, S.type, &sSize);
  elemType(a, D.type, &dSize);
  if (sSize != dSize) a.typeError("src and dst must have the same element type");
  const long so = a.integer(1), dof = a.integer(4);
  a.checkStrided(S, so, ss, shape, rank, "src");
  a.checkStrided(D, dof, ds, shape, rank, "dst");
  copyStrided(S.data, so, ss, D.data, dof, ds, shape, rank, sSize);
  return info.Env().Undefined();
}

// ---- reductions --------------------------------------------------------------------------------

Napi::Value Kernel_reduce(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::reduce);
  const ReduceOp r = static_cast<ReduceOp>(a.choice(0));
  const long outer = a.count(3), len = a.count(4), inner = a.count(5);
  const float* x = a.f32(1, static_cast<double>(outer) * len * inner);
  float* out = a.f32(2, static_cast<double>(outer) * inner);
  reduce(r, x, out, outer, len, inner);
  return info.Env().Undefined();
}

template <void (*F)(const float*, float*, long, long)>
Napi::Value RowsUnary(const Napi::CallbackInfo& info, const manifest::Kernel& k) {
  const Args a(info, k);
  const long rows = a.count(2), cols = a.count(3);
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, n);
  float* out = a.f32(1, n);
  if (n > 0) F(x, out, rows, cols);
  return info.Env().Undefined();
}

template <void (*F)(const float*, const float*, float*, long, long)>
Napi::Value RowsBackward(const Napi::CallbackInfo& info, const manifest::Kernel& k) {
  const Args a(info, k);
  const long rows = a.count(3), cols = a.count(4);
  const double n = static_cast<double>(rows) * cols;
  const float* y = a.f32(0, n);
  const float* gy = a.f32(1, n);
  float* gx = a.f32(2, n);
  if (n > 0) F(y, gy, gx, rows, cols);
  return info.Env().Undefined();
}

Napi::Value Kernel_softmax(const Napi::CallbackInfo& info) { return RowsUnary<softmax>(info, manifest::softmax); }
Napi::Value Kernel_logSoftmax(const Napi::CallbackInfo& info) { return RowsUnary<logSoftmax>(info, manifest::logSoftmax); }
Napi::Value Kernel_softmaxBackward(const Napi::CallbackInfo& info) {
  return RowsBackward<softmaxBackward>(info, manifest::softmaxBackward);
}
Napi::Value Kernel_logSoftmaxBackward(const Napi::CallbackInfo& info) {
  return RowsBackward<logSoftmaxBackward>(info, manifest::logSoftmaxBackward);
}

// ---- normalisation -----------------------------------------------------------------------------

Napi::Value Kernel_rmsNorm(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::rmsNorm);
  const long rows = a.count(4), cols = a.count(5);
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, n);
  const float* w = a.f32opt(1, cols);
  float* out = a.f32(2, n);
  float* rstd = a.f32(3, rows);
  if (n > 0) rmsNorm(x, w, out, rstd, rows, cols, a.num(6));
  return info.Env().Undefined();
}

Napi::Value Kernel_rmsNormBackward(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::rmsNormBackward);
  const long rows = a.count(6), cols = a.count(7);
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, n);
  const float* w = a.f32opt(1, cols);
  const float* rstd = a.f32(2, rows);
  const float* gy = a.f32(3, n);
  float* gx = a.f32(4, n);
  float* gw = a.f32opt(5, cols);
  if (n > 0) rmsNormBackward(x, w, rstd, gy, gx, gw, rows, cols);
  return info.Env().Undefined();
}

Napi::Value Kernel_layerNorm(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::layerNorm);
  const long rows = a.count(6), cols = a.count(7);
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, n);
  const float* w = a.f32opt(1, cols);
  const float* b = a.f32opt(2, cols);
  float* out = a.f32(3, n);
  float* mean = a.f32(4, rows);
  float* rstd = a.f32(5, rows);
  if (n > 0) layerNorm(x, w, b, out, mean, rstd, rows, cols, a.num(8));
  return info.Env().Undefined();
}

Napi::Value Kernel_layerNormBackward(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::layerNormBackward);
  const long rows = a.count(8), cols = a.count(9);
  const double n = static_cast<double>(rows) * cols;
  const float* x = a.f32(0, n);
  const float* w = a.f32opt(1, cols);
  const float* mean = a.f32(2, rows);
  const float* rstd = a.f32(3, rows);
  const float* gy = a.f32(4, n);
  float* gx = a.f32(5, n);
  float* gw = a.f32opt(6, cols);
  float* gb = a.f32opt(7, cols);
  if (n > 0) layerNormBackward(x, w, mean, rstd, gy, gx, gw, gb, rows, cols);
  return info.Env().Undefined();
}

// ---- transformer blocks ------------------------------------------------------------------------

Napi::Value Kernel_rope(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::rope);
  const long B = a.count(5), T = a.count(6), H = a.count(7), D = a.count(8);
  if (D % 2) a.rangeError("D must be even");
  const double n = static_cast<double>(B) * T * H * D;
  const float* x = a.f32(0, n);
  float* out = a.f32(1, n);
  const Arr C = a.arr(2);
  const float* cs = a.f32(2, 0);
  const float* sn = a.f32(3, static_cast<double>(C.length));
  const int32_t* pos = a.i32(4, static_cast<double>(B) * T);
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
  s.B = a.count(at);
  s.Tq = a.count(at + 1);
  s.Tk = a.count(at + 2);
  s.Hq = a.count(at + 3);
  s.Hkv = a.count(at + 4);
  s.D = a.count(at + 5);
  s.scale = static_cast<float>(a.num(at + 6));
  s.causal = a.flag(at + 7);
  s.dropP = a.num(at + 8);
  s.seed = toUint32(a.num(at + 9));
  if (s.Hkv == 0 || s.Hq % s.Hkv != 0) a.rangeError("Hq must be a positive multiple of Hkv");
  if (!(s.dropP >= 0 && s.dropP <= 1)) a.rangeError("dropP must be in [0, 1]");
  return s;
}

// attention and attentionBf16 (and their backwards) share the argument lists (bf16: bf16-compute
// products).
Napi::Value AttnImpl(const Napi::CallbackInfo& info, const manifest::Kernel& kernel, bool bf16) {
  const Args a(info, kernel);
  AttnShape s = attnShape(a, 5);
  s.bf16 = bf16;
  const double nq = static_cast<double>(s.B) * s.Tq * s.Hq * s.D, nk = static_cast<double>(s.B) * s.Tk * s.Hkv * s.D;
  const float* q = a.f32(0, nq);
  const float* k = a.f32(1, nk);
  const float* v = a.f32(2, nk);
  float* out = a.f32(3, nq);
  float* lse = a.f32(4, static_cast<double>(s.B) * s.Hq * s.Tq);
  attention(q, k, v, out, lse, s);
  return info.Env().Undefined();
}

Napi::Value AttnBackwardImpl(const Napi::CallbackInfo& info, const manifest::Kernel& kernel, bool bf16) {
  const Args a(info, kernel);
  AttnShape s = attnShape(a, 9);
  s.bf16 = bf16;
  const double nq = static_cast<double>(s.B) * s.Tq * s.Hq * s.D, nk = static_cast<double>(s.B) * s.Tk * s.Hkv * s.D;
  const float* q = a.f32(0, nq);
  const float* k = a.f32(1, nk);
  const float* v = a.f32(2, nk);
  const float* out = a.f32(3, nq);
  const float* lse = a.f32(4, static_cast<double>(s.B) * s.Hq * s.Tq);
  const float* gOut = a.f32(5, nq);
  float* gq = a.f32(6, nq);
  float* gk = a.f32(7, nk);
  float* gv = a.f32(8, nk);
  attentionBackward(q, k, v, out, lse, gOut, gq, gk, gv, s);
  return info.Env().Undefined();
}

Napi::Value Kernel_attention(const Napi::CallbackInfo& info) { return AttnImpl(info, manifest::attention, false); }
Napi::Value Kernel_attentionBf16(const Napi::CallbackInfo& info) {
  return AttnImpl(info, manifest::attentionBf16, true);
}
Napi::Value Kernel_attentionBackward(const Napi::CallbackInfo& info) {
  return AttnBackwardImpl(info, manifest::attentionBackward, false);
}
Napi::Value Kernel_attentionBf16Backward(const Napi::CallbackInfo& info) {
  return AttnBackwardImpl(info, manifest::attentionBf16Backward, true);
}

Napi::Value Kernel_swiglu(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::swiglu);
  const long n = a.count(3);
  const float* g = a.f32(0, n);
  const float* u = a.f32(1, n);
  float* out = a.f32(2, n);
  swiglu(g, u, out, n);
  return info.Env().Undefined();
}

Napi::Value Kernel_swigluBackward(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::swigluBackward);
  const long n = a.count(5);
  const float* g = a.f32(0, n);
  const float* u = a.f32(1, n);
  const float* gy = a.f32(2, n);
  float* gg = a.f32(3, n);
  float* gu = a.f32(4, n);
  swigluBackward(g, u, gy, gg, gu, n);
  return info.Env().Undefined();
}

// ---- embeddings --------------------------------------------------------------------------------

Napi::Value Kernel_gatherRows(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::gatherRows);
  const bool bf16 = a.flag(1);
  const long n = a.count(4), dim = a.count(5);
  const Arr T = a.arr(0);
  const void* table = a.f32OrBf16(0, bf16, 0);
  const int32_t* ids = a.i32(2, n);
  float* out = a.f32(3, static_cast<double>(n) * dim);
  // dim 0 reads nothing: only negative ids are errors then (as on js).
  const long rows = dim > 0 ? static_cast<long>(T.length) / dim : std::numeric_limits<long>::max();
  for (long i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows)
      a.rangeError("id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " outside a table of " +
                   std::to_string(rows) + " rows");
  if (dim > 0) gatherRows(table, bf16, ids, out, n, dim);
  return info.Env().Undefined();
}

Napi::Value Kernel_scatterAddRows(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::scatterAddRows);
  const long n = a.count(3), dim = a.count(4);
  const float* g = a.f32(0, static_cast<double>(n) * dim);
  const int32_t* ids = a.i32(1, n);
  const Arr T = a.arr(2);
  float* gt = a.f32(2, 0);
  // dim 0 reads nothing: only negative ids are errors then (as on js).
  const long rows = dim > 0 ? static_cast<long>(T.length) / dim : std::numeric_limits<long>::max();
  for (long i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= rows)
      a.rangeError("id " + std::to_string(ids[i]) + " at " + std::to_string(i) + " outside a table of " +
                   std::to_string(rows) + " rows");
  if (dim > 0) scatterAddRows(g, ids, gt, n, dim);
  return info.Env().Undefined();
}

Napi::Value Kernel_fwht(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::fwht);
  const long rows = a.count(1), n = a.count(2);
  if (n > 1 && (n & (n - 1)) != 0) a.rangeError("n " + std::to_string(n) + " must be a power of two");
  float* x = a.f32(0, static_cast<double>(rows) * static_cast<double>(n));
  if (rows > 0 && n > 1) fwht(x, rows, n);
  return info.Env().Undefined();
}

Napi::Value Kernel_rowPairDots(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::rowPairDots);
  const long k = a.count(5), n = a.count(6);
  const Arr A = a.arr(0);
  const Arr B = a.arr(1);
  const float* x = a.f32(0, 0);
  const float* y = a.f32(1, 0);
  const int32_t* aRows = a.i32(2, k);
  const int32_t* bRows = a.i32(3, k);
  float* out = a.f32(4, static_cast<double>(k));
  // n 0 reads nothing: only negative rows are errors then (as on js).
  const long aCount = n > 0 ? static_cast<long>(A.length) / n : std::numeric_limits<long>::max();
  const long bCount = n > 0 ? static_cast<long>(B.length) / n : std::numeric_limits<long>::max();
  for (long j = 0; j < k; j++)
    if (aRows[j] < 0 || aRows[j] >= aCount || bRows[j] < 0 || bRows[j] >= bCount)
      a.rangeError("pair " + std::to_string(j) + " (" + std::to_string(aRows[j]) + ", " + std::to_string(bRows[j]) +
                   ") outside a of " + std::to_string(aCount) + " rows / b of " + std::to_string(bCount) + " rows");
  if (k > 0) rowPairDots(x, y, aRows, bRows, out, k, n);
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

// linearCrossEntropy and linearCrossEntropyBf16 share the argument list (bf16: bf16-compute logits).
Napi::Value LceImpl(const Napi::CallbackInfo& info, const manifest::Kernel& kernel, bool bf16Compute) {
  const Args a(info, kernel);
  const bool bf16 = a.flag(2);
  const long N = a.count(4), d = a.count(5), V = a.count(6);
  const float* h = a.f32(0, static_cast<double>(N) * d);
  const void* w = a.f32OrBf16(1, bf16, static_cast<double>(V) * d);
  const int32_t* labels = a.i32(3, N);
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
  linearCrossEntropy(h, w, bf16, labels, N, d, V, outs, bf16Compute);
  return info.Env().Undefined();
}

Napi::Value Kernel_linearCrossEntropy(const Napi::CallbackInfo& info) {
  return LceImpl(info, manifest::linearCrossEntropy, false);
}
Napi::Value Kernel_linearCrossEntropyBf16(const Napi::CallbackInfo& info) {
  return LceImpl(info, manifest::linearCrossEntropyBf16, true);
}

Napi::Value LceBackwardImpl(const Napi::CallbackInfo& info, const manifest::Kernel& kernel, bool bf16Compute) {
  const Args a(info, kernel);
  const bool bf16 = a.flag(2);
  const long N = a.count(12), d = a.count(13), V = a.count(14);
  const float* h = a.f32(0, static_cast<double>(N) * d);
  const void* w = a.f32OrBf16(1, bf16, static_cast<double>(V) * d);
  const int32_t* labels = a.i32(3, N);
  const float* lse = a.f32(4, N);
  const float* ent = a.f32(5, N);
  const int32_t* am = a.i32(6, N);
  const float* cl = a.f32(7, N);
  const float* ce = a.f32(8, N);
  const float* ct = a.f32opt(9, N);
  float* gh = a.f32opt(10, static_cast<double>(N) * d);
  float* gw = a.f32opt(11, static_cast<double>(V) * d);
  checkLabels(a, labels, N, V);
  linearCrossEntropyBackward(h, w, bf16, labels, lse, ent, am, cl, ce, ct, gh, gw, N, d, V, bf16Compute);
  return info.Env().Undefined();
}

Napi::Value Kernel_linearCrossEntropyBackward(const Napi::CallbackInfo& info) {
  return LceBackwardImpl(info, manifest::linearCrossEntropyBackward, false);
}
Napi::Value Kernel_linearCrossEntropyBf16Backward(const Napi::CallbackInfo& info) {
  return LceBackwardImpl(info, manifest::linearCrossEntropyBf16Backward, true);
}

Napi::Value Kernel_crossEntropy(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::crossEntropy);
  const long rows = a.count(4), cols = a.count(5);
  const float* logits = a.f32(0, static_cast<double>(rows) * cols);
  const int32_t* labels = a.i32(1, rows);
  float* loss = a.f32(2, rows);
  float* lse = a.f32(3, rows);
  checkLabels(a, labels, rows, cols);
  if (cols > 0) crossEntropy(logits, labels, loss, lse, rows, cols, a.num(6));
  return info.Env().Undefined();
}

Napi::Value Kernel_crossEntropyBackward(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::crossEntropyBackward);
  const long rows = a.count(5), cols = a.count(6);
  const double n = static_cast<double>(rows) * cols;
  const float* logits = a.f32(0, n);
  const int32_t* labels = a.i32(1, rows);
  const float* lse = a.f32(2, rows);
  const float* gLoss = a.f32(3, rows);
  float* gl = a.f32(4, n);
  checkLabels(a, labels, rows, cols);
  if (cols > 0) crossEntropyBackward(logits, labels, lse, gLoss, gl, rows, cols, a.num(7));
  return info.Env().Undefined();
}

// ---- randomness, optimizer, conversions --------------------------------------------------------

Napi::Value DropoutImpl(const Napi::CallbackInfo& info, const manifest::Kernel& k) {
  const Args a(info, k);
  const long n = a.count(2);
  const float* x = a.f32(0, n);
  float* out = a.f32(1, n);
  const double p = a.num(3);
  if (!(p >= 0 && p <= 1)) a.rangeError("p must be in [0, 1]");
  const double off = a.num(5);
  if (!(off >= 0) || off != std::floor(off)) a.rangeError("offset must be a non-negative integer");
  dropout(x, out, n, p, toUint32(a.num(4)), static_cast<uint64_t>(off));
  return info.Env().Undefined();
}
Napi::Value Kernel_dropout(const Napi::CallbackInfo& info) { return DropoutImpl(info, manifest::dropout); }
Napi::Value Kernel_dropoutBackward(const Napi::CallbackInfo& info) { return DropoutImpl(info, manifest::dropoutBackward); }

Napi::Value Kernel_adamw(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::adamw);
  const long n = a.count(4);
  float* p = a.f32(0, n);
  const float* g = a.f32(1, n);
  float* m = a.f32(2, n);
  float* v = a.f32(3, n);
  const double step = a.num(10);
  if (!(step >= 1)) a.rangeError("step must be >= 1 (bias correction), got " + std::to_string(step));
  adamw(p, g, m, v, n, a.num(5), a.num(6), a.num(7), a.num(8),
        a.num(9), a.num(10));
  return info.Env().Undefined();
}

Napi::Value Kernel_f32ToBf16(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::f32ToBf16);
  const long n = a.count(2);
  f32ToBf16(a.f32(0, n), a.u16(1, n), n);
  return info.Env().Undefined();
}

Napi::Value Kernel_bf16ToF32(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::bf16ToF32);
  const long n = a.count(2);
  bf16ToF32(a.u16(0, n), a.f32(1, n), n);
  return info.Env().Undefined();
}

Napi::Value Kernel_sumSquares(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::sumSquares);
  const long n = a.count(1);
  return Napi::Number::New(info.Env(), sumSquares(a.f32(0, n), n));
}

// ---- block-quantised weights (qgemm.cpp) -------------------------------------------------------

static_assert(sizeof(manifest::quantize_format_choices) / sizeof(char*) == static_cast<int>(QuantFormat::Nf4) + 1);

// The codes of n quantised elements: bytes carried by a Uint16Array (little-endian).
const uint8_t* quantCodes(const Args& a, size_t i, QuantFormat f, double n) {
  const double bytes = f == QuantFormat::Int8 ? n : std::ceil(n / 2);
  return reinterpret_cast<const uint8_t*>(a.u16(i, std::ceil(bytes / 2)));
}

Napi::Value Kernel_quantize(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::quantize);
  const QuantFormat f = static_cast<QuantFormat>(a.choice(0));
  const bool bf16 = a.flag(2);
  const long n = a.count(3);
  const void* src = a.f32OrBf16(1, bf16, n);
  uint8_t* codes = const_cast<uint8_t*>(quantCodes(a, 4, f, n));
  float* scales = a.f32(5, std::ceil(static_cast<double>(n) / kQuantBlock));
  return Napi::Number::New(info.Env(), static_cast<double>(quantizeBlocks(f, src, bf16, n, codes, scales)));
}

Napi::Value Kernel_dequantize(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::dequantize);
  const QuantFormat f = static_cast<QuantFormat>(a.choice(0));
  const long offset = a.count(3), n = a.count(4);
  const double end = static_cast<double>(offset) + n;
  const uint8_t* codes = quantCodes(a, 1, f, n == 0 ? 0 : end);
  const float* scales = a.f32(2, n == 0 ? 0 : std::ceil(end / kQuantBlock));
  dequantizeRange(f, codes, scales, offset, n, a.f32(5, n));
  return info.Env().Undefined();
}

Napi::Value Kernel_qgemm(const Napi::CallbackInfo& info) {
  const Args a(info, manifest::qgemm);
  const bool transW = a.flag(0);
  const long M = a.count(1), N = a.count(2), K = a.count(3);
  const long lda = a.count(5), ldc = a.count(11);
  const QuantFormat f = static_cast<QuantFormat>(a.choice(6));
  if (M == 0 || N == 0) return info.Env().Undefined();
  if (K > lda && M > 1) a.rangeError("lda smaller than K");
  if (N > ldc && M > 1) a.rangeError("ldc smaller than N");
  const double w = static_cast<double>(N) * K;
  const float* A = a.f32(4, K == 0 ? 0 : (M - 1) * static_cast<double>(lda) + K);
  const uint8_t* codes = quantCodes(a, 7, f, w);
  const float* scales = a.f32(8, std::ceil(w / kQuantBlock));
  float* C = a.f32(10, (M - 1) * static_cast<double>(ldc) + N);
  qgemm(transW, M, N, K, A, lda, f, codes, scales, static_cast<float>(a.num(9)), C, ldc);
  return info.Env().Undefined();
}

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("init", Napi::Function::New(env, Init, "init"));
  exports.Set("threads", Napi::Function::New(env, Threads, "threads"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("kernelSignatures", Napi::Function::New(env, KernelSignatures, "kernelSignatures"));
  exports.Set("bf16Path", Napi::Function::New(env, Bf16Path, "bf16Path"));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
#define ATTUNE_REGISTER(name) exports.Set(#name, Napi::Function::New(env, Kernel_##name, #name));
  ATTUNE_MANIFEST_KERNELS(ATTUNE_REGISTER)
#undef ATTUNE_REGISTER
  return exports;
}

}  // namespace

NODE_API_MODULE(attune_native, InitModule)

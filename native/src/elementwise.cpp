// Elementwise, broadcast, copy, conversion, dropout, optimizer and embedding kernels.
#include <algorithm>
#include <cmath>

#include "common.h"
#include "kernels.h"

namespace attune {
namespace {

constexpr long kGrain = 1 << 15;  // elements per thread before splitting pays off

// ---- strided N-d iteration ----------------------------------------------------------------------

template <int K>
struct Nd {
  int rank = 0;
  long shape[kMaxRank];
  long st[K][kMaxRank];
  long total = 1;

  Nd(const long* shp, int r, const long* const* strides) {
    // Drop size-1 dims, then merge dims that are contiguous for every operand.
    for (int d = 0; d < r; d++) {
      total *= shp[d];
      if (shp[d] == 1) continue;
      shape[rank] = shp[d];
      for (int k = 0; k < K; k++) st[k][rank] = strides[k][d];
      rank++;
    }
    if (total == 0) return;
    int w = 0;
    for (int d = 0; d < rank; d++) {
      if (w > 0) {
        bool merge = true;
        for (int k = 0; k < K; k++)
          if (st[k][w - 1] != st[k][d] * shape[d]) merge = false;
        if (merge) {
          shape[w - 1] *= shape[d];
          for (int k = 0; k < K; k++) st[k][w - 1] = st[k][d];
          continue;
        }
      }
      shape[w] = shape[d];
      for (int k = 0; k < K; k++) st[k][w] = st[k][d];
      w++;
    }
    rank = w;
    if (rank == 0) {
      rank = 1;
      shape[0] = 1;
      for (int k = 0; k < K; k++) st[k][0] = 0;
    }
  }

  // f(off[K], count, innerStride[K]) for the inner runs covering linear indices [begin, end).
  template <class F>
  void runs(long begin, long end, F&& f) const {
    if (begin >= end) return;
    long idx[kMaxRank];
    long off[K];
    for (int k = 0; k < K; k++) off[k] = 0;
    long rem = begin;
    for (int d = rank - 1; d >= 0; d--) {
      idx[d] = rem % shape[d];
      rem /= shape[d];
      for (int k = 0; k < K; k++) off[k] += idx[d] * st[k][d];
    }
    const int last = rank - 1;
    long inner[K];
    for (int k = 0; k < K; k++) inner[k] = st[k][last];
    long lin = begin;
    while (lin < end) {
      const long cnt = std::min(shape[last] - idx[last], end - lin);
      f(off, cnt, inner);
      lin += cnt;
      if (lin >= end) break;
      for (int k = 0; k < K; k++) off[k] += cnt * inner[k];
      idx[last] += cnt;
      int d = last;
      while (d >= 0 && idx[d] == shape[d]) {
        for (int k = 0; k < K; k++) off[k] -= shape[d] * st[k][d];
        idx[d] = 0;
        d--;
        if (d >= 0) {
          idx[d]++;
          for (int k = 0; k < K; k++) off[k] += st[k][d];
        }
      }
    }
  }
};

inline float sigmoidf(float x) {
  if (x >= 0) return 1.0f / (1.0f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.0f + e);
}

inline double erfRef(double x) {
  // Same approximation as the js backend (Numerical Recipes erfc, |err| < 1.2e-7).
  const double z = std::fabs(x);
  const double t = 1 / (1 + 0.5 * z);
  const double r =
      t * std::exp(-z * z - 1.26551223 +
                   t * (1.00002368 +
                        t * (0.37409196 +
                             t * (0.09678418 +
                                  t * (-0.18628806 +
                                       t * (0.27886807 +
                                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

constexpr double kSqrt2OverPi = 0.7978845608028654;

template <class F>
void mapChunks(long n, F&& f) {
  parallelFor(n, kGrain, [&](long b, long e) { f(b, e); });
}

template <class Op>
void binaryRun(const float* a, long sa, const float* b, long sb, float* o, long n, Op op) {
  if (sa == 1 && sb == 1) {
    for (long i = 0; i < n; i++) o[i] = op(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = b[0];
    for (long i = 0; i < n; i++) o[i] = op(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = a[0];
    for (long i = 0; i < n; i++) o[i] = op(av, b[i]);
  } else {
    for (long i = 0; i < n; i++) o[i] = op(a[i * sa], b[i * sb]);
  }
}

template <class Op>
void binaryImpl(const float* a, const long* aStrides, const float* b, const long* bStrides, float* out,
                const long* shape, int rank, Op op) {
  long outStrides[kMaxRank];
  long s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    outStrides[d] = s;
    s *= shape[d];
  }
  const long* strides[3] = {aStrides, bStrides, outStrides};
  const Nd<3> nd(shape, rank, strides);
  if (nd.total == 0) return;
  parallelFor(nd.total, kGrain, [&](long b0, long e0) {
    nd.runs(b0, e0, [&](const long* off, long cnt, const long* in) {
      binaryRun(a + off[0], in[0], b + off[1], in[1], out + off[2], cnt, op);
    });
  });
}

template <typename C>
void whereImpl(const C* cond, const long* cStrides, const float* a, const long* aStrides, const float* b,
               const long* bStrides, float* out, const long* shape, int rank) {
  long outStrides[kMaxRank];
  long s = 1;
  for (int d = rank - 1; d >= 0; d--) {
    outStrides[d] = s;
    s *= shape[d];
  }
  const long* strides[4] = {cStrides, aStrides, bStrides, outStrides};
  const Nd<4> nd(shape, rank, strides);
  if (nd.total == 0) return;
  parallelFor(nd.total, kGrain, [&](long b0, long e0) {
    nd.runs(b0, e0, [&](const long* off, long cnt, const long* in) {
      const C* c = cond + off[0];
      const float* pa = a + off[1];
      const float* pb = b + off[2];
      float* o = out + off[3];
      for (long i = 0; i < cnt; i++) o[i] = c[i * in[0]] != 0 ? pa[i * in[1]] : pb[i * in[2]];
    });
  });
}

// A 2-D copy where one side is contiguous along one dim and the other along the other (a matrix
// transpose): copied in kTile x kTile tiles, so that each cache line of both sides is touched once per
// tile instead of once per element on the strided side. A pure copy: the result is the same.
constexpr long kTile = 32;

template <typename T>
void transposeTiles(const T* src, const long* ss, T* dst, const long* ds, const long* shape) {
  const long rows = shape[0], cols = shape[1];
  const long rowTiles = (rows + kTile - 1) / kTile;
  parallelFor(rowTiles, std::max<long>(1, kGrain / (kTile * cols)), [&](long tb, long te) {
    for (long ti = tb; ti < te; ti++) {
      const long i0 = ti * kTile, i1 = std::min(rows, i0 + kTile);
      for (long j0 = 0; j0 < cols; j0 += kTile) {
        const long j1 = std::min(cols, j0 + kTile);
        for (long i = i0; i < i1; i++)
          for (long j = j0; j < j1; j++) dst[i * ds[0] + j * ds[1]] = src[i * ss[0] + j * ss[1]];
      }
    }
  });
}

template <typename T>
void copyImpl(const T* src, const long* srcStrides, T* dst, const long* dstStrides, const long* shape, int rank) {
  const long* strides[2] = {srcStrides, dstStrides};
  const Nd<2> nd(shape, rank, strides);
  if (nd.total == 0) return;
  if (nd.rank == 2 && nd.shape[0] >= kTile && nd.shape[1] >= kTile &&
      ((nd.st[0][0] == 1 && nd.st[1][1] == 1) || (nd.st[0][1] == 1 && nd.st[1][0] == 1)) &&
      !(nd.st[0][1] == 1 && nd.st[1][1] == 1))
    return transposeTiles(src, nd.st[0], dst, nd.st[1], nd.shape);
  parallelFor(nd.total, kGrain, [&](long b0, long e0) {
    nd.runs(b0, e0, [&](const long* off, long cnt, const long* in) {
      const T* s = src + off[0];
      T* d = dst + off[1];
      if (in[0] == 1 && in[1] == 1)
        std::memmove(d, s, sizeof(T) * cnt);
      else
        for (long i = 0; i < cnt; i++) d[i * in[1]] = s[i * in[0]];
    });
  });
}

}  // namespace

void unary(UnaryOp op, const float* x, float* out, long n, float param) {
  const IsaOps* ops = isa();
  mapChunks(n, [&](long b, long e) {
    const float* xs = x + b;
    float* o = out + b;
    const long m = e - b;
    switch (op) {
      case UnaryOp::Neg:
        for (long i = 0; i < m; i++) o[i] = -xs[i];
        break;
      case UnaryOp::Exp:
        ops->expArr(xs, o, m);
        break;
      case UnaryOp::Log:
        for (long i = 0; i < m; i++) o[i] = std::log(xs[i]);
        break;
      case UnaryOp::Sqrt:
        for (long i = 0; i < m; i++) o[i] = std::sqrt(xs[i]);
        break;
      case UnaryOp::Rsqrt:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(1.0 / std::sqrt(static_cast<double>(xs[i])));
        break;
      case UnaryOp::Abs:
        for (long i = 0; i < m; i++) o[i] = std::fabs(xs[i]);
        break;
      case UnaryOp::Tanh:
        for (long i = 0; i < m; i++) o[i] = std::tanh(xs[i]);
        break;
      case UnaryOp::Sigmoid:
        ops->sigmoidArr(xs, o, m);
        break;
      case UnaryOp::Relu:
        for (long i = 0; i < m; i++) o[i] = xs[i] > 0 ? xs[i] : 0.0f;
        break;
      case UnaryOp::Silu:
        ops->siluArr(xs, o, m);
        break;
      case UnaryOp::GeluTanh:
        for (long i = 0; i < m; i++) {
          const float v = xs[i];
          o[i] = 0.5f * v * (1.0f + std::tanh(static_cast<float>(kSqrt2OverPi) * (v + 0.044715f * v * v * v)));
        }
        break;
      case UnaryOp::GeluErf:
        for (long i = 0; i < m; i++) {
          const double v = xs[i];
          o[i] = static_cast<float>(0.5 * v * (1 + erfRef(v / 1.4142135623730951)));
        }
        break;
      case UnaryOp::Softplus:
        for (long i = 0; i < m; i++) o[i] = xs[i] > 20.0f ? xs[i] : std::log1p(std::exp(xs[i]));
        break;
      case UnaryOp::Square:
        for (long i = 0; i < m; i++) o[i] = xs[i] * xs[i];
        break;
      case UnaryOp::Pow: {
        const double pp = param;
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(std::pow(static_cast<double>(xs[i]), pp));
        break;
      }
      case UnaryOp::AddScalar:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(static_cast<double>(xs[i]) + param);
        break;
      case UnaryOp::MulScalar:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(static_cast<double>(xs[i]) * param);
        break;
    }
  });
}

void unaryBackward(UnaryOp op, const float* x, const float* y, const float* gy, float* gx, long n, float param) {
  const IsaOps* ops = isa();
  mapChunks(n, [&](long b, long e) {
    const float* xs = x + b;
    const float* ys = y + b;
    const float* g = gy + b;
    float* o = gx + b;
    const long m = e - b;
    switch (op) {
      case UnaryOp::Neg:
        for (long i = 0; i < m; i++) o[i] = -g[i];
        break;
      case UnaryOp::Exp:
        for (long i = 0; i < m; i++) o[i] = g[i] * ys[i];
        break;
      case UnaryOp::Log:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(g[i] * (1.0 / xs[i]));
        break;
      case UnaryOp::Sqrt:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(g[i] * (0.5 / ys[i]));
        break;
      case UnaryOp::Rsqrt:
        for (long i = 0; i < m; i++) {
          const double yy = ys[i];
          o[i] = static_cast<float>(g[i] * (-0.5 * yy * yy * yy));
        }
        break;
      case UnaryOp::Abs:
        for (long i = 0; i < m; i++) o[i] = xs[i] > 0 ? g[i] : xs[i] < 0 ? -g[i] : 0.0f * g[i];
        break;
      case UnaryOp::Tanh:
        for (long i = 0; i < m; i++) o[i] = g[i] * (1.0f - ys[i] * ys[i]);
        break;
      case UnaryOp::Sigmoid:
        for (long i = 0; i < m; i++) o[i] = g[i] * (ys[i] * (1.0f - ys[i]));
        break;
      case UnaryOp::Relu:
        for (long i = 0; i < m; i++) o[i] = xs[i] > 0 ? g[i] : 0.0f * g[i];
        break;
      case UnaryOp::Silu:
        ops->siluBwd(xs, g, o, m);
        break;
      case UnaryOp::GeluTanh:
        for (long i = 0; i < m; i++) {
          const double v = xs[i];
          const double u = kSqrt2OverPi * (v + 0.044715 * v * v * v);
          const double t = std::tanh(u);
          const double dd = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * kSqrt2OverPi * (1 + 3 * 0.044715 * v * v);
          o[i] = static_cast<float>(g[i] * dd);
        }
        break;
      case UnaryOp::GeluErf:
        for (long i = 0; i < m; i++) {
          const double v = xs[i];
          const double dd = 0.5 * (1 + erfRef(v / 1.4142135623730951)) + (v * std::exp(-0.5 * v * v)) / 2.5066282746310002;
          o[i] = static_cast<float>(g[i] * dd);
        }
        break;
      case UnaryOp::Softplus:
        for (long i = 0; i < m; i++) o[i] = g[i] * sigmoidf(xs[i]);
        break;
      case UnaryOp::Square:
        for (long i = 0; i < m; i++) o[i] = g[i] * (2.0f * xs[i]);
        break;
      case UnaryOp::Pow: {
        const double pp = param;
        for (long i = 0; i < m; i++)
          o[i] = pp == 0 ? 0.0f * g[i] : static_cast<float>(g[i] * (pp * std::pow(static_cast<double>(xs[i]), pp - 1)));
        break;
      }
      case UnaryOp::AddScalar:
        for (long i = 0; i < m; i++) o[i] = g[i];
        break;
      case UnaryOp::MulScalar:
        for (long i = 0; i < m; i++) o[i] = static_cast<float>(g[i] * static_cast<double>(param));
        break;
    }
  });
}

void binary(BinaryOp op, const float* a, const long* aStrides, const float* b, const long* bStrides, float* out,
            const long* shape, int rank) {
  switch (op) {
    case BinaryOp::Add:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x + y; });
    case BinaryOp::Sub:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x - y; });
    case BinaryOp::Mul:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x * y; });
    case BinaryOp::Div:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x / y; });
    case BinaryOp::Max:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x > y ? x : y; });
    case BinaryOp::Min:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank, [](float x, float y) { return x < y ? x : y; });
    case BinaryOp::Eq:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank,
                        [](float x, float y) { return x == y ? 1.0f : 0.0f; });
    case BinaryOp::Gt:
      return binaryImpl(a, aStrides, b, bStrides, out, shape, rank,
                        [](float x, float y) { return x > y ? 1.0f : 0.0f; });
  }
}

void where(const void* cond, ElemType condType, const long* cStrides, const float* a, const long* aStrides,
           const float* b, const long* bStrides, float* out, const long* shape, int rank) {
  switch (condType) {
    case ElemType::F32:
      return whereImpl(static_cast<const float*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::F64:
      return whereImpl(static_cast<const double*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::I32:
      return whereImpl(static_cast<const int32_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::U32:
      return whereImpl(static_cast<const uint32_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::U16:
      return whereImpl(static_cast<const uint16_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::I16:
      return whereImpl(static_cast<const int16_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::U8:
      return whereImpl(static_cast<const uint8_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
    case ElemType::I8:
      return whereImpl(static_cast<const int8_t*>(cond), cStrides, a, aStrides, b, bStrides, out, shape, rank);
  }
}

void copyStrided(const void* src, long srcOffset, const long* srcStrides, void* dst, long dstOffset,
                 const long* dstStrides, const long* shape, int rank, int elemSize) {
  switch (elemSize) {
    case 1:
      return copyImpl(static_cast<const uint8_t*>(src) + srcOffset, srcStrides, static_cast<uint8_t*>(dst) + dstOffset,
                      dstStrides, shape, rank);
    case 2:
      return copyImpl(static_cast<const uint16_t*>(src) + srcOffset, srcStrides,
                      static_cast<uint16_t*>(dst) + dstOffset, dstStrides, shape, rank);
    case 4:
      return copyImpl(static_cast<const uint32_t*>(src) + srcOffset, srcStrides,
                      static_cast<uint32_t*>(dst) + dstOffset, dstStrides, shape, rank);
    default:
      return copyImpl(static_cast<const uint64_t*>(src) + srcOffset, srcStrides,
                      static_cast<uint64_t*>(dst) + dstOffset, dstStrides, shape, rank);
  }
}

void swiglu(const float* g, const float* u, float* out, long n) {
  const IsaOps* ops = isa();
  mapChunks(n, [&](long b, long e) { ops->swiglu(g + b, u + b, out + b, e - b); });
}

void swigluBackward(const float* g, const float* u, const float* gy, float* gg, float* gu, long n) {
  const IsaOps* ops = isa();
  mapChunks(n, [&](long b, long e) { ops->swigluBwd(g + b, u + b, gy + b, gg + b, gu + b, e - b); });
}

void dropout(const float* x, float* out, long n, double p, uint32_t seed, uint64_t offset) {
  if (p == 0) {
    if (out != x) mapChunks(n, [&](long b, long e) { std::memcpy(out + b, x + b, sizeof(float) * (e - b)); });
    return;
  }
  const DropoutMask mask(seed, p);
  const double scale = 1.0 / mask.keepProb;
  // Chunks start on multiples of 4 elements of the stream so each Philox block is drawn once.
  parallelFor((n + 3) / 4, kGrain / 4, [&](long qb, long qe) {
    long b = qb * 4, e = std::min(qe * 4, n);
    uint8_t keep[256];
    for (long i = b; i < e; i += 256) {
      const long m = std::min<long>(256, e - i);
      mask.fill(offset + static_cast<uint64_t>(i), m, keep);
      for (long j = 0; j < m; j++)
        out[i + j] = keep[j] ? static_cast<float>(static_cast<double>(x[i + j]) * scale) : 0.0f;
    }
  });
}

void adamw(float* p, const float* g, float* m, float* v, long n, double lr, double beta1, double beta2, double eps,
           double weightDecay, double step) {
  const double bc1 = 1.0 - std::pow(beta1, step);
  const double bc2 = 1.0 - std::pow(beta2, step);
  mapChunks(n, [&](long b, long e) {
    for (long i = b; i < e; i++) {
      const double gi = g[i];
      const double mi = beta1 * m[i] + (1 - beta1) * gi;
      const double vi = beta2 * v[i] + (1 - beta2) * gi * gi;
      m[i] = static_cast<float>(mi);
      v[i] = static_cast<float>(vi);
      const double mhat = mi / bc1;
      const double vhat = vi / bc2;
      const double pi = p[i];
      p[i] = static_cast<float>(pi - lr * (weightDecay * pi + mhat / (std::sqrt(vhat) + eps)));
    }
  });
}

void f32ToBf16(const float* src, uint16_t* dst, long n) {
  mapChunks(n, [&](long b, long e) {
    for (long i = b; i < e; i++) dst[i] = floatToBf16(src[i]);
  });
}

void bf16ToF32(const uint16_t* src, float* dst, long n) {
  mapChunks(n, [&](long b, long e) {
    for (long i = b; i < e; i++) {
      const uint32_t u = static_cast<uint32_t>(src[i]) << 16;
      std::memcpy(dst + i, &u, 4);
    }
  });
}

double sumSquares(const float* x, long n) {
  // Fixed chunks (independent of the thread count), each summed in f64 with 4 lanes, added in order.
  constexpr long kChunk = 1 << 16;
  const long chunks = (n + kChunk - 1) / kChunk;
  if (chunks == 0) return 0.0;
  double local[64];
  double* part = chunks <= 64 ? local : new double[chunks];
  parallelFor(chunks, 1, [&](long cb, long ce) {
    for (long c = cb; c < ce; c++) {
      const long b = c * kChunk, e = std::min(n, b + kChunk);
      double s[4] = {0, 0, 0, 0};
      long i = b;
      for (; i + 4 <= e; i += 4)
        for (int l = 0; l < 4; l++) s[l] += static_cast<double>(x[i + l]) * x[i + l];
      for (; i < e; i++) s[0] += static_cast<double>(x[i]) * x[i];
      part[c] = (s[0] + s[1]) + (s[2] + s[3]);
    }
  });
  double total = 0;
  for (long c = 0; c < chunks; c++) total += part[c];
  if (part != local) delete[] part;
  return total;
}

void gatherRows(const void* table, bool bf16, const int32_t* ids, float* out, long n, long dim) {
  parallelFor(n, std::max<long>(1, kGrain / std::max<long>(dim, 1)), [&](long b, long e) {
    for (long i = b; i < e; i++) {
      const long row = ids[i];
      float* o = out + i * dim;
      if (bf16) {
        const uint16_t* t = static_cast<const uint16_t*>(table) + row * dim;
        for (long j = 0; j < dim; j++) o[j] = bf16ToFloat(t[j]);
      } else {
        std::memcpy(o, static_cast<const float*>(table) + row * dim, sizeof(float) * dim);
      }
    }
  });
}

void scatterAddRows(const float* g, const int32_t* ids, float* gTable, long n, long dim) {
  // Threads own column ranges and walk the rows in order: the same result for any thread count.
  const double work = static_cast<double>(n) * dim;
  int want = threadsFor(work, kGrain);
  want = static_cast<int>(std::min<long>(want, std::max<long>(1, dim / 16)));
  auto run = [&](long c0, long c1) {
    for (long i = 0; i < n; i++) {
      const float* src = g + i * dim;
      float* dst = gTable + static_cast<long>(ids[i]) * dim;
      for (long j = c0; j < c1; j++) dst[j] += src[j];
    }
  };
  if (want <= 1) return run(0, dim);
  parallel(want, [&](int tid, int nt) {
    long c0, c1;
    splitRange(dim / 16, tid, nt, &c0, &c1);
    c0 *= 16;
    c1 = tid == nt - 1 ? dim : c1 * 16;
    if (c1 > c0) run(c0, c1);
  });
}

void rowPairDots(const float* a, const float* b, const int32_t* aRows, const int32_t* bRows, float* out, long k,
                 long n) {
  // One dot per pair, each in a fixed order (8 partial sums, then combined): deterministic for any
  // thread count.
  parallelFor(k, std::max<long>(1, kGrain / std::max<long>(n, 1)), [&](long jb, long je) {
    for (long j = jb; j < je; j++) {
      const float* x = a + static_cast<long>(aRows[j]) * n;
      const float* y = b + static_cast<long>(bRows[j]) * n;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      long t = 0;
      for (; t + 8 <= n; t += 8)
        for (int l = 0; l < 8; l++) s[l] += x[t + l] * y[t + l];
      float total = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
      for (; t < n; t++) total += x[t] * y[t];
      out[j] = total;
    }
  });
}

void fwht(float* x, long rows, long n) {
  // Rows in parallel; within a row the butterflies run in the fixed radix-2 order (deterministic).
  parallelFor(rows, std::max<long>(1, kGrain / std::max<long>(n, 1)), [&](long rb, long re) {
    for (long r = rb; r < re; r++) {
      float* v = x + r * n;
      for (long h = 1; h < n; h *= 2)
        for (long i = 0; i < n; i += 2 * h)
          for (long j = i; j < i + h; j++) {
            const float a = v[j], b = v[j + h];
            v[j] = a + b;
            v[j + h] = a - b;
          }
    }
  });
}

}  // namespace attune

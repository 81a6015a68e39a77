// Reductions, softmax / log-softmax and cross-entropy on materialised logits.
#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"
#include "kernels.h"

namespace attune {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Rows per thread so a thread gets at least ~32K elements.
inline long rowGrain(long cols) { return std::max<long>(1, (1 << 15) / std::max<long>(cols, 1)); }

inline double sumF64(const float* x, long n) {
  double s[4] = {0, 0, 0, 0};
  long i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++) s[l] += x[i + l];
  for (; i < n; i++) s[0] += x[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

inline double dotF64(const float* a, const float* b, long n) {
  double s[4] = {0, 0, 0, 0};
  long i = 0;
  for (; i + 4 <= n; i += 4)
    for (int l = 0; l < 4; l++) s[l] += static_cast<double>(a[i + l]) * b[i + l];
  for (; i < n; i++) s[0] += static_cast<double>(a[i]) * b[i];
  return (s[0] + s[1]) + (s[2] + s[3]);
}

// max with NaN propagation, as the reference: NaN wins.
inline float maxNan(const float* x, long n, long stride) {
  float acc = -std::numeric_limits<float>::infinity();
  for (long l = 0; l < n; l++) {
    const float v = x[l * stride];
    if (v > acc || v != v) acc = v;
  }
  return acc;
}

// log(sum(exp(x - m))) + m over a contiguous row (m = max, NaN-propagating).
inline float rowLse(const IsaOps* ops, const float* x, long n) {
  const float m = maxNan(x, n, 1);
  if (!std::isfinite(m)) return m;
  double dot;
  const double s = ops->expShiftSumDot(x, n, m, &dot);
  return static_cast<float>(m + std::log(s));
}

}  // namespace

void reduce(ReduceOp op, const float* x, float* out, long outer, long len, long inner) {
  const IsaOps* ops = isa();
  if (inner == 1) {
    parallelFor(outer, rowGrain(len), [&](long b, long e) {
      for (long o = b; o < e; o++) {
        const float* row = x + o * len;
        switch (op) {
          case ReduceOp::Sum:
            out[o] = static_cast<float>(sumF64(row, len));
            break;
          case ReduceOp::Max:
            out[o] = maxNan(row, len, 1);
            break;
          case ReduceOp::LogSumExp:
            out[o] = rowLse(ops, row, len);
            break;
        }
      }
    });
    return;
  }
  // Strided middle axis: threads over (outer, inner blocks), vectorisable loops over inner.
  constexpr long kBlock = 256;
  const long iblocks = (inner + kBlock - 1) / kBlock;
  parallelFor(outer * iblocks, std::max<long>(1, rowGrain(len * kBlock)), [&](long b, long e) {
    double acc[kBlock];
    float mx[kBlock];
    for (long t = b; t < e; t++) {
      const long o = t / iblocks, i0 = (t % iblocks) * kBlock;
      const long ni = std::min(kBlock, inner - i0);
      const float* base = x + o * len * inner + i0;
      float* dst = out + o * inner + i0;
      if (op == ReduceOp::Sum) {
        for (long i = 0; i < ni; i++) acc[i] = 0;
        for (long l = 0; l < len; l++) {
          const float* r = base + l * inner;
          for (long i = 0; i < ni; i++) acc[i] += r[i];
        }
        for (long i = 0; i < ni; i++) dst[i] = static_cast<float>(acc[i]);
        continue;
      }
      for (long i = 0; i < ni; i++) mx[i] = -std::numeric_limits<float>::infinity();
      for (long l = 0; l < len; l++) {
        const float* r = base + l * inner;
        for (long i = 0; i < ni; i++) {
          const float v = r[i];
          if (v > mx[i] || v != v) mx[i] = v;
        }
      }
      if (op == ReduceOp::Max) {
        for (long i = 0; i < ni; i++) dst[i] = mx[i];
        continue;
      }
      for (long i = 0; i < ni; i++) acc[i] = 0;
      for (long l = 0; l < len; l++) {
        const float* r = base + l * inner;
        for (long i = 0; i < ni; i++) acc[i] += std::exp(static_cast<double>(r[i]) - mx[i]);
      }
      for (long i = 0; i < ni; i++)
        dst[i] = std::isfinite(mx[i]) ? static_cast<float>(mx[i] + std::log(acc[i])) : mx[i];
    }
  });
}

void softmax(const float* x, float* out, long rows, long cols) {
  const IsaOps* ops = isa();
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const float m = ops->rowMax(xr, cols);
      const double s = ops->expShift(xr, o, cols, m);
      const float inv = static_cast<float>(1.0 / s);
      for (long j = 0; j < cols; j++) o[j] *= inv;
    }
  });
}

void softmaxBackward(const float* y, const float* gy, float* gx, long rows, long cols) {
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* yr = y + r * cols;
      const float* g = gy + r * cols;
      float* o = gx + r * cols;
      const float dot = static_cast<float>(dotF64(g, yr, cols));
      for (long j = 0; j < cols; j++) o[j] = yr[j] * (g[j] - dot);
    }
  });
}

void logSoftmax(const float* x, float* out, long rows, long cols) {
  const IsaOps* ops = isa();
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const float m = ops->rowMax(xr, cols);
      double dot;
      const double s = ops->expShiftSumDot(xr, cols, m, &dot);
      const float shift = static_cast<float>(m + std::log(s));
      for (long j = 0; j < cols; j++) o[j] = xr[j] - shift;
    }
  });
}

void logSoftmaxBackward(const float* y, const float* gy, float* gx, long rows, long cols) {
  const IsaOps* ops = isa();
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    float tmp[512];
    for (long r = b; r < e; r++) {
      const float* yr = y + r * cols;
      const float* g = gy + r * cols;
      float* o = gx + r * cols;
      const float s = static_cast<float>(sumF64(g, cols));
      for (long j0 = 0; j0 < cols; j0 += 512) {
        const long m = std::min<long>(512, cols - j0);
        ops->expArr(yr + j0, tmp, m);
        for (long j = 0; j < m; j++) o[j0 + j] = g[j0 + j] - tmp[j] * s;
      }
    }
  });
}

void crossEntropy(const float* logits, const int32_t* labels, float* loss, float* lse, long rows, long cols,
                  double smoothing) {
  const IsaOps* ops = isa();
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* xr = logits + r * cols;
      const float l = rowLse(ops, xr, cols);
      lse[r] = l;
      const int32_t label = labels[r];
      if (label == -100) {
        loss[r] = 0.0f;
        continue;
      }
      double v = -(1.0 - smoothing) * (static_cast<double>(xr[label]) - l);
      if (smoothing != 0.0) v -= smoothing * (sumF64(xr, cols) / static_cast<double>(cols) - l);
      loss[r] = static_cast<float>(v);
    }
  });
}

void crossEntropyBackward(const float* logits, const int32_t* labels, const float* lse, const float* gLoss,
                          float* gLogits, long rows, long cols, double smoothing) {
  const IsaOps* ops = isa();
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* xr = logits + r * cols;
      float* o = gLogits + r * cols;
      const int32_t label = labels[r];
      if (label == -100) {
        for (long j = 0; j < cols; j++) o[j] = 0.0f;
        continue;
      }
      const float g = gLoss[r];
      ops->expShift(xr, o, cols, lse[r]);
      const float uni = static_cast<float>(smoothing / static_cast<double>(cols));
      for (long j = 0; j < cols; j++) o[j] = g * (o[j] - uni);
      o[label] -= g * static_cast<float>(1.0 - smoothing);
    }
  });
}

}  // namespace attune

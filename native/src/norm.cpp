// RMSNorm, LayerNorm (forward + backward) and rotary embeddings.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common.h"
#include "kernels.h"

namespace attune {
namespace {

inline long rowGrain(long cols) { return std::max<long>(1, (1 << 14) / std::max<long>(cols, 1)); }

// Weight-gradient reductions over rows use fixed blocks of rows (independent of the thread count),
// each block's partial sum computed in row order, and the partials added in block order.
constexpr long kRowBlock = 32;

// 8 independent lanes (vectorisable without reassociation), combined in a fixed order.
inline double sumSq(const float* x, long n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += x[i + l] * x[i + l];
  double s = 0;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (; i < n; i++) s += static_cast<double>(x[i]) * x[i];
  return s;
}

inline double sumF(const float* x, long n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  long i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; l++) acc[l] += x[i + l];
  double s = 0;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (; i < n; i++) s += x[i];
  return s;
}

inline double dot3(const float* a, const float* b, const float* c, long n) {
  float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  long i = 0;
  if (c) {
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l] * c[i + l];
  } else {
    for (; i + 8 <= n; i += 8)
      for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
  }
  double s = 0;
  for (int l = 0; l < 8; l++) s += acc[l];
  for (; i < n; i++) s += static_cast<double>(a[i]) * b[i] * (c ? c[i] : 1.0f);
  return s;
}

// Runs rows in fixed blocks; f(blockIndex, rowBegin, rowEnd). Threads take contiguous block ranges.
template <class F>
void forRowBlocks(long rows, long cols, F&& f) {
  const long blocks = (rows + kRowBlock - 1) / kRowBlock;
  parallelFor(blocks, std::max<long>(1, rowGrain(cols) / kRowBlock), [&](long b, long e) {
    for (long blk = b; blk < e; blk++) f(blk, blk * kRowBlock, std::min(rows, (blk + 1) * kRowBlock));
  });
}

thread_local std::vector<float> partialBuf;

// dst[c] += sum over blocks of partial[blk * cols + c], blocks in order.
void addPartials(float* dst, const float* partial, long blocks, long cols) {
  parallelFor(cols, 1 << 12, [&](long c0, long c1) {
    for (long blk = 0; blk < blocks; blk++) {
      const float* p = partial + blk * cols;
      for (long c = c0; c < c1; c++) dst[c] += p[c];
    }
  });
}

}  // namespace

void rmsNorm(const float* x, const float* w, float* out, float* rstd, long rows, long cols, double eps) {
  parallelFor(rows, rowGrain(cols), [&](long b, long e) {
    for (long r = b; r < e; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const float rs = static_cast<float>(1.0 / std::sqrt(sumSq(xr, cols) / static_cast<double>(cols) + eps));
      rstd[r] = rs;
      if (w)
        for (long j = 0; j < cols; j++) o[j] = xr[j] * rs * w[j];
      else
        for (long j = 0; j < cols; j++) o[j] = xr[j] * rs;
    }
  });
}

void rmsNormBackward(const float* x, const float* w, const float* rstd, const float* gy, float* gx, float* gw,
                     long rows, long cols) {
  const long blocks = (rows + kRowBlock - 1) / kRowBlock;
  float* partial = nullptr;
  std::vector<float>& buf = partialBuf;
  if (gw) {
    buf.assign(static_cast<size_t>(blocks * cols), 0.0f);
    partial = buf.data();
  }
  forRowBlocks(rows, cols, [&](long blk, long r0, long r1) {
    float* pw = partial ? partial + blk * cols : nullptr;
    for (long r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      const float* g = gy + r * cols;
      float* o = gx + r * cols;
      const float rs = rstd[r];
      // gx = rs * (g*w) - x * rs^3 * mean(g*w*x)
      const double dotv = dot3(g, xr, w, cols);
      const float k = static_cast<float>(static_cast<double>(rs) * rs * rs * dotv / static_cast<double>(cols));
      if (w)
        for (long j = 0; j < cols; j++) o[j] = rs * (g[j] * w[j]) - xr[j] * k;
      else
        for (long j = 0; j < cols; j++) o[j] = rs * g[j] - xr[j] * k;
      if (pw)
        for (long j = 0; j < cols; j++) pw[j] += g[j] * xr[j] * rs;
    }
  });
  if (gw) addPartials(gw, partial, blocks, cols);
}

void layerNorm(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd, long rows,
               long cols, double eps) {
  parallelFor(rows, rowGrain(cols), [&](long rb, long re) {
    for (long r = rb; r < re; r++) {
      const float* xr = x + r * cols;
      float* o = out + r * cols;
      const double mu = sumF(xr, cols) / static_cast<double>(cols);
      double var = 0;
      for (long j = 0; j < cols; j++) {
        const double dlt = xr[j] - mu;
        var += dlt * dlt;
      }
      var /= static_cast<double>(cols);
      const float rs = static_cast<float>(1.0 / std::sqrt(var + eps));
      const float m = static_cast<float>(mu);
      mean[r] = m;
      rstd[r] = rs;
      for (long j = 0; j < cols; j++) {
        float v = (xr[j] - m) * rs;
        if (w) v *= w[j];
        if (b) v += b[j];
        o[j] = v;
      }
    }
  });
}

void layerNormBackward(const float* x, const float* w, const float* mean, const float* rstd, const float* gy,
                       float* gx, float* gw, float* gb, long rows, long cols) {
  const long blocks = (rows + kRowBlock - 1) / kRowBlock;
  const int nparts = (gw ? 1 : 0) + (gb ? 1 : 0);
  float* pW = nullptr;
  float* pB = nullptr;
  std::vector<float>& buf = partialBuf;
  if (nparts) {
    buf.assign(static_cast<size_t>(nparts * blocks * cols), 0.0f);
    pW = gw ? buf.data() : nullptr;
    pB = gb ? buf.data() + (gw ? blocks * cols : 0) : nullptr;
  }
  forRowBlocks(rows, cols, [&](long blk, long r0, long r1) {
    float* tmp = new float[2 * cols];
    float* gwx = tmp;         // g * w
    float* xhat = tmp + cols;
    for (long r = r0; r < r1; r++) {
      const float* xr = x + r * cols;
      const float* g = gy + r * cols;
      float* o = gx + r * cols;
      const float m = mean[r], rs = rstd[r];
      double s1 = 0, s2 = 0;
      for (long j = 0; j < cols; j++) {
        xhat[j] = (xr[j] - m) * rs;
        gwx[j] = w ? g[j] * w[j] : g[j];
        s1 += gwx[j];
        s2 += static_cast<double>(gwx[j]) * xhat[j];
      }
      const float a = static_cast<float>(s1 / static_cast<double>(cols));
      const float c = static_cast<float>(s2 / static_cast<double>(cols));
      for (long j = 0; j < cols; j++) o[j] = rs * (gwx[j] - a - xhat[j] * c);
      if (pW) {
        float* p = pW + blk * cols;
        for (long j = 0; j < cols; j++) p[j] += g[j] * xhat[j];
      }
      if (pB) {
        float* p = pB + blk * cols;
        for (long j = 0; j < cols; j++) p[j] += g[j];
      }
    }
    delete[] tmp;
  });
  if (gw) addPartials(gw, pW, blocks, cols);
  if (gb) addPartials(gb, pB, blocks, cols);
}

void rope(const float* x, float* out, const float* cos, const float* sin, const int32_t* positions, long B, long T,
          long H, long D, bool inverse) {
  const long half = D / 2;
  const float sign = inverse ? -1.0f : 1.0f;
  parallelFor(B * T, rowGrain(H * D), [&](long b, long e) {
    for (long bt = b; bt < e; bt++) {
      const long p = positions[bt];
      const float* c = cos + p * half;
      const float* s = sin + p * half;
      for (long h = 0; h < H; h++) {
        const float* xr = x + (bt * H + h) * D;
        float* o = out + (bt * H + h) * D;
        for (long i = 0; i < half; i++) {
          const float x1 = xr[i], x2 = xr[i + half];
          const float si = sign * s[i];
          o[i] = x1 * c[i] - x2 * si;
          o[i + half] = x2 * c[i] + x1 * si;
        }
      }
    }
  });
}

}  // namespace attune

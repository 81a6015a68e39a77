// Block-quantised frozen weights: quantise, dequantise and the GEMM that multiplies by a quantised
// matrix without materialising it (docs/kernels.md, "Quantised frozen weights"; the js reference and
// the layout are in src/backend/js/quant.ts). The GEMM cuts C into (row chunk, column chunk) tasks;
// a task walks K in blocks, dequantises the W tile of that block into a per-thread f32 buffer (at
// most kTileN x kTileK floats, in L2) and multiplies it in with the serial f32 GEMM (gemm.h). Tile
// and chunk sizes depend only on (M, N, K), never on the thread count, so results are bitwise
// identical across thread counts.
#include "qgemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common.h"
#include "gemm.h"

namespace attune {
namespace {

// QLoRA's NF4 levels (bitsandbytes' dDequantizeNF4, csrc/cpu_ops.h), index 0..15.
const float kNf4[16] = {-1.0f,
                        -0.6961928009986877f,
                        -0.5250730514526367f,
                        -0.39491748809814453f,
                        -0.28444138169288635f,
                        -0.18477343022823334f,
                        -0.09105003625154495f,
                        0.0f,
                        0.07958029955625534f,
                        0.16093020141124725f,
                        0.24611230194568634f,
                        0.33791524171829224f,
                        0.44070982933044434f,
                        0.5626170039176941f,
                        0.7229568362236023f,
                        1.0f};

struct Mids {
  double v[15];
  Mids() {
    for (int i = 0; i < 15; i++) v[i] = (static_cast<double>(kNf4[i]) + static_cast<double>(kNf4[i + 1])) / 2;
  }
};
const Mids kMids;

inline int nf4Index(double v) {
  int lo = 0, hi = 15;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (v >= kMids.v[mid]) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

inline float readSrc(const void* src, bool bf16, long i) {
  if (!bf16) return static_cast<const float*>(src)[i];
  const uint32_t bits = static_cast<uint32_t>(static_cast<const uint16_t*>(src)[i]) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float int8Step(float absmax) { return static_cast<float>(static_cast<double>(absmax) / 127.0); }

void quantizeBlock(QuantFormat f, const void* src, bool bf16, long start, long len, uint8_t* codes, float* scale,
                   long* nonFinite) {
  float x[kQuantBlock];
  float absmax = 0;
  for (long i = 0; i < len; i++) {
    float v = readSrc(src, bf16, start + i);
    if (!std::isfinite(v)) {
      ++*nonFinite;
      v = 0;
    }
    x[i] = v;
    const float a = std::fabs(v);
    if (a > absmax) absmax = a;
  }
  *scale = absmax;
  if (f == QuantFormat::Int8) {
    const float step = int8Step(absmax);
    for (long i = 0; i < len; i++) {
      long q = 0;
      if (step > 0) {
        q = static_cast<long>(std::floor(static_cast<double>(x[i]) / static_cast<double>(step) + 0.5));
        q = q > 127 ? 127 : (q < -127 ? -127 : q);
      }
      codes[start + i] = static_cast<uint8_t>(static_cast<int8_t>(q));
    }
    return;
  }
  for (long i = 0; i < len; i++) {
    const int idx = absmax > 0 ? nf4Index(static_cast<double>(x[i]) / static_cast<double>(absmax)) : 7;
    const long j = start + i;
    uint8_t& byte = codes[j >> 1];
    byte = (j & 1) ? static_cast<uint8_t>((byte & 0xf0) | idx) : static_cast<uint8_t>((idx << 4) | (byte & 0x0f));
  }
}

// dst[0, n) = elements [j, j + n) (any alignment), on the active ISA level. The int8 steps
// (absmax / 127 per block) are computed here, for at most kStepBlocks blocks at a time.
void dequantSpan(QuantFormat f, const uint8_t* codes, const float* scales, long j, long n, float* dst) {
  if (f == QuantFormat::Nf4) {
    if (n > 0) isa()->dequantNf4(codes, scales, kQuantBlock, kNf4, j, n, dst);
    return;
  }
  constexpr long kStepBlocks = 64;
  float steps[kStepBlocks];
  for (long t = 0; t < n;) {
    const long k = j + t, b0 = k / kQuantBlock;
    const long m = std::min(n - t, (b0 + kStepBlocks) * kQuantBlock - k);
    const long b1 = (k + m - 1) / kQuantBlock + 1;
    for (long b = b0; b < b1; b++) steps[b - b0] = int8Step(scales[b]);
    // steps are indexed from block b0: element offsets start in that block
    const long shift = b0 * kQuantBlock;
    isa()->dequantInt8(reinterpret_cast<const int8_t*>(codes) + shift, steps, kQuantBlock, k - shift, m, dst + t);
    t += m;
  }
}

// Rows [r0, r0 + nr), columns [c0, c0 + nc) of the row-major [*, cols] quantised matrix into dst
// (row stride nc).
void dequantTile(QuantFormat f, const uint8_t* codes, const float* scales, long cols, long r0, long nr, long c0,
                 long nc, float* dst) {
  for (long r = 0; r < nr; r++) dequantSpan(f, codes, scales, (r0 + r) * cols + c0, nc, dst + r * nc);
}

// Tile of W dequantised per step: kTileN output columns x kTileK of the reduction (256 KB of f32).
constexpr long kTileN = 128;
constexpr long kTileK = 512;
// Below this many column chunks, C's rows are split too (so k/v projections use every thread).
constexpr long kMinTasks = 8;
constexpr long kMinRowChunk = 32;

thread_local AlignedBuf tileBuf;

}  // namespace

long quantizeBlocks(QuantFormat f, const void* src, bool srcBf16, long n, uint8_t* codes, float* scales) {
  const long blocks = (n + kQuantBlock - 1) / kQuantBlock;
  // one counter per thread slot, summed after (no atomics in the loop)
  long counts[256] = {0};
  const int want = threadsFor(static_cast<double>(blocks), 256);
  parallel(want, [&](int tid, int nt) {
    long b0, b1;
    splitRange(blocks, tid, nt, &b0, &b1);
    long bad = 0;
    for (long b = b0; b < b1; b++) {
      const long start = b * kQuantBlock;
      const long len = (n - start) < kQuantBlock ? (n - start) : kQuantBlock;
      quantizeBlock(f, src, srcBf16, start, len, codes, scales + b, &bad);
    }
    counts[tid & 255] += bad;
  });
  long total = 0;
  for (long c : counts) total += c;
  return total;
}

void dequantizeRange(QuantFormat f, const uint8_t* codes, const float* scales, long offset, long n, float* out) {
  parallelFor(n, 1L << 16, [&](long b, long e) { dequantSpan(f, codes, scales, offset + b, e - b, out + b); });
}

void qgemm(bool transW, long M, long N, long K, const float* A, long lda, QuantFormat f, const uint8_t* codes,
           const float* scales, float beta, float* C, long ldc) {
  if (M == 0 || N == 0) return;
  const long cols = transW ? K : N;  // row length of the stored W
  const long colChunks = (N + kTileN - 1) / kTileN;
  long rowChunk = M;
  if (colChunks < kMinTasks) {
    const long want = (kMinTasks + colChunks - 1) / colChunks;
    rowChunk = (M + want - 1) / want;
    if (rowChunk < kMinRowChunk) rowChunk = kMinRowChunk;
  }
  const long rowChunks = (M + rowChunk - 1) / rowChunk;
  const long tasks = colChunks * rowChunks;
  const double flops = 2.0 * M * N * (K > 0 ? K : 1);
  const int want = flops < 2e5 ? 1 : poolSize();
  parallelDynamic(tasks, want, [&](long task, int) {
    const long n0 = (task % colChunks) * kTileN;
    const long nb = (N - n0) < kTileN ? (N - n0) : kTileN;
    const long m0 = (task / colChunks) * rowChunk;
    const long mb = (M - m0) < rowChunk ? (M - m0) : rowChunk;
    GemmDesc d{};
    d.transA = false;
    d.transB = transW;
    d.M = mb;
    d.N = nb;
    d.alpha = 1.0f;
    d.lda = lda;
    d.bBf16 = false;
    d.C = C + m0 * ldc + n0;
    d.ldc = ldc;
    if (K == 0) {
      // an empty product: C = beta C
      for (long i = 0; i < mb; i++)
        for (long j = 0; j < nb; j++) d.C[i * ldc + j] = beta == 0 ? 0.0f : beta * d.C[i * ldc + j];
      return;
    }
    float* tile = tileBuf.get(static_cast<size_t>(kTileN * kTileK));
    for (long k0 = 0; k0 < K; k0 += kTileK) {
      const long kb = (K - k0) < kTileK ? (K - k0) : kTileK;
      if (transW) {
        // W rows n0.. (output columns), columns k0..: tile [nb x kb], used transposed
        dequantTile(f, codes, scales, cols, n0, nb, k0, kb, tile);
        d.ldb = kb;
      } else {
        // W rows k0.. (reduction), columns n0..: tile [kb x nb]
        dequantTile(f, codes, scales, cols, k0, kb, n0, nb, tile);
        d.ldb = nb;
      }
      d.K = kb;
      d.A = A + m0 * lda + k0;
      d.B = tile;
      d.beta = k0 == 0 ? beta : 1.0f;
      gemmSerial(d);
    }
  });
}

}  // namespace attune

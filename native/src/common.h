// Shared helpers for the generic (baseline-architecture) translation units.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "isa.h"
#include "pool.h"

namespace attune {

// The SIMD level chosen at load time (ATTUNE_NATIVE_SIMD=avx2|scalar forces a lower one).
const IsaOps* isa();

// A 64-byte aligned growable float buffer (kept between calls: no allocation churn).
class AlignedBuf {
 public:
  AlignedBuf() = default;
  AlignedBuf(const AlignedBuf&) = delete;
  AlignedBuf& operator=(const AlignedBuf&) = delete;
  ~AlignedBuf() { std::free(ptr_); }
  float* get(size_t n) {
    if (n > cap_) {
      std::free(ptr_);
      size_t bytes = ((n * sizeof(float)) + 63) & ~static_cast<size_t>(63);
      ptr_ = static_cast<float*>(std::aligned_alloc(64, bytes ? bytes : 64));
      cap_ = ptr_ ? n : 0;
    }
    return ptr_;
  }
  // Releases the memory when it is much larger than `keep` floats.
  void trim(size_t keep) {
    if (cap_ > keep) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
    }
  }

 private:
  float* ptr_ = nullptr;
  size_t cap_ = 0;
};

inline float bf16ToFloat(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t floatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

// Philox4x32-10: counter c (4 words), key (k0, k1) -> c replaced by 4 random words.
inline void philox4x32(uint32_t* c, uint32_t k0, uint32_t k1) {
  uint32_t c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
  for (int r = 0; r < 10; r++) {
    const uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    const uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    c1 = static_cast<uint32_t>(p1);
    c3 = static_cast<uint32_t>(p0);
    c0 = n0;
    c2 = n2;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  c[0] = c0;
  c[1] = c1;
  c[2] = c2;
  c[3] = c3;
}

// Dropout mask source matching src/tensor/rng.ts philoxUniform: element `index` keeps iff
// uniform = (u32 >> 8) * 2^-24 >= p, i.e. (u32 >> 8) >= threshold with threshold = ceil(p * 2^24).
struct DropoutMask {
  uint32_t seed;
  uint32_t threshold;  // in 24-bit units; > 2^24 means drop everything
  double keepProb;     // 1 - p (survivors are divided by it)

  DropoutMask(uint32_t s, double p) : seed(s) {
    double t = std::ceil(p * 16777216.0);
    if (!(t > 0)) t = 0;  // p <= 0 (or NaN): keep everything
    threshold = t > 16777217.0 ? 16777217u : static_cast<uint32_t>(t);
    keepProb = 1.0 - p;
  }
  // The 4 random words of block `block` (elements 4 * block .. 4 * block + 3).
  void block(uint64_t blk, uint32_t* out) const {
    out[0] = static_cast<uint32_t>(blk);
    out[1] = static_cast<uint32_t>(blk >> 32);
    out[2] = 0;
    out[3] = 0;
    philox4x32(out, seed, 0);
  }
  bool keepWord(uint32_t w) const { return (w >> 8) >= threshold; }
  bool keep(uint64_t index) const {
    uint32_t w[4];
    block(index >> 2, w);
    return keepWord(w[index & 3]);
  }
  // Fills keep[0..n) (1 keep, 0 drop) for elements start .. start + n - 1.
  void fill(uint64_t start, long n, uint8_t* keepOut) const {
    long i = 0;
    uint32_t w[4];
    while (i < n) {
      const uint64_t idx = start + static_cast<uint64_t>(i);
      block(idx >> 2, w);
      for (unsigned lane = static_cast<unsigned>(idx & 3); lane < 4 && i < n; lane++, i++) keepOut[i] = keepWord(w[lane]);
    }
  }
};

// JS ToUint32 of a double (seed arguments).
inline uint32_t toUint32(double v) {
  if (!std::isfinite(v)) return 0;
  double t = std::trunc(v);
  double m = std::fmod(t, 4294967296.0);
  if (m < 0) m += 4294967296.0;
  return static_cast<uint32_t>(m);
}

}  // namespace attune

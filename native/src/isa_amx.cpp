// The AMX bf16-compute GEMM table (TMUL tdpbf16ps on 16 x 16 f32 tiles, 2 x 2 tiles per 32 x 32
// micro-tile), compiled with -mamx-tile -mamx-bf16 -mavx512bf16 -mavx512f -mavx512bw -mavx512vl;
// chosen at run time (gemm_bf16.cpp) when CPUID reports AMX-TILE and AMX-BF16 and Linux grants
// the tile data state (amxRequestPermission).
#include <cstdint>

#include "bf16gemm.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BW__) && \
    defined(__AVX512VL__)
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace attune {
namespace {

#include "bf16_impl.h"

constexpr int kMR = 32;

// The LDTILECFG operand: palette 1, tiles 0-7 all 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette;
  uint8_t startRow;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles: 0-3 C (rows 0-15 / 16-31 x cols 0-15 / 16-31), 4-5 A (rows 0-15, 16-31), 6-7 B (cols).
void macroAmx(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
              float beta, float* C, long ldc) {
  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);  // per call: the tile configuration is per thread
  alignas(64) float tmp[32 * 32];
  for (long panel = pb; panel < pe; panel++) {
    const long jr = panel * 32;
    const long nr = minl(32, nc - jr);
    const uint16_t* b = pbuf + panel * 32 * kp;
    for (long ir = 0; ir < mc; ir += kMR) {
      const uint16_t* a = pa + ir * kp;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (long kb = 0; kb < kp; kb += 32) {
        // A block [32 rows][32 k] (1024 elements); B block [16 pairs][32 columns][2] (1024).
        _tile_loadd(4, a + kb * 32, 64);
        _tile_loadd(5, a + kb * 32 + 512, 64);
        _tile_loadd(6, b + kb * 32, 128);
        _tile_loadd(7, b + kb * 32 + 32, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
      _tile_stored(0, tmp, 128);
      _tile_stored(1, tmp + 16, 128);
      _tile_stored(2, tmp + 512, 128);
      _tile_stored(3, tmp + 528, 128);
      const long mr = minl(kMR, mc - ir);
      float* c = C + ir * ldc + jr;
      for (long i = 0; i < mr; i++) {
        storeRow16(c + i * ldc, _mm512_load_ps(tmp + i * 32), nr, alpha, beta);
        storeRow16(c + i * ldc + 16, _mm512_load_ps(tmp + i * 32 + 16), nr - 16, alpha, beta);
      }
    }
  }
  _tile_release();
}

// macroAmx for mc <= 16 rows: only the first A tile (rows 0-15) and its C tiles. TMUL computes each
// row of C from that row of A alone, so the rows get exactly macroAmx's results. Panels go in pairs
// (C tiles 0-1 and 2-3) so that two dependent tdpbf16ps chains overlap.
void macroAmxFew(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
                 float beta, float* C, long ldc) {
  TileConfig cfg{};
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.colsb[t] = 64;
    cfg.rows[t] = 16;
  }
  _tile_loadconfig(&cfg);
  alignas(64) float tmp[16 * 64];
  const long mr = minl(16, mc);
  for (long panel = pb; panel < pe; panel += 2) {
    const bool two = panel + 1 < pe;
    const uint16_t* b = pbuf + panel * 32 * kp;
    const uint16_t* b2 = b + 32 * kp;
    _tile_zero(0);
    _tile_zero(1);
    if (two) {
      _tile_zero(2);
      _tile_zero(3);
    }
    for (long kb = 0; kb < kp; kb += 32) {
      _tile_loadd(4, pa + kb * 32, 64);
      _tile_loadd(5, b + kb * 32, 128);
      _tile_loadd(6, b + kb * 32 + 32, 128);
      _tile_dpbf16ps(0, 4, 5);
      _tile_dpbf16ps(1, 4, 6);
      if (two) {
        _tile_loadd(7, b2 + kb * 32, 128);
        _tile_dpbf16ps(2, 4, 7);
        _tile_loadd(5, b2 + kb * 32 + 32, 128);
        _tile_dpbf16ps(3, 4, 5);
      }
    }
    _tile_stored(0, tmp, 256);
    _tile_stored(1, tmp + 16, 256);
    if (two) {
      _tile_stored(2, tmp + 32, 256);
      _tile_stored(3, tmp + 48, 256);
    }
    for (int h = 0; h < (two ? 2 : 1); h++) {
      const long jr = (panel + h) * 32;
      const long nr = minl(32, nc - jr);
      float* c = C + jr;
      for (long i = 0; i < mr; i++) {
        storeRow16(c + i * ldc, _mm512_load_ps(tmp + i * 64 + 32 * h), nr, alpha, beta);
        storeRow16(c + i * ldc + 16, _mm512_load_ps(tmp + i * 64 + 32 * h + 16), nr - 16, alpha, beta);
      }
    }
  }
  _tile_release();
}

constexpr Bf16Ops kOps{"amx", kMR, 32, 256, 512, 1024, &packAT<kMR>, &packBImpl, &macroAmx, &macroAmxFew};

}  // namespace

const Bf16Ops* bf16Amx() { return &kOps; }

bool amxRequestPermission() {
#if defined(__linux__)
  constexpr long kArchReqXcompPerm = 0x1023;  // ARCH_REQ_XCOMP_PERM
  constexpr long kXfeatureXtiledata = 18;     // XFEATURE_XTILEDATA
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace attune

#else

namespace attune {
const Bf16Ops* bf16Amx() { return nullptr; }
bool amxRequestPermission() { return false; }
}  // namespace attune

#endif

// The bf16-compute GEMM paths' ISA tables (like isa.h: plain declarations only, so a translation
// unit built with -mamx-tile / -mavx512bf16 never leaks a copy of a shared inline function into
// generic code). Inputs are rounded to bf16 (round to nearest even) while packing; products are
// accumulated in f32. The portable fallback (no table) rounds inside the f32 GEMM's packing.
//
// Packed layouts, shared by both tables (K padded with zeros to a multiple of 32, kp):
//   A: panels of mr rows; a panel is [kp / 32][mr rows][32 k] bf16 (an AMX A tile per 16 rows).
//   B: panels of 32 columns; a panel is [kp / 2][32 columns][2 k] bf16 (VNNI pairs: one zmm row of
//      vdpbf16ps operands per 16 columns; two AMX B tiles of row stride 128 bytes per 32 k).
#pragma once
#include <cstdint>

namespace attune {

struct Bf16Ops {
  const char* name;  // "amx" | "avx512bf16"
  int mr, nr;        // micro-tile (nr is 32 for both)
  int mc, kc, nc;    // cache blocking: multiples of mr, 32, nr
  // Packs op(A) rows [0, mc) x k [0, kc) (A points at the block's first element) into panels of mr
  // rows, rounded to bf16, zero-padded to roundUp(mc, mr) rows and roundUp(kc, 32) k.
  void (*packA)(bool transA, const float* A, long lda, long mc, long kc, uint16_t* dst);
  // Packs the 32-column panels [pb, pe) of op(B) rows [0, kc) x cols [0, nc) (B points at the
  // block's first element; float rounded to bf16, or bf16 bits when bBf16), zero-padded.
  void (*packB)(bool transB, const void* B, bool bBf16, long ldb, long kc, long nc, long pb, long pe, uint16_t* dst);
  // C[mc x (columns of panels [pb, pe), clipped to nc)] = alpha * A * B + beta * C (beta 0: C is
  // not read) from packed A (mc rows) and packed B (pbuf), both with kp = roundUp(kc, 32).
  void (*macro)(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
                float beta, float* C, long ldc);
  // `macro` for mc <= kBf16FewRows rows (decoding), with fewer multiply units but each C element's
  // arithmetic exactly `macro`'s (a row's result never depends on the other rows of its tile).
  void (*macroFew)(long mc, long nc, long kp, long pb, long pe, float alpha, const uint16_t* pa, const uint16_t* pbuf,
                   float beta, float* C, long ldc);
};

// The most rows macroFew takes (gemm_bf16.cpp's few-rows path).
constexpr long kBf16FewRows = 4;

const Bf16Ops* bf16Amx();     // nullptr when not compiled in
const Bf16Ops* bf16Avx512();  // AVX512-BF16 (vdpbf16ps); nullptr when not compiled in
// Asks Linux once for permission to use AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM); false when
// the kernel refuses or this is not Linux. Defined in the AMX translation unit.
bool amxRequestPermission();

}  // namespace attune

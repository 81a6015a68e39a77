// The bf16-compute GEMM: inputs rounded to bf16 (round to nearest even), products accumulated in
// f32. Three paths, chosen at run time: "amx" (TMUL tiles, isa_amx.cpp), "avx512bf16" (vdpbf16ps,
// isa_avx512bf16.cpp) and "fallback" (the f32 GEMM with inputs rounded while packing, any CPU).
// The blocking loops here follow gemm.cpp's (K blocks fixed by the table; threads take tasks
// dynamically), so results do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#endif

#include "bf16gemm.h"
#include "common.h"
#include "gemm.h"

namespace attune {
namespace {

enum Bf16Path { kAmx = 0, kAvx512Bf16 = 1, kFallback = 2, kPathCount = 3 };
const char* const kPathNames[kPathCount] = {"amx", "avx512bf16", "fallback"};

bool cpuHasAvx512Bf16() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
  return false;
#endif
}

bool cpuHasAmx() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool amxBf16 = (edx >> 22) & 1u, amxTile = (edx >> 24) & 1u;
  if (!amxBf16 || !amxTile) return false;
  // The OS must enable the tile state in XCR0 (bits 17 XTILECFG, 18 XTILEDATA).
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (lo & (3u << 17)) == (3u << 17);
#else
  return false;
#endif
}

bool available(int path) {
  switch (path) {
    case kAmx: {
      // Permission is per process and asked for once.
      static const bool ok = bf16Amx() && cpuHasAvx512Bf16() && cpuHasAmx() && amxRequestPermission();
      return ok;
    }
    case kAvx512Bf16:
      return bf16Avx512() && cpuHasAvx512Bf16();
    case kFallback:
      return true;
    default:
      return false;
  }
}

int pathIndex(const char* name) {
  for (int p = 0; p < kPathCount; p++)
    if (!std::strcmp(name, kPathNames[p])) return p;
  return -1;
}

// The best available path, at most ATTUNE_BF16_PATH (amx > avx512bf16 > fallback); a lower SIMD
// level forced by ATTUNE_NATIVE_SIMD (avx2, scalar) means the fallback.
int autoPath() {
  const char* env = std::getenv("ATTUNE_BF16_PATH");
  int start = env && *env ? pathIndex(env) : kAmx;
  if (start < 0) start = kAmx;
  if (std::strcmp(isa()->name, "avx512") != 0) start = kFallback;
  for (int p = start; p < kPathCount; p++)
    if (available(p)) return p;
  return kFallback;
}

std::atomic<int> current{-1};

int currentPath() {
  int p = current.load(std::memory_order_relaxed);
  if (p < 0) {
    p = autoPath();
    current.store(p, std::memory_order_relaxed);
  }
  return p;
}

long envLong(const char* name, long fallback, long multiple) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  const long x = std::strtol(v, nullptr, 10);
  if (x <= 0) return fallback;
  return (x + multiple - 1) / multiple * multiple;
}

// ATTUNE_GEMM_BF16_MC / _KC / _NC override a table's cache blocking (tuning experiments).
Bf16Ops tunedTable(const Bf16Ops* base) {
  Bf16Ops t = *base;
  t.mc = static_cast<int>(envLong("ATTUNE_GEMM_BF16_MC", base->mc, base->mr));
  t.kc = static_cast<int>(envLong("ATTUNE_GEMM_BF16_KC", base->kc, 32));
  t.nc = static_cast<int>(envLong("ATTUNE_GEMM_BF16_NC", base->nc, base->nr));
  return t;
}

const Bf16Ops* opsOf(int path) {
  static const Bf16Ops amx = bf16Amx() ? tunedTable(bf16Amx()) : Bf16Ops{};
  static const Bf16Ops dp = bf16Avx512() ? tunedTable(bf16Avx512()) : Bf16Ops{};
  return path == kAmx ? (bf16Amx() ? &amx : nullptr) : path == kAvx512Bf16 ? (bf16Avx512() ? &dp : nullptr) : nullptr;
}

inline long roundUp(long v, long m) { return (v + m - 1) / m * m; }

// AlignedBuf holds floats: room for n bf16 values.
inline uint16_t* bf16Buf(AlignedBuf& buf, long n) {
  return reinterpret_cast<uint16_t*>(buf.get(static_cast<size_t>((n + 1) / 2)));
}

thread_local AlignedBuf tlsPackA;
thread_local AlignedBuf tlsPackB;
AlignedBuf sharedPackB;  // used only by gemmBf16Parallel (one region at a time)

// K blocks of at most the table's kc, balanced (multiples of 32): K = 576 is one block of 576 rather
// than 512 + 64, which would make a second pass over C for 64 k. Depends on K only.
inline long balancedKc(long kcMax, long K) {
  const long blocks = (K + kcMax - 1) / kcMax;
  return roundUp((K + blocks - 1) / blocks, 32);
}

inline const float* aAt(const GemmDesc& d, long i0, long p0) {
  return d.transA ? d.A + p0 * d.lda + i0 : d.A + i0 * d.lda + p0;
}
inline const void* bAt(const GemmDesc& d, long p0, long j0) {
  const long off = d.transB ? j0 * d.ldb + p0 : p0 * d.ldb + j0;
  return static_cast<const char*>(d.B) + off * (d.bBf16 ? 2 : 4);
}

}  // namespace

const char* bf16PathName() { return kPathNames[currentPath()]; }

bool setBf16Path(const char* name) {
  if (!std::strcmp(name, "auto")) {
    current.store(autoPath(), std::memory_order_relaxed);
    return true;
  }
  const int p = pathIndex(name);
  if (p < 0 || !available(p)) return false;
  current.store(p, std::memory_order_relaxed);
  return true;
}

std::vector<std::string> bf16Paths() {
  std::vector<std::string> out;
  for (int p = 0; p < kPathCount; p++)
    if (available(p)) out.push_back(kPathNames[p]);
  return out;
}

void gemmBf16Batched(const GemmDesc& d, long batch, long strideA, long strideB, long strideC) {
  GemmDesc g = d;
  g.bf16 = opsOf(currentPath());
  g.roundBf16 = g.bf16 == nullptr;
  gemmBatched(g, batch, strideA, strideB, strideC);
}

void gemmBf16SerialActive(const GemmDesc& d) {
  GemmDesc g = d;
  g.bf16 = opsOf(currentPath());
  g.roundBf16 = g.bf16 == nullptr;
  gemmSerial(g);
}

void gemmBf16Here(bool transA, bool transB, long m, long n, long k, float alpha, const float* A, long lda,
                  const void* B, bool bBf16, long ldb, float beta, float* C, long ldc) {
  GemmDesc g{};
  g.transA = transA;
  g.transB = transB;
  g.M = m;
  g.N = n;
  g.K = k;
  g.alpha = alpha;
  g.A = A;
  g.lda = lda;
  g.B = B;
  g.ldb = ldb;
  g.bBf16 = bBf16;
  g.beta = beta;
  g.C = C;
  g.ldc = ldc;
  gemmBf16SerialActive(g);
}

void gemmBf16Serial(const GemmDesc& d) {
  if (gemmBf16FewEligible(d)) return gemmBf16Few(d, 1);
  const Bf16Ops* ops = d.bf16;
  const int MR = ops->mr, NR = ops->nr;
  const long KC = balancedKc(ops->kc, d.K);
  const long NC = std::min<long>(ops->nc, roundUp(d.N, NR));
  const long MC = std::min<long>(ops->mc, roundUp(d.M, MR));
  const long kpMax = roundUp(std::min(KC, d.K), 32);
  uint16_t* pa = bf16Buf(tlsPackA, MC * kpMax);
  uint16_t* pb = bf16Buf(tlsPackB, NC * kpMax);
  for (long jc = 0; jc < d.N; jc += NC) {
    const long nc = std::min(NC, d.N - jc);
    const long np = (nc + NR - 1) / NR;
    for (long pc = 0; pc < d.K; pc += KC) {
      const long kc = std::min(KC, d.K - pc);
      const long kp = roundUp(kc, 32);
      const float beta = pc == 0 ? d.beta : 1.0f;
      ops->packB(d.transB, bAt(d, pc, jc), d.bBf16, d.ldb, kc, nc, 0, np, pb);
      for (long ic = 0; ic < d.M; ic += MC) {
        const long mc = std::min(MC, d.M - ic);
        ops->packA(d.transA, aAt(d, ic, pc), d.lda, mc, kc, pa);
        ops->macro(mc, nc, kp, 0, np, d.alpha, pa, pb, beta, d.C + ic * d.ldc + jc, d.ldc);
      }
    }
  }
}

bool gemmBf16FewEligible(const GemmDesc& d) {
  return d.bf16 != nullptr && d.bf16->macroFew != nullptr && !d.transA && d.M >= 1 && d.M <= kBf16FewRows && d.K > 0;
}

// Few rows (decoding): A's K blocks are packed once (a few rows), then each thread streams its
// 32-column panels of B, one K block at a time, through a small buffer that stays in L1 and is
// consumed at once by macroFew, instead of packing every column of B into a shared buffer first.
// The K blocks, the packed layouts and each C element's arithmetic are gemmBf16Serial's, so a row
// gets the same bits alone, in a batch of 4 or in a prefill of many rows.
void gemmBf16Few(const GemmDesc& d, int threads) {
  const Bf16Ops* ops = d.bf16;
  const long KC = balancedKc(ops->kc, d.K);
  const long blocks = (d.K + KC - 1) / KC;
  const long kpMax = roundUp(std::min(KC, d.K), 32);
  const long aBlock = roundUp(d.M, ops->mr) * kpMax;
  uint16_t* pa = bf16Buf(tlsPackA, blocks * aBlock);
  for (long b = 0; b < blocks; b++) {
    const long pc = b * KC;
    ops->packA(false, aAt(d, 0, pc), d.lda, d.M, std::min(KC, d.K - pc), pa + b * aBlock);
  }
  // Two panels per step (64 columns, a 74 KB buffer at K = 576, in L2): macroFew overlaps them.
  constexpr long kStep = 2;
  const long panels = (d.N + 31) / 32;
  const long steps = (panels + kStep - 1) / kStep;
  auto run = [&](long sb, long se) {
    uint16_t* buf = bf16Buf(tlsPackB, kStep * 32 * kpMax);
    for (long st = sb; st < se; st++) {
      const long j0 = st * kStep * 32;
      const long nc = std::min<long>(kStep * 32, d.N - j0);
      const long np = (nc + 31) / 32;
      for (long b = 0; b < blocks; b++) {
        const long pc = b * KC;
        const long kc = std::min(KC, d.K - pc);
        const float beta = pc == 0 ? d.beta : 1.0f;
        ops->packB(d.transB, bAt(d, pc, j0), d.bBf16, d.ldb, kc, nc, 0, np, buf);
        ops->macroFew(d.M, nc, roundUp(kc, 32), 0, np, d.alpha, pa + b * aBlock, buf, beta, d.C + j0, d.ldc);
      }
    }
  };
  if (threads <= 1) return run(0, steps);
  const long chunk = std::max<long>(1, steps / (4L * threads));
  parallelDynamic((steps + chunk - 1) / chunk, threads,
                  [&](long t, int) { run(t * chunk, std::min(steps, (t + 1) * chunk)); });
}

// Per (NC, KC) block: the B panels are packed into a shared buffer, then tasks of 64 rows (times a
// group of columns when there are few rows) run with dynamic scheduling, each packing its A rows. Dynamic,
// not a fixed split, so a thread that shares its core with another process takes less of the work;
// which thread runs a task does not change any result (every C element's K order is fixed).
void gemmBf16Parallel(const GemmDesc& d, int want) {
  const Bf16Ops* ops = d.bf16;
  const int MR = ops->mr, NR = ops->nr;
  const long KC = balancedKc(ops->kc, d.K);
  const long NC = std::min<long>(ops->nc, roundUp(d.N, NR));
  const long kpMax = roundUp(std::min(KC, d.K), 32);
  const long taskRows = MR * std::max(1, 64 / MR);
  constexpr long kPackPanels = 4;
  uint16_t* pb = bf16Buf(sharedPackB, NC * kpMax);
  const long mTasks = (d.M + taskRows - 1) / taskRows;
  for (long jc = 0; jc < d.N; jc += NC) {
    const long nc = std::min(NC, d.N - jc);
    const long np = (nc + NR - 1) / NR;
    // Column groups only as needed for about 2 tasks per thread (each group packs its A rows again).
    const long nTasks = std::min(np, std::max(1L, (2L * want + mTasks - 1) / mTasks));
    const long taskPanels = (np + nTasks - 1) / nTasks;
    for (long pc = 0; pc < d.K; pc += KC) {
      const long kc = std::min(KC, d.K - pc);
      const long kp = roundUp(kc, 32);
      const float beta = pc == 0 ? d.beta : 1.0f;
      const void* bBlock = bAt(d, pc, jc);
      parallelDynamic((np + kPackPanels - 1) / kPackPanels, want, [&](long t, int) {
        ops->packB(d.transB, bBlock, d.bBf16, d.ldb, kc, nc, t * kPackPanels, std::min(np, (t + 1) * kPackPanels), pb);
      });
      parallelDynamic(mTasks * nTasks, want, [&](long t, int) {
        const long ic = (t / nTasks) * taskRows, p0 = (t % nTasks) * taskPanels;
        const long mc = std::min(taskRows, d.M - ic);
        uint16_t* pa = bf16Buf(tlsPackA, taskRows * kpMax);
        ops->packA(d.transA, aAt(d, ic, pc), d.lda, mc, kc, pa);
        ops->macro(mc, nc, kp, p0, std::min(np, p0 + taskPanels), d.alpha, pa, pb, beta, d.C + ic * d.ldc + jc, d.ldc);
      });
    }
  }
}

}  // namespace attune

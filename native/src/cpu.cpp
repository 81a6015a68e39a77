// Run-time SIMD selection.
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace attune {
namespace {

bool hasAvx512() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

bool hasAvx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

const IsaOps* choose() {
  const char* forced = std::getenv("ATTUNE_NATIVE_SIMD");
  if (forced && !std::strcmp(forced, "avx2-14x32") && isaAvx2Wide() && hasAvx2()) return isaAvx2Wide();
  const int cap = !forced ? 3 : !std::strcmp(forced, "avx512") ? 3 : !std::strcmp(forced, "avx2") ? 2 : 1;
  if (cap >= 3 && isaAvx512() && hasAvx512()) return isaAvx512();
  if (cap >= 2 && isaAvx2() && hasAvx2()) return isaAvx2();
  return isaBase();
}

IsaOps tuned;

long envLong(const char* name, long fallback, long multiple) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  long x = std::strtol(v, nullptr, 10);
  if (x <= 0) return fallback;
  return (x + multiple - 1) / multiple * multiple;
}

// ATTUNE_GEMM_MC / _KC / _NC override the cache blocking (tuning experiments).
const IsaOps* withOverrides(const IsaOps* base) {
  tuned = *base;
  tuned.mc = static_cast<int>(envLong("ATTUNE_GEMM_MC", base->mc, base->mr));
  tuned.kc = static_cast<int>(envLong("ATTUNE_GEMM_KC", base->kc, 1));
  tuned.nc = static_cast<int>(envLong("ATTUNE_GEMM_NC", base->nc, base->nr));
  return &tuned;
}

}  // namespace

const IsaOps* isa() {
  static const IsaOps* const once = withOverrides(choose());  // thread-safe initialisation
  return once;
}

std::vector<std::string> cpuFeatures() {
  std::vector<std::string> out;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2")) out.push_back("sse4.2");
  if (__builtin_cpu_supports("avx")) out.push_back("avx");
  if (__builtin_cpu_supports("avx2")) out.push_back("avx2");
  if (__builtin_cpu_supports("fma")) out.push_back("fma");
  if (__builtin_cpu_supports("f16c")) out.push_back("f16c");
  if (__builtin_cpu_supports("avx512f")) out.push_back("avx512f");
  if (__builtin_cpu_supports("avx512dq")) out.push_back("avx512dq");
  if (__builtin_cpu_supports("avx512bw")) out.push_back("avx512bw");
  if (__builtin_cpu_supports("avx512vl")) out.push_back("avx512vl");
  if (__builtin_cpu_supports("avx512bf16")) out.push_back("avx512bf16");
#elif defined(__aarch64__)
  out.push_back("neon");
#endif
  return out;
}

}  // namespace attune

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
  const int cap = !forced ? 3 : !std::strcmp(forced, "avx512") ? 3 : !std::strcmp(forced, "avx2") ? 2 : 1;
  if (cap >= 3 && isaAvx512() && hasAvx512()) return isaAvx512();
  if (cap >= 2 && isaAvx2() && hasAvx2()) return isaAvx2();
  return isaBase();
}

const IsaOps* chosen = nullptr;

}  // namespace

const IsaOps* isa() {
  if (!chosen) chosen = choose();
  return chosen;
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

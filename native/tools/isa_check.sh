#!/usr/bin/env bash
# Builds native/tools/isa_check (no Node needed) and runs it at every SIMD level the CPU has.
# Usage: native/tools/isa_check.sh [threads to time ...]   e.g. native/tools/isa_check.sh 2 16
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${ISA_CHECK_DIR:-/tmp/attune-isa-check}"
mkdir -p "$out"
flags=(${ISA_CHECK_FLAGS:--O3 -g -std=c++17 -pthread -fno-math-errno -fPIC})
g++ "${flags[@]}" -mavx2 -mfma -mf16c -c src/isa_avx2.cpp -o "$out/isa_avx2.o" &
g++ "${flags[@]}" -mavx512f -mavx512dq -mavx512bw -mavx512vl -mavx2 -mfma -mf16c -Wno-uninitialized -Wno-maybe-uninitialized -c src/isa_avx512.cpp -o "$out/isa_avx512.o" &
objs=()
for f in cpu pool gemm isa_base elementwise reduce norm attention lce; do
  g++ "${flags[@]}" -c "src/$f.cpp" -o "$out/$f.o" &
  objs+=("$out/$f.o")
done
g++ "${flags[@]}" -c tools/isa_check.cpp -o "$out/isa_check_main.o" &
wait
g++ -pthread -rdynamic "$out/isa_check_main.o" "${objs[@]}" "$out/isa_avx2.o" "$out/isa_avx512.o" -o "$out/isa_check"
status=0
for level in avx512 avx2 scalar; do
  if [ "$level" = scalar ]; then
    ATTUNE_NATIVE_SIMD=$level "$out/isa_check" || status=1  # checked, not timed (slow)
  else
    ATTUNE_NATIVE_SIMD=$level "$out/isa_check" "$@" || status=1
  fi
done
exit $status

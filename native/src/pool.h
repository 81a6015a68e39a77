// The persistent thread pool shared by every kernel. One process-wide pool of N threads (the caller
// of a parallel region is thread 0, N - 1 workers wait on a condition variable after a short spin).
// A region that cannot get the pool (a nested call from inside a region, or a second JS thread
// using the addon at the same time) runs on the calling thread alone, so callers must always
// partition work by the `nthreads` they are given, never by poolSize().
#pragma once
#include <atomic>
#include <cstddef>
#include <type_traits>

namespace attune {

using TaskFn = void (*)(void* ctx, int tid, int nthreads);

// (Re)sizes the pool: threads <= 0 uses std::thread::hardware_concurrency().
void poolInit(int threads);
int poolSize();
// Runs fn(ctx, tid, n) for tid in [0, n) with n = min(want, poolSize()) (1 when the pool is busy).
void poolRun(int want, TaskFn fn, void* ctx);
// Blocks until every thread of the current region has arrived (a no-op in a 1-thread region).
void poolBarrier(int nthreads);

template <class F>
void parallel(int want, F&& f) {
  using Fn = typename std::remove_reference<F>::type;
  poolRun(
      want, [](void* c, int tid, int n) { (*static_cast<Fn*>(c))(tid, n); }, static_cast<void*>(&f));
}

// Threads worth using for `work` units when one thread should get at least `grain` units.
inline int threadsFor(double work, double grain) {
  if (work < 2 * grain) return 1;
  const double t = work / grain;
  const int n = poolSize();
  return t >= n ? n : static_cast<int>(t);
}

// Splits [0, n) into nthreads contiguous ranges; range `tid` is [*begin, *end).
inline void splitRange(long n, int tid, int nthreads, long* begin, long* end) {
  *begin = static_cast<long>((static_cast<long double>(n) * tid) / nthreads);
  *end = static_cast<long>((static_cast<long double>(n) * (tid + 1)) / nthreads);
}

// Runs f(begin, end) over [0, n) split across threads (grain: minimum elements per thread).
template <class F>
void parallelFor(long n, long grain, F&& f) {
  const int want = threadsFor(static_cast<double>(n), static_cast<double>(grain));
  if (want <= 1) {
    if (n > 0) f(0L, n);
    return;
  }
  parallel(want, [&](int tid, int nt) {
    long b, e;
    splitRange(n, tid, nt, &b, &e);
    if (e > b) f(b, e);
  });
}

// Runs f(item, tid) for item in [0, items) with dynamic scheduling (an atomic counter). Only for
// items whose results do not depend on which thread runs them.
template <class F>
void parallelDynamic(long items, int want, F&& f) {
  if (want > items) want = static_cast<int>(items);
  if (want <= 1) {
    for (long i = 0; i < items; i++) f(i, 0);
    return;
  }
  std::atomic<long> next{0};
  parallel(want, [&](int tid, int) {
    for (;;) {
      const long i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= items) break;
      f(i, tid);
    }
  });
}

}  // namespace attune

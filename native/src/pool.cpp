#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpuRelax() { _mm_pause(); }
#elif defined(__aarch64__)
static inline void cpuRelax() { asm volatile("yield"); }
#else
static inline void cpuRelax() {}
#endif

namespace attune {
namespace {

thread_local bool inRegion = false;
constexpr int kSpinBeforeSleep = 1 << 14;

struct Pool {
  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<unsigned long> generation{0};
  std::atomic<bool> stop{false};
  std::atomic<bool> busy{false};
  // The current region.
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int active = 1;
  std::atomic<int> remaining{0};
  // Barrier state.
  std::atomic<int> barrierCount{0};
  std::atomic<unsigned> barrierGen{0};
  int size = 1;

  void workerLoop(int tid, unsigned long seen) {
    inRegion = true;  // a kernel called from a worker runs serially
    for (;;) {
      unsigned long g = generation.load(std::memory_order_acquire);
      int spins = 0;
      while (g == seen && !stop.load(std::memory_order_relaxed) && spins < kSpinBeforeSleep) {
        cpuRelax();
        spins++;
        g = generation.load(std::memory_order_acquire);
      }
      if (g == seen && !stop.load(std::memory_order_relaxed)) {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return generation.load(std::memory_order_acquire) != seen || stop.load(); });
        g = generation.load(std::memory_order_acquire);
      }
      if (stop.load()) return;
      seen = g;
      if (tid < active) {
        fn(ctx, tid, active);
        remaining.fetch_sub(1, std::memory_order_acq_rel);
      }
    }
  }

  void start(int n) {
    size = n;
    stop.store(false);
    // New workers start from the current generation: the last region is not theirs to run.
    const unsigned long g = generation.load();
    for (int t = 1; t < n; t++) workers.emplace_back([this, t, g] { workerLoop(t, g); });
  }

  void shutdown() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop.store(true);
    }
    cv.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
    size = 1;
  }
};

// Leaked on purpose: threads blocked in the pool must never meet a static destructor at exit.
Pool* thePool = nullptr;
std::mutex initMutex;

Pool& pool() {
  if (!thePool) poolInit(0);
  return *thePool;
}

}  // namespace

void poolInit(int threads) {
  std::lock_guard<std::mutex> lock(initMutex);
  int n = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  if (n < 1) n = 1;
  if (n > 256) n = 256;
  if (!thePool) {
    thePool = new Pool();
    thePool->start(n);
    return;
  }
  if (thePool->size == n) return;
  bool expected = false;
  if (!thePool->busy.compare_exchange_strong(expected, true)) return;  // in use: keep the size
  thePool->shutdown();
  thePool->start(n);
  thePool->busy.store(false);
}

int poolSize() { return pool().size; }

void poolRun(int want, TaskFn fn, void* ctx) {
  Pool& p = pool();
  int n = want < p.size ? want : p.size;
  if (n <= 1 || inRegion) {
    fn(ctx, 0, 1);
    return;
  }
  bool expected = false;
  if (!p.busy.compare_exchange_strong(expected, true, std::memory_order_acquire)) {
    fn(ctx, 0, 1);
    return;
  }
  p.fn = fn;
  p.ctx = ctx;
  p.active = n;
  p.remaining.store(n - 1, std::memory_order_relaxed);
  p.barrierCount.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    p.generation.fetch_add(1, std::memory_order_release);
  }
  p.cv.notify_all();
  inRegion = true;
  fn(ctx, 0, n);
  inRegion = false;
  int spins = 0;
  while (p.remaining.load(std::memory_order_acquire) != 0) {
    if (++spins < kSpinBeforeSleep) cpuRelax();
    else std::this_thread::yield();
  }
  p.busy.store(false, std::memory_order_release);
}

void poolBarrier(int nthreads) {
  if (nthreads <= 1) return;
  Pool& p = *thePool;
  const unsigned gen = p.barrierGen.load(std::memory_order_acquire);
  if (p.barrierCount.fetch_add(1, std::memory_order_acq_rel) == nthreads - 1) {
    p.barrierCount.store(0, std::memory_order_relaxed);
    p.barrierGen.fetch_add(1, std::memory_order_release);
    return;
  }
  int spins = 0;
  while (p.barrierGen.load(std::memory_order_acquire) == gen) {
    if (++spins < kSpinBeforeSleep) cpuRelax();
    else std::this_thread::yield();
  }
}

}  // namespace attune

#include "pool.h"

#include <atomic>
#include <condition_variable>
#include <memory>
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

struct alignas(64) Slot {
  // Bumped by the caller for each region this worker takes part in (only for tid < active).
  std::atomic<unsigned long> generation{0};
};

struct Pool {
  std::vector<std::thread> workers;
  std::unique_ptr<Slot[]> slots;
  std::mutex mutex;
  std::condition_variable cv;
  std::atomic<bool> stop{false};
  std::atomic<bool> busy{false};
  // The current region: written by the caller before it bumps the participants' slots, and not
  // touched again until every participant has finished (remaining == 0). Workers outside the
  // region never read it.
  TaskFn fn = nullptr;
  void* ctx = nullptr;
  int active = 1;
  std::atomic<int> remaining{0};
  // Barrier state.
  std::atomic<int> barrierCount{0};
  std::atomic<unsigned> barrierGen{0};
  int size = 1;

  void workerLoop(int tid) {
    inRegion = true;  // a kernel called from a worker runs serially
    std::atomic<unsigned long>& mine = slots[tid].generation;
    // Slots start at 0 and only this worker's regions bump it: a region posted before this
    // thread got scheduled is still seen as new.
    unsigned long seen = 0;
    for (;;) {
      unsigned long g = mine.load(std::memory_order_acquire);
      int spins = 0;
      while (g == seen && !stop.load(std::memory_order_relaxed) && spins < kSpinBeforeSleep) {
        cpuRelax();
        spins++;
        g = mine.load(std::memory_order_acquire);
      }
      if (g == seen && !stop.load(std::memory_order_relaxed)) {
        std::unique_lock<std::mutex> lock(mutex);
        cv.wait(lock, [&] { return mine.load(std::memory_order_acquire) != seen || stop.load(); });
        g = mine.load(std::memory_order_acquire);
      }
      if (stop.load()) return;
      seen = g;
      fn(ctx, tid, active);
      remaining.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  void start(int n) {
    size = n;
    stop.store(false);
    slots.reset(new Slot[n]);
    for (int t = 1; t < n; t++) workers.emplace_back([this, t] { workerLoop(t); });
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
    for (int t = 1; t < n; t++) p.slots[t].generation.fetch_add(1, std::memory_order_release);
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

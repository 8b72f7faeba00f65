#include "engine/runtime/thread_pool.h"

#include <algorithm>

#include <unistd.h>

namespace bitparity {
namespace {

// Iterations a worker polls for new work before it sleeps on the condition variable.
// Matrix products come back to back during a forward pass; a short spin keeps the
// wake-up cost of the next one near zero without burning a core while idle.
constexpr int kSpinIterations = 20000;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace

int ThreadPool::DefaultThreads() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

ThreadPool::ThreadPool(int threads) : n_threads_(threads > 0 ? threads : DefaultThreads()) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
  }
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn, int64_t min_per_thread) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const int64_t per = std::max<int64_t>(1, min_per_thread);
  const int active = static_cast<int>(std::min<int64_t>(n_threads_, (n + per - 1) / per));
  if (active <= 1) {
    fn(0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    fn_ = &fn;
    n_ = n;
    active_ = active;
    pending_.store(active - 1, std::memory_order_relaxed);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  // The calling thread takes range 0.
  fn(0, n / active, 0);
  // Wait for the other ranges: spin first (they usually finish together), then yield
  // so that a descheduled worker on a busy machine gets the core back.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations && !stop_.load(); ++spin) {
      CpuRelax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      if (stop_.load()) return;
      gen = generation_.load(std::memory_order_acquire);
    }
    // Take a consistent snapshot of the call: the caller publishes fn_, n_, active_
    // and the new generation together under mu_.
    const RangeFn* fn;
    int64_t n;
    int active;
    {
      std::lock_guard<std::mutex> lock(mu_);
      gen = generation_.load(std::memory_order_acquire);
      fn = fn_;
      n = n_;
      active = active_;
    }
    if (gen == seen) continue;
    seen = gen;
    if (index < active) {
      const int64_t begin = n * index / active;
      const int64_t end = n * (index + 1) / active;
      (*fn)(begin, end, index);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace bitparity

#include "engine/runtime/thread_pool.h"

#include <algorithm>

#include <unistd.h>

namespace bitparity {
namespace {

// Polls before a waiting thread yields (caller) or sleeps (worker). Matrix products
// come back to back during a forward pass; a short spin keeps the hand-over cheap
// without burning a core while idle.
constexpr int kSpinIterations = 20000;
// Chunks per thread: enough for the running threads to absorb a stalled one.
constexpr int64_t kChunksPerThread = 4;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins, then yields, until pred() holds.
template <typename Pred>
void WaitUntil(Pred pred) {
  for (int spin = 0; !pred(); ++spin) {
    if (spin < kSpinIterations) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
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

void ThreadPool::RunChunks(Job& job, int thread) {
  for (;;) {
    const int64_t c = job.next.fetch_add(1, std::memory_order_relaxed);
    if (c >= job.chunks) return;
    const int64_t begin = c * job.chunk;
    const int64_t end = std::min(job.n, begin + job.chunk);
    (*job.fn)(begin, end, thread);
    job.done.fetch_add(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn, int64_t min_per_thread) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const int64_t per = std::max<int64_t>(1, min_per_thread);
  const int64_t chunks = std::min<int64_t>(n_threads_ * kChunksPerThread, n / per);
  if (n_threads_ == 1 || chunks <= 1) {
    fn(0, n, 0);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.chunk = (n + chunks - 1) / chunks;
  job.chunks = (n + job.chunk - 1) / job.chunk;
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  RunChunks(job, 0);
  WaitUntil([&] { return job.done.load(std::memory_order_acquire) == job.chunks; });
  // No worker may still hold &job when it goes out of scope.
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = nullptr;
  }
  WaitUntil([&] { return in_job_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations && !stop_.load(std::memory_order_relaxed); ++spin) {
      CpuRelax();
      gen = generation_.load(std::memory_order_acquire);
    }
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (gen == seen) {
        wake_.wait(lock, [&] { return stop_.load() || generation_.load() != seen; });
      }
      if (stop_.load()) return;
      seen = generation_.load(std::memory_order_acquire);
      job = job_;
      if (job != nullptr) in_job_.fetch_add(1, std::memory_order_acq_rel);
    }
    if (job != nullptr) {
      RunChunks(*job, index);
      in_job_.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
}

}  // namespace bitparity

#include "engine/runtime/thread_pool.h"

#include <algorithm>

#include <unistd.h>

namespace bitparity {
namespace {

// Polls before a waiting thread yields (caller) or sleeps (worker). Matrix products
// come back to back during a forward pass; a short spin keeps the hand-over cheap
// without burning a core while idle.
constexpr int kSpinIterations = 20000;
// Guided schedule: each chunk is 1 / (2 x threads) of what is left, so chunks shrink
// as the range runs out and the threads finish close together; none is smaller than
// 1 / (64 x threads) of the range. Equal chunks (4 per thread) left one thread idle
// for half a chunk per product on average: 20% of the worker's samples were its spin
// loop in an 8-stream decode (perf, Zen 5, 2 threads). The smallest share 1/16 ->
// 1/64 (the last chunks of a 2560-row product at 8 rows: 80 -> 32 rows): 8-row
// decode step 47.7 -> 47.2 and 48.4 -> 47.9 ms (1/32: 47.4, 48.1; 1/128: 48.0;
// 1/8: 49.6), one process alternating, median of 120; 1 row unchanged (20.44).
constexpr int64_t kShareOfRest = 2;     // a chunk: rest / (kShareOfRest x threads)
constexpr int64_t kSmallestShare = 64;  // at least n / (kSmallestShare x threads)
// Chunks over this many items end on multiples of it, so kernels that take rows in
// tiles of 4 or 16 keep whole tiles.
constexpr int64_t kChunkAlign = 16;

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

int64_t ThreadPool::ChunkSize(const Job& job, int64_t begin) const {
  const int64_t rest = job.n - begin;
  int64_t size = std::max(job.min_chunk, rest / (kShareOfRest * n_threads_));
  if (size > kChunkAlign) size = (size + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
  // A remainder below the smallest chunk joins this one.
  if (rest - size < job.min_chunk) size = rest;
  return size;
}

void ThreadPool::RunChunks(Job& job, int thread) {
  int64_t begin = job.next.load(std::memory_order_relaxed);
  for (;;) {
    if (begin >= job.n) return;
    const int64_t end = begin + ChunkSize(job, begin);
    if (!job.next.compare_exchange_weak(begin, end, std::memory_order_relaxed)) continue;  // begin reloaded
    (*job.fn)(begin, end, thread);
    job.done.fetch_add(end - begin, std::memory_order_acq_rel);
    begin = job.next.load(std::memory_order_relaxed);
  }
}

void ThreadPool::ParallelFor(int64_t n, const RangeFn& fn, int64_t min_per_thread) {
  if (n <= 0) return;
  std::lock_guard<std::mutex> call_lock(call_mu_);
  const int64_t per = std::max<int64_t>(1, min_per_thread);
  if (n_threads_ == 1 || n / per <= 1) {
    fn(0, n, 0);
    return;
  }
  Job job;
  job.fn = &fn;
  job.n = n;
  job.min_chunk = std::max(per, (n + kSmallestShare * n_threads_ - 1) / (kSmallestShare * n_threads_));
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = &job;
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  RunChunks(job, 0);
  WaitUntil([&] { return job.done.load(std::memory_order_acquire) == job.n; });
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

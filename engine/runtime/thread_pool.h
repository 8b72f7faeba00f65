// File: engine/runtime/thread_pool.h
//
// One pool of worker threads per Model. ParallelFor(n, fn) splits [0, n) into one
// contiguous range per thread (the caller's thread takes part) and returns when all
// ranges are done. Workers spin briefly before sleeping, so back-to-back calls
// (one per matrix product, hundreds per token) do not pay a full futex wake-up each.
//
//   pool.ParallelFor(n_rows, [&](int64_t begin, int64_t end, int thread) { ... });
//
// Thread safety: ParallelFor may be called from several threads (several Sessions);
// calls are serialised, so one runs at a time with all workers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace bitparity {

class ThreadPool {
 public:
  using RangeFn = std::function<void(int64_t begin, int64_t end, int thread)>;

  // threads <= 0: the number of online cores.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn over [0, n) split into size() ranges (fewer if n is small); blocks.
  // `min_per_thread`: do not split below this many items per thread.
  void ParallelFor(int64_t n, const RangeFn& fn, int64_t min_per_thread = 1);

  static int DefaultThreads();

 private:
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor callers

  std::mutex mu_;
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int active_ = 0;
};

}  // namespace bitparity

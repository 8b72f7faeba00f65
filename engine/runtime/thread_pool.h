// File: engine/runtime/thread_pool.h
//
// One pool of worker threads per Model. ParallelFor(n, fn) cuts [0, n) into chunks
// that the caller and the workers take from a shared counter, large ones first and
// smaller ones as the range runs out (a guided schedule), and returns when every
// chunk is done. Taking chunks dynamically matters on a busy
// machine: a worker the OS has descheduled delays at most the one chunk it holds,
// because the running threads take the rest. Workers spin briefly before sleeping,
// so back-to-back calls (several per layer and token) rarely pay a futex wake-up.
//
//   pool.ParallelFor(n_rows, [&](int64_t begin, int64_t end, int thread) { ... });
//
// `thread` (0 = the caller) is stable within a call and unique among the threads
// running it, so it can index per-thread scratch. Which thread computes which
// chunk varies from call to call, so `fn` must not let results depend on it.
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

  // Runs fn over [0, n); blocks until done. `min_per_thread`: never hand out chunks
  // smaller than this (small n then runs on fewer threads, or only the caller).
  void ParallelFor(int64_t n, const RangeFn& fn, int64_t min_per_thread = 1);

  static int DefaultThreads();

 private:
  struct Job {
    const RangeFn* fn;
    int64_t n;
    int64_t min_chunk;              // items in the smallest chunk
    std::atomic<int64_t> next{0};   // the first item not yet taken
    std::atomic<int64_t> done{0};   // items finished
  };
  // Items in the chunk that starts at `begin` (thread_pool.cc: the schedule).
  int64_t ChunkSize(const Job& job, int64_t begin) const;
  void RunChunks(Job& job, int thread);
  void WorkerLoop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex call_mu_;  // serialises ParallelFor callers

  std::mutex mu_;  // guards job_ and the hand-over of generation_
  std::condition_variable wake_;
  Job* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> in_job_{0};  // workers holding a pointer to the current job
  std::atomic<bool> stop_{false};
};

}  // namespace bitparity

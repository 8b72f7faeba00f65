// engine/runtime: ThreadPool::ParallelFor covers [0, n) exactly once with contiguous
// chunks, never hands out chunks below min_per_thread, hands out shrinking chunks
// (a guided schedule), never runs two chunks on the
// same thread index at once, serialises concurrent callers, and its destructor joins
// every worker.
#include "engine/runtime/thread_pool.h"

#include <dirent.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

// Threads of this process, from /proc/self/task (Linux).
int ProcessThreadCount() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int n = 0;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  closedir(d);
  return n;
}

struct Range {
  int64_t begin, end;
  int thread;
};

TEST(ThreadPoolTest, CoversEveryIndexExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int64_t n : {0, 1, 2, 3, 17, 1000}) {
      SCOPED_TRACE(::testing::Message() << "threads " << threads << ", n " << n);
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (auto& h : hits) h.store(0);
      std::mutex mu;
      std::vector<Range> ranges;
      pool.ParallelFor(n, [&](int64_t begin, int64_t end, int thread) {
        for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
        std::lock_guard<std::mutex> lock(mu);
        ranges.push_back({begin, end, thread});
      });
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i;
      if (n == 0) {
        EXPECT_TRUE(ranges.empty()) << "fn called for an empty range";
        continue;
      }
      // No chunk below 1 / (64 x threads) of the range, so at most 64 per thread;
      // thread indices in [0, size), no empty chunk.
      EXPECT_LE(ranges.size(), static_cast<size_t>(threads) * 64);
      for (const Range& r : ranges) {
        EXPECT_GE(r.thread, 0);
        EXPECT_LT(r.thread, threads);
        EXPECT_LT(r.begin, r.end);
      }
    }
  }
}

TEST(ThreadPoolTest, ChunksTileTheRangeAndAThreadIndexRunsOneChunkAtATime) {
  ThreadPool pool(4);
  std::mutex mu;
  std::vector<Range> ranges;
  std::vector<std::atomic<int>> busy(4);
  for (auto& b : busy) b.store(0);
  std::atomic<bool> overlap{false};
  pool.ParallelFor(103, [&](int64_t begin, int64_t end, int thread) {
    // Per-thread scratch indexed by `thread` relies on this.
    if (busy[thread].fetch_add(1) != 0) overlap = true;
    std::this_thread::yield();
    busy[thread].fetch_sub(1);
    std::lock_guard<std::mutex> lock(mu);
    ranges.push_back({begin, end, thread});
  });
  EXPECT_FALSE(overlap.load()) << "two chunks ran on one thread index at the same time";
  ASSERT_GE(ranges.size(), 4u);
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  EXPECT_EQ(ranges.front().begin, 0);
  EXPECT_EQ(ranges.back().end, 103);
  for (size_t i = 1; i < ranges.size(); ++i) EXPECT_EQ(ranges[i].begin, ranges[i - 1].end);
}

TEST(ThreadPoolTest, GuidedChunksShrinkAsTheRangeRunsOut) {
  for (int threads : {2, 4}) {
    SCOPED_TRACE(::testing::Message() << "threads " << threads);
    ThreadPool pool(threads);
    constexpr int64_t kN = 10000;
    std::mutex mu;
    std::vector<Range> ranges;
    pool.ParallelFor(kN, [&](int64_t begin, int64_t end, int thread) {
      std::lock_guard<std::mutex> lock(mu);
      ranges.push_back({begin, end, thread});
    });
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    ASSERT_GE(ranges.size(), 3u);
    // The first chunk leaves work for the other threads: 1 / (2 x threads) of the
    // range, rounded up to a multiple of 16.
    EXPECT_LE(ranges[0].end - ranges[0].begin, (kN / (2 * threads) + 15) / 16 * 16);
    const int64_t smallest = (kN + 64 * threads - 1) / (64 * threads);  // 1 / (64 x threads)
    for (size_t i = 0; i + 1 < ranges.size(); ++i) {
      const int64_t size = ranges[i].end - ranges[i].begin;
      EXPECT_GE(size, smallest) << "chunk " << i;
      if (i > 0) {
        EXPECT_LE(size, ranges[i - 1].end - ranges[i - 1].begin) << "chunk " << i << " grew";
      }
      if (size > 16) {
        EXPECT_EQ(ranges[i].end % 16, 0) << "chunk " << i << " ends off a multiple of 16";
      }
    }
    // The last one may hold a remainder below the smallest chunk besides its own share.
    const int64_t last = ranges.back().end - ranges.back().begin;
    EXPECT_GE(last, smallest);
    EXPECT_LT(last, 2 * smallest + 16);
  }
}

TEST(ThreadPoolTest, SmallWorkWithMinPerThreadRunsOnTheCallingThread) {
  ThreadPool pool(4);
  std::vector<Range> ranges;
  std::vector<std::thread::id> who;
  std::mutex mu;
  pool.ParallelFor(
      5,
      [&](int64_t begin, int64_t end, int thread) {
        std::lock_guard<std::mutex> lock(mu);
        ranges.push_back({begin, end, thread});
        who.push_back(std::this_thread::get_id());
      },
      /*min_per_thread=*/10);
  ASSERT_EQ(ranges.size(), 1u);
  EXPECT_EQ(ranges[0].begin, 0);
  EXPECT_EQ(ranges[0].end, 5);
  EXPECT_EQ(ranges[0].thread, 0);
  EXPECT_EQ(who[0], std::this_thread::get_id());
}

TEST(ThreadPoolTest, MinPerThreadLimitsTheNumberOfRanges) {
  ThreadPool pool(8);
  std::mutex mu;
  std::vector<Range> ranges;
  pool.ParallelFor(
      25,
      [&](int64_t begin, int64_t end, int thread) {
        std::lock_guard<std::mutex> lock(mu);
        ranges.push_back({begin, end, thread});
      },
      /*min_per_thread=*/10);
  // floor(25 / 10) = 2 chunks of at least 10 items, not 8 or 32.
  ASSERT_EQ(ranges.size(), 2u);
  int64_t covered = 0;
  for (const Range& r : ranges) {
    EXPECT_GE(r.end - r.begin, 10);
    covered += r.end - r.begin;
  }
  EXPECT_EQ(covered, 25);
}

TEST(ThreadPoolTest, ConcurrentCallersAreSerialisedAndAllComplete) {
  ThreadPool pool(3);
  constexpr int kCallers = 4;
  constexpr int kCallsEach = 200;
  constexpr int64_t kN = 97;
  // in_flight[c]: ranges of caller c running now. A range of one caller must never
  // run while a range of another caller does (calls are serialised).
  std::atomic<int> in_flight[kCallers];
  for (auto& f : in_flight) f.store(0);
  std::atomic<int> overlaps{0};
  std::atomic<int> bad_calls{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c) {
    callers.emplace_back([&, c] {
      for (int call = 0; call < kCallsEach; ++call) {
        std::vector<std::atomic<int>> hits(kN);
        for (auto& h : hits) h.store(0);
        pool.ParallelFor(kN, [&](int64_t begin, int64_t end, int) {
          in_flight[c].fetch_add(1);
          for (int o = 0; o < kCallers; ++o) {
            if (o != c && in_flight[o].load() != 0) overlaps.fetch_add(1);
          }
          for (int64_t i = begin; i < end; ++i) hits[i].fetch_add(1);
          in_flight[c].fetch_sub(1);
        });
        for (int64_t i = 0; i < kN; ++i) {
          if (hits[i].load() != 1) {
            bad_calls.fetch_add(1);
            break;
          }
        }
      }
    });
  }
  for (std::thread& t : callers) t.join();
  EXPECT_EQ(bad_calls.load(), 0);
  EXPECT_EQ(overlaps.load(), 0);
}

TEST(ThreadPoolTest, DestructorJoinsAllWorkers) {
  const int before = ProcessThreadCount();
  ASSERT_GT(before, 0);
  for (int round = 0; round < 20; ++round) {
    auto pool = std::make_unique<ThreadPool>(8);
    EXPECT_EQ(ProcessThreadCount(), before + 7) << "round " << round;  // the caller is thread 0
    if (round % 2 == 0) {
      std::atomic<int64_t> sum{0};
      pool->ParallelFor(1000, [&](int64_t b, int64_t e, int) { sum.fetch_add(e - b); });
      EXPECT_EQ(sum.load(), 1000);
    }
    pool.reset();
    EXPECT_EQ(ProcessThreadCount(), before) << "round " << round << ": workers still alive after ~ThreadPool";
  }
}

TEST(ThreadPoolTest, NonPositiveThreadCountMeansOnlineCores) {
  ThreadPool pool(0);
  EXPECT_EQ(pool.size(), ThreadPool::DefaultThreads());
  EXPECT_GE(pool.size(), 1);
  ThreadPool neg(-3);
  EXPECT_EQ(neg.size(), ThreadPool::DefaultThreads());
}

}  // namespace
}  // namespace bitparity

// The admission gate (services/common/admission_gate.h): slots, the bounded FIFO
// queue, refusal when full, abandonment while waiting, and draining.
#include "services/common/admission_gate.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/services/status_matchers.h"

namespace bitparity {
namespace {

using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

absl::Status NeverAbandoned() { return absl::OkStatus(); }

bool WaitFor(const std::function<bool()>& cond) {
  for (int i = 0; i < 5000 && !cond(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return cond();
}

TEST(AdmissionGate, AdmitsUpToMaxRunningAtOnce) {
  AdmissionGate gate(2, 0);
  auto a = gate.Enter(NeverAbandoned);
  auto b = gate.Enter(NeverAbandoned);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  EXPECT_EQ(gate.running(), 2);
  EXPECT_THAT(gate.Enter(NeverAbandoned),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("server busy: 2 requests running")));
  a->Release();
  EXPECT_EQ(gate.running(), 1);
  EXPECT_THAT(gate.Enter(NeverAbandoned), IsOk());  // released again at once
}

TEST(AdmissionGate, QueueIsBoundedAndFifo) {
  AdmissionGate gate(1, 2);
  auto holder = gate.Enter(NeverAbandoned);
  ASSERT_THAT(holder, IsOk());
  std::vector<int> order;
  std::mutex mu;
  std::vector<std::thread> waiters;
  for (int i = 0; i < 2; ++i) {
    waiters.emplace_back([&, i] {
      auto t = gate.Enter(NeverAbandoned);
      ASSERT_THAT(t, IsOk());
      std::lock_guard<std::mutex> lock(mu);
      order.push_back(i);
    });
    ASSERT_TRUE(WaitFor([&] { return gate.waiting() == i + 1; }));
  }
  EXPECT_THAT(gate.Enter(NeverAbandoned),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2 waiting (queue limit 2)")));
  holder->Release();
  for (auto& t : waiters) t.join();
  EXPECT_EQ(order, (std::vector<int>{0, 1}));
  EXPECT_EQ(gate.running(), 0);
  EXPECT_EQ(gate.waiting(), 0);
}

TEST(AdmissionGate, AbandonedWaiterLeavesWithItsStatus) {
  AdmissionGate gate(1, 1);
  auto holder = gate.Enter(NeverAbandoned);
  std::atomic<bool> give_up{false};
  absl::Status result;
  std::thread waiter([&] {
    auto t = gate.Enter([&] {
      return give_up.load() ? absl::DeadlineExceededError("deadline") : absl::OkStatus();
    });
    result = t.status();
  });
  ASSERT_TRUE(WaitFor([&] { return gate.waiting() == 1; }));
  give_up = true;
  waiter.join();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("deadline")));
  EXPECT_EQ(gate.waiting(), 0);
}

TEST(AdmissionGate, CloseRefusesNewAndWakesWaiters) {
  AdmissionGate gate(1, 1);
  auto holder = gate.Enter(NeverAbandoned);
  absl::Status result;
  std::thread waiter([&] { result = gate.Enter(NeverAbandoned).status(); });
  ASSERT_TRUE(WaitFor([&] { return gate.waiting() == 1; }));
  gate.Close();
  waiter.join();
  EXPECT_THAT(result, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
  EXPECT_THAT(gate.Enter(NeverAbandoned), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
  EXPECT_EQ(gate.running(), 1);  // running work keeps its slot
  EXPECT_FALSE(gate.WaitIdle(10));
  holder->Release();
  EXPECT_TRUE(gate.WaitIdle(1000));
}

TEST(AdmissionGate, ReportsChangesForMetrics) {
  AdmissionGate gate(1, 1);
  std::vector<std::pair<int, int>> seen;
  gate.on_change = [&](int r, int w) { seen.emplace_back(r, w); };
  {
    auto t = gate.Enter(NeverAbandoned);
  }
  EXPECT_EQ(seen, (std::vector<std::pair<int, int>>{{1, 0}, {0, 0}}));
}

}  // namespace
}  // namespace bitparity

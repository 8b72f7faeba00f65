// Engine results -> bitnet.v1 messages (services/common/conversion.h), plus the
// small helpers they share: status mapping and /proc memory parsing.
#include "services/common/conversion.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "base/logits.h"
#include "gmock/gmock.h"
#include "grpcpp/support/status.h"
#include "gtest/gtest.h"
#include "services/common/process_memory.h"
#include "services/common/status_convert.h"
#include "tests/services/status_matchers.h"

namespace bitparity {
namespace {

namespace v1 = bitnet::v1;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

TEST(PackFloats, Float32IsLittleEndianBitExact) {
  const float values[] = {1.0f, -2.5f, std::nanf("")};
  const std::string bytes = PackFloats(values, v1::FLOAT_FORMAT_F32);
  ASSERT_EQ(bytes.size(), 12u);
  // 1.0f = 0x3F800000 -> 00 00 80 3F
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x00\x00\x80\x3F", 4));
  auto back = UnpackFloats(bytes, v1::FLOAT_FORMAT_F32);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ((*back)[0], 1.0f);
  EXPECT_EQ((*back)[1], -2.5f);
  EXPECT_TRUE(std::isnan((*back)[2]));
}

TEST(PackFloats, Float16RoundsToNearestEven) {
  const float values[] = {0.1f, 65504.0f, 1e6f, -0.0f};
  const std::string bytes = PackFloats(values, v1::FLOAT_FORMAT_F16);
  ASSERT_EQ(bytes.size(), 8u);
  EXPECT_EQ(bytes.substr(0, 2), std::string("\x66\x2E", 2));  // 0x2E66
  auto back = UnpackFloats(bytes, v1::FLOAT_FORMAT_F16);
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ((*back)[0], 0.0999755859375f);
  EXPECT_EQ((*back)[1], 65504.0f);
  EXPECT_TRUE(std::isinf((*back)[2]));
  EXPECT_TRUE(std::signbit((*back)[3]));
}

TEST(UnpackFloats, RejectsRaggedBytes) {
  EXPECT_THAT(UnpackFloats("abc", v1::FLOAT_FORMAT_F32),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a multiple of 4")));
}

TEST(FillPositionLogits, FullTopKAndNone) {
  const float logits[] = {0.0f, 3.0f, 1.0f, 2.0f};
  LogitsOutputSpec full;
  v1::PositionLogits p;
  FillPositionLogits(2, 7, 3, logits, full, &p);
  EXPECT_EQ(p.position(), 2);
  EXPECT_EQ(p.token_id(), 7);
  EXPECT_EQ(p.argmax_id(), 1);
  EXPECT_EQ(p.logits().size(), 16u);
  ASSERT_TRUE(p.has_next_token_logprob());
  EXPECT_DOUBLE_EQ(p.next_token_logprob(), LogSoftmaxAt(logits, 3));

  LogitsOutputSpec top;
  top.kind = v1::LogitsOutput::TOP_K;
  top.top_k = 2;
  v1::PositionLogits q;
  FillPositionLogits(3, 7, std::nullopt, logits, top, &q);
  EXPECT_TRUE(q.logits().empty());
  EXPECT_THAT(q.top_ids(), ElementsAre(1, 3));
  EXPECT_THAT(q.top_logits(), ElementsAre(3.0f, 2.0f));
  EXPECT_FALSE(q.has_next_token_logprob());

  LogitsOutputSpec none;
  none.kind = v1::LogitsOutput::NONE;
  v1::PositionLogits r;
  FillPositionLogits(0, 7, 0, logits, none, &r);
  EXPECT_TRUE(r.logits().empty());
  EXPECT_TRUE(r.top_ids().empty());
  EXPECT_TRUE(r.has_next_token_logprob());
}

TEST(FillGeneratedToken, CarriesTextBytesAndLogprobs) {
  GeneratedTokenInfo t;
  t.id = 5;
  t.text = "\xC3";  // half of a 2-byte sequence
  t.logprob = -0.25;
  t.top = {{5, 1.5f, -0.25}, {9, 1.0f, -0.75}};
  v1::GeneratedToken g;
  FillGeneratedToken(3, t, &g);
  EXPECT_EQ(g.index(), 3);
  EXPECT_EQ(g.raw_text(), "\xC3");
  EXPECT_EQ(g.text(), "\xEF\xBF\xBD");
  EXPECT_DOUBLE_EQ(g.logprob(), -0.25);
  ASSERT_EQ(g.top_size(), 2);
  EXPECT_EQ(g.top(1).id(), 9);
}

TEST(FinishReason, EveryEngineReasonHasAProtoValue) {
  EXPECT_EQ(ToProtoFinishReason(GenerationFinish::kLength), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(ToProtoFinishReason(GenerationFinish::kEos), v1::FINISH_REASON_EOS);
  EXPECT_EQ(ToProtoFinishReason(GenerationFinish::kStopSequence), v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(ToProtoFinishReason(GenerationFinish::kStopToken), v1::FINISH_REASON_STOP_TOKEN);
  EXPECT_EQ(ToProtoFinishReason(GenerationFinish::kCancelled), v1::FINISH_REASON_CANCELLED);
}

TEST(StatusConvert, EveryCodeMapsOneToOne) {
  for (int c = 0; c <= 16; ++c) {
    const absl::Status a(static_cast<absl::StatusCode>(c), c == 0 ? "" : "msg");
    const grpc::Status g = ToGrpcStatus(a);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    if (c != 0) {
      EXPECT_EQ(g.error_message(), "msg");
    }
    EXPECT_EQ(FromGrpcStatus(g), a);
  }
}

TEST(ProcessMemory, ParsesVmRssAndVmHwm) {
  auto m = ParseProcStatus("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->resident_bytes, 1024 * 1024);
  EXPECT_EQ(m->peak_resident_bytes, 2048 * 1024);
  EXPECT_THAT(ParseProcStatus("VmRSS:\t1 kB\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("VmHWM")));
  EXPECT_THAT(ParseProcStatus("VmRSS:\tx kB\nVmHWM:\t1 kB\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("VmRSS")));
}

TEST(ProcessMemory, ReadsThisProcess) {
  auto m = ReadProcessMemory();
  ASSERT_THAT(m, IsOk());
  EXPECT_GT(m->resident_bytes, 0);
  EXPECT_GE(m->peak_resident_bytes, m->resident_bytes);
}

TEST(ProcessMemory, ParsesTheParentPid) {
  auto ppid = ParseParentPid("Name:\tx\nPid:\t7\nPPid:\t42\n");
  ASSERT_THAT(ppid, IsOk());
  EXPECT_EQ(*ppid, 42);
  EXPECT_THAT(ParseParentPid("Name:\tx\nPid:\t7\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("PPid")));
}

TEST(ProcessMemory, ReadsLiveChildrenOnly) {
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Lives until the parent closes the pipe.
    close(gate[1]);
    char c;
    while (read(gate[0], &c, 1) > 0) {
    }
    _exit(0);
  }
  close(gate[0]);
  auto m = ReadChildMemory(child);
  EXPECT_THAT(m, IsOk());
  if (m.ok()) {
    EXPECT_GT(m->resident_bytes, 0);
    EXPECT_GE(m->peak_resident_bytes, m->resident_bytes);
  }
  // This process and its parent are not our children.
  EXPECT_THAT(ReadChildMemory(getpid()), StatusIs(absl::StatusCode::kNotFound, HasSubstr("child")));
  EXPECT_THAT(ReadChildMemory(getppid()), StatusIs(absl::StatusCode::kNotFound, HasSubstr("child")));
  const std::vector<ChildMemory> both = ReadChildrenMemory({child, getpid()});
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0].pid, child);

  close(gate[1]);
  // Exited but not reaped: a zombie holds no memory.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, child, &info, WEXITED | WNOWAIT), 0);
  EXPECT_THAT(ReadChildMemory(child), StatusIs(absl::StatusCode::kNotFound, HasSubstr("exited")));
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  EXPECT_THAT(ReadChildMemory(child), StatusIs(absl::StatusCode::kNotFound, HasSubstr("")));
}

TEST(FillModelInfo, ReportsTheServerAndTheSumOverWorkers) {
  BackendInfo info;
  ServiceLimits limits;
  v1::GetModelInfoResponse in_process;
  FillModelInfo(info, limits, {100, 200}, 5, {}, std::nullopt, &in_process);
  EXPECT_FALSE(in_process.has_worker_pool());
  EXPECT_EQ(in_process.memory().resident_bytes(), 100);
  EXPECT_EQ(in_process.memory().peak_resident_bytes(), 200);
  EXPECT_EQ(in_process.memory().session_bytes(), 5);
  EXPECT_EQ(in_process.memory().worker_resident_bytes(), 0);
  EXPECT_EQ(in_process.memory().workers_size(), 0);

  const std::vector<ChildMemory> workers = {{11, {1000, 3000}}, {12, {2000, 2500}}};
  v1::GetModelInfoResponse pooled;
  WorkerPoolStats stats;
  stats.workers = 2;
  stats.ready = 1;
  stats.restarts = 7;
  stats.retried_calls = 3;
  FillModelInfo(info, limits, {100, 200}, 5, workers, stats, &pooled);
  ASSERT_TRUE(pooled.has_worker_pool());
  EXPECT_EQ(pooled.worker_pool().workers(), 2);
  EXPECT_EQ(pooled.worker_pool().ready(), 1);
  EXPECT_EQ(pooled.worker_pool().restarts(), 7);
  EXPECT_EQ(pooled.worker_pool().retried_after_worker_crash(), 3);
  EXPECT_EQ(pooled.memory().resident_bytes(), 100);
  EXPECT_EQ(pooled.memory().worker_resident_bytes(), 3000);
  EXPECT_EQ(pooled.memory().worker_peak_resident_bytes(), 5500);
  ASSERT_EQ(pooled.memory().workers_size(), 2);
  EXPECT_EQ(pooled.memory().workers(1).pid(), 12);
  EXPECT_EQ(pooled.memory().workers(1).resident_bytes(), 2000);
  EXPECT_EQ(pooled.memory().workers(1).peak_resident_bytes(), 2500);
}

}  // namespace
}  // namespace bitparity

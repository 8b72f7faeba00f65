// bitparity compare's own retries (issue 17): a prompt whose call fails
// UNAVAILABLE is measured again, with a backoff, up to CompareOptions::retries
// times; the retries are counted for the side that failed; a prompt still
// failing is listed and makes the verdict ERROR (exit 2), never PASS. Side A is
// the native engine in process on 127.0.0.1, side B a proxy in front of it
// (tests/orchestrator/fake_engine.h) whose Generate answers UNAVAILABLE as told.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "orchestrator/compare.h"
#include "orchestrator/report_json.h"
#include "orchestrator/reports.h"
#include "orchestrator/verdict.h"
#include "services/native/native_backend.h"
#include "tests/common/fixtures.h"
#include "tests/orchestrator/fake_engine.h"
#include "tests/orchestrator/native_loopback.h"
#include "tests/services/test_server.h"

namespace bitparity {
namespace {

using ::bitparity::testing::Defect;
using ::bitparity::testing::FakeEngineServer;
using ::bitparity::testing::FixturePath;
using ::bitparity::testing::LoopbackServer;
using nlohmann::json;

class CompareRetryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!::bitparity::testing::HaveFixtures()) return;
    server_ = ::bitparity::testing::StartNativeLoopback().release();
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    REQUIRE_FIXTURES();
    ASSERT_NE(server_, nullptr);
    proxy_ = std::make_unique<FakeEngineServer>(server_->address(), Defect::kNone);
    a_ = Connect("A", server_->address());
    b_ = Connect("B", proxy_->address());
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    prompts_.source = "test";
    for (const char* text : {"The quick brown fox", "Once upon a time", "def f(x):"}) {
      Prompt p;
      p.id = text;
      p.text = text;
      prompts_.prompts.push_back(p);
    }
    options_.jobs = 1;
    options_.max_new_tokens = 4;
    options_.speed = false;
    options_.retry_backoff_s = 0.01;
  }

  static std::unique_ptr<EngineClient> Connect(const std::string& label, const std::string& address) {
    Endpoint e;
    e.label = label;
    e.address = address;
    auto c = EngineClient::Connect(e, {});
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  json Report() {
    Progress progress(false);
    absl::StatusOr<CompareRun> run = RunCompare(*a_, *b_, prompts_, options_, &progress);
    EXPECT_TRUE(run.ok()) << run.status();
    if (!run.ok()) return json();
    json r = BuildReport(*run, "bitparity compare --test");
    FinalizeVerdict(&r);
    return r;
  }

  static LoopbackServer* server_;
  std::unique_ptr<FakeEngineServer> proxy_;
  std::unique_ptr<EngineClient> a_, b_;
  PromptSet prompts_;
  CompareOptions options_;
};
LoopbackServer* CompareRetryTest::server_ = nullptr;

TEST_F(CompareRetryTest, UnavailableCallsAreRetriedAndCountedForTheirSide) {
  proxy_->engine().FailGenerates(2);  // the first prompt's first two attempts
  const json r = Report();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["verdict"]["exit_code"], 0) << r["verdict"].dump();
  EXPECT_EQ(r["resilience"]["b"]["prompt_retries"], 2) << r["resilience"].dump();
  EXPECT_EQ(r["resilience"]["a"]["prompt_retries"], 0);
  EXPECT_TRUE(r["resilience"]["failed_prompts"].empty());
  EXPECT_EQ(r["prompts"][0]["attempts"], 3);
  ASSERT_EQ(r["prompts"][0]["retry_reasons"].size(), 2u);
  EXPECT_NE(r["prompts"][0]["retry_reasons"][0].get<std::string>().find("side B"), std::string::npos);
  EXPECT_EQ(r["prompts"][1]["attempts"], 1);
  for (const json& p : r["prompts"]) EXPECT_EQ(p["checks"]["generation"]["status"], "pass") << p["id"];
}

TEST_F(CompareRetryTest, PromptStillFailingAfterItsRetriesMakesTheVerdictError) {
  proxy_->engine().FailGenerates(3);  // the first prompt: 1 attempt + 2 retries
  const json r = Report();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["verdict"]["exit_code"], 2) << r["verdict"].dump();
  EXPECT_EQ(r["verdict"]["agree"], false);
  EXPECT_NE(r["verdict"]["summary"].get<std::string>().find("ERROR"), std::string::npos) << r["verdict"].dump();
  ASSERT_EQ(r["resilience"]["failed_prompts"].size(), 1u) << r["resilience"].dump();
  const json& failed = r["resilience"]["failed_prompts"][0];
  EXPECT_EQ(failed["id"], "The quick brown fox");
  EXPECT_EQ(failed["code"], "UNAVAILABLE");
  EXPECT_EQ(failed["attempts"], 3);
  EXPECT_EQ(r["resilience"]["b"]["prompt_retries"], 2);
  // The other prompts were measured: only the missing one is missing.
  EXPECT_TRUE(r["prompts"][1]["error"].is_null());
  EXPECT_TRUE(r["prompts"][2]["error"].is_null());
  EXPECT_NE(RenderMarkdown(r).find("**Verdict:** ERROR"), std::string::npos);
  EXPECT_NE(RenderText(r, false).find("1 prompt(s) missing after retries"), std::string::npos);
}

TEST_F(CompareRetryTest, NoRetriesMeansTheFirstFailureStands) {
  options_.retries = 0;
  proxy_->engine().FailGenerates(1);
  const json r = Report();
  ASSERT_TRUE(r.is_object());
  EXPECT_EQ(r["verdict"]["exit_code"], 2);
  EXPECT_EQ(r["resilience"]["b"]["prompt_retries"], 0);
  EXPECT_EQ(r["resilience"]["failed_prompts"][0]["attempts"], 1);
}

}  // namespace
}  // namespace bitparity

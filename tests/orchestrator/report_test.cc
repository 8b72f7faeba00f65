// Reports built from a hand-made comparison (no servers): the JSON validates
// against orchestrator/schema/report.schema.json, the verdict follows the checks,
// JUnit parses as JUnit, the HTML is self-contained, baselines flag regressions.
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "orchestrator/baseline.h"
#include "orchestrator/report_json.h"
#include "orchestrator/reports.h"
#include "orchestrator/verdict.h"
#include "tests/orchestrator/json_schema_validator.h"
#include "tests/orchestrator/junit_lite.h"

namespace bitparity {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

json LoadSchema() {
  std::ifstream in(BITPARITY_SCHEMA_PATH);
  return json::parse(in);
}

bitnet::v1::GetModelInfoResponse Info(const std::string& name) {
  bitnet::v1::GetModelInfoResponse i;
  i.mutable_engine()->set_name(name);
  i.mutable_engine()->set_version("0.1.0");
  i.mutable_engine()->mutable_build()->set_simd_path("scalar");
  auto* m = i.mutable_model();
  m->set_architecture("bitnet-b1.58");
  m->set_sha256(std::string(64, 'a'));
  m->set_n_layer(2);
  m->set_n_embd(4);
  m->set_n_vocab(3);
  i.mutable_limits()->set_max_context(64);
  i.mutable_memory()->set_resident_bytes(1 << 20);
  return i;
}

void AddRow(DriftSeries* s, int pos, const std::vector<float>& a, const std::vector<float>& b) {
  const RowDiff d = CompareRows(a, b, 2);
  s->position.push_back(pos);
  s->token.push_back(pos + 1);
  s->max_abs.push_back(d.max_abs);
  s->mean_abs.push_back(d.mean_abs);
  s->rms.push_back(d.rms);
  s->cosine.push_back(d.cosine);
  s->kl.push_back(d.kl);
  s->topk_overlap.push_back(d.topk_overlap);
  s->top1_agree.push_back(d.top1_agree);
  s->dp_next.push_back(0.001 * pos);
}

// A run of two prompts; `drift` scales side A's difference from B.
CompareRun MakeRun(float drift) {
  CompareRun run;
  run.a.label = "A";
  run.a.address = "127.0.0.1:1";
  run.b.label = "B";
  run.b.address = "127.0.0.1:2";
  run.info_a = Info("engine-a");
  run.info_b = Info("engine-b");
  run.model_check = CheckModels(run.info_a, run.info_b);
  run.prompt_source = "test";
  run.prompt_sha256 = std::string(64, 'b');
  run.started_utc = "2026-01-01T00:00:00Z";
  for (int k = 0; k < 2; ++k) {
    PromptResult p;
    p.prompt.id = "p" + std::to_string(k);
    p.prompt.text = "hello <world> & \"friends\"";
    p.ids = {1, 2, 0};
    p.tokenization.checked = true;
    p.tokenization.n_a = p.tokenization.n_b = 3;
    for (int pos = 0; pos < 3; ++pos) {
      const std::vector<float> b = {0.5f, 1.0f + pos, -1.0f};
      const std::vector<float> a = {0.5f + drift, 1.0f + pos, -1.0f - drift};
      const std::vector<float> noise = {0.52f, 1.0f + pos, -1.01f};
      AddRow(&p.drift.ab, pos, a, b);
      AddRow(&p.drift.noise, pos, noise, b);
    }
    p.drift.measured = true;
    p.drift.n_predicted = 2;
    p.drift.nll_a = p.drift.nll_b = p.drift.nll_noise = 2.0;
    p.generation.measured = true;
    p.generation.ids_a = p.generation.ids_b = {2, 2};
    p.generation.exact_match = true;
    p.generation.common_prefix = 2;
    p.generation.finish_a = p.generation.finish_b = "length";
    JudgePrompt(run.options.thresholds, &p);
    run.prompts.push_back(p);
  }
  return run;
}

json Finished(const CompareRun& run) {
  json r = BuildReport(run, "bitparity compare --test");
  FinalizeVerdict(&r);
  return r;
}

TEST(Report, AgreeingRunValidatesAndExitsZero) {
  const json r = Finished(MakeRun(0));
  const auto errors = testing::ValidateJson(r, LoadSchema());
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(r["verdict"]["exit_code"], 0);
  EXPECT_EQ(r["reference_side"], "b");
  EXPECT_EQ(r["overall"]["drift"]["max_abs"]["max"], 0.0);
}

TEST(Report, DriftBeyondTheNoiseFloorFailsWithReasons) {
  const json r = Finished(MakeRun(0.5f));
  EXPECT_TRUE(testing::ValidateJson(r, LoadSchema()).empty());
  EXPECT_EQ(r["verdict"]["exit_code"], 1);
  EXPECT_EQ(r["verdict"]["failed_checks"], json::array({"drift"}));
  EXPECT_THAT(r["prompts"][0]["checks"]["drift"]["reasons"][0].get<std::string>(), HasSubstr("max|Δlogit| 0.5"));
}

TEST(Report, ConnectionLossIsExitTwo) {
  CompareRun run = MakeRun(0);
  run.connection_lost = true;
  EXPECT_EQ(Finished(run)["verdict"]["exit_code"], 2);
}

TEST(Report, MissingPromptIsAnErrorWithExitTwoAndIsListed) {
  CompareRun run = MakeRun(0);
  PromptResult& p = run.prompts[1];
  p = PromptResult();
  p.prompt.id = "p1";
  p.prompt.text = "hello";
  p.error_code = "UNAVAILABLE";
  p.error_message = "side B (127.0.0.1:2) Generate: UNAVAILABLE: worker died";
  p.attempts = 3;
  p.retry_reasons = {"first", "second"};
  JudgePrompt(run.options.thresholds, &p);
  run.resilience_b.prompt_retries = 2;
  run.resilience_b.server_retries = 5;
  run.resilience_b.worker_restarts = 4;
  const json r = Finished(run);
  const auto errors = testing::ValidateJson(r, LoadSchema());
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(r["verdict"]["exit_code"], 2);
  EXPECT_THAT(r["verdict"]["summary"].get<std::string>(), HasSubstr("ERROR"));
  json errors_check;
  for (const json& c : r["checks"]) {
    if (c["name"] == "errors") errors_check = c;
  }
  EXPECT_EQ(errors_check["status"], "error");
  EXPECT_THAT(errors_check["summary"].get<std::string>(), HasSubstr("1 of 2 prompt(s) missing after retries"));
  ASSERT_EQ(r["resilience"]["failed_prompts"].size(), 1u);
  EXPECT_EQ(r["resilience"]["failed_prompts"][0]["attempts"], 3);
  EXPECT_EQ(r["resilience"]["b"]["worker_restarts"], 4);
  EXPECT_EQ(r["resilience"]["a"]["worker_restarts"], nullptr);
  EXPECT_THAT(RenderText(r, false), HasSubstr("B: 2 prompt retries, 5 server retries, 4 worker restarts"));
  EXPECT_THAT(RenderHtml(r), HasSubstr("ERROR"));
}

TEST(Report, SchemaRejectsBrokenReports) {
  const json schema = LoadSchema();
  json r = Finished(MakeRun(0));
  json missing = r;
  missing.erase("verdict");
  EXPECT_FALSE(testing::ValidateJson(missing, schema).empty());
  json wrong = r;
  wrong["prompts"][0]["drift"]["summary"]["kl"]["mean"] = "zero";
  EXPECT_FALSE(testing::ValidateJson(wrong, schema).empty());
  json extra = r;
  extra["surprise"] = 1;
  EXPECT_FALSE(testing::ValidateJson(extra, schema).empty());
}

// Every status the schema allows reads back as itself, and nothing else reads as a status.
TEST(Report, CheckStatusSpellingsAreTheSchemas) {
  const json spellings = LoadSchema()["$defs"]["check"]["properties"]["status"]["enum"];
  ASSERT_EQ(spellings.size(), 6u);
  for (const json& s : spellings) {
    const std::optional<CheckStatus> status = ParseCheckStatus(s.get<std::string>());
    ASSERT_TRUE(status.has_value()) << s;
    EXPECT_EQ(CheckStatusName(*status), s.get<std::string>());
    EXPECT_EQ(ReadCheckStatus(s), status);
  }
  EXPECT_EQ(ParseCheckStatus("PASS"), std::nullopt);
  EXPECT_EQ(ParseCheckStatus(""), std::nullopt);
  EXPECT_EQ(ReadCheckStatus(json(1)), std::nullopt);
  EXPECT_EQ(ReadCheckStatus(json(nullptr)), std::nullopt);
}

TEST(Report, JUnitHasOneCasePerPromptAndCheck) {
  const std::string xml = RenderJUnit(Finished(MakeRun(0.5f)));
  testing::JUnitSummary s;
  std::string error;
  ASSERT_TRUE(testing::CheckJUnit(xml, &s, &error)) << error << "\n" << xml;
  EXPECT_EQ(s.suites, 4);                 // run checks + tokenization, drift, generation
  EXPECT_EQ(s.failures, 1 + 2);           // the drift check, and two prompts' drift
  EXPECT_THAT(s.failed_cases, ::testing::Contains("bitparity.drift/p0"));
}

TEST(Report, HtmlIsSelfContained) {
  const std::string html = RenderHtml(Finished(MakeRun(0.5f)));
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("DISAGREE"));
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_THAT(html, HasSubstr("hello &lt;world&gt; &amp; &quot;friends&quot;"));
}

// GetModelInfo's lint findings reach every rendering, per side, and the schema
// accepts them (and refuses a severity it does not know).
TEST(Report, ListsEachSidesModelLintFindings) {
  CompareRun run = MakeRun(0);
  bitnet::v1::ModelLintFinding* f = run.info_b.mutable_model()->add_lint_findings();
  f->set_severity("warning");
  f->set_code("TOKENIZER_PRE_MISSING");
  f->set_message("BPE vocabulary without tokenizer.ggml.pre <degrades>");
  f->set_fix("--override-kv tokenizer.ggml.pre=str:llama-bpe");
  bitnet::v1::MetadataOverride* o = run.info_b.mutable_model()->add_metadata_overrides();
  o->set_key("tokenizer.ggml.pre");
  o->set_type("str");
  o->set_value("llama-bpe");
  const json r = Finished(run);
  EXPECT_EQ(r["sides"]["b"]["info"]["model"]["lint_findings"][0]["code"], "TOKENIZER_PRE_MISSING");
  EXPECT_TRUE(r["sides"]["a"]["info"]["model"]["lint_findings"].empty());
  EXPECT_EQ(r["sides"]["b"]["info"]["model"]["metadata_overrides"][0]["value"], "llama-bpe");
  const json schema = LoadSchema();
  EXPECT_EQ(testing::ValidateJson(r, schema), std::vector<std::string>{});
  json bad = r;
  bad["sides"]["b"]["info"]["model"]["lint_findings"][0]["severity"] = "fatal";
  EXPECT_FALSE(testing::ValidateJson(bad, schema).empty());
  const std::string line =
      "warning TOKENIZER_PRE_MISSING: BPE vocabulary without tokenizer.ggml.pre <degrades> (fix: "
      "--override-kv tokenizer.ggml.pre=str:llama-bpe)";
  EXPECT_THAT(RenderText(r, false), HasSubstr("model lint, side B: " + line));
  EXPECT_THAT(RenderMarkdown(r), HasSubstr("model lint, side B: warning TOKENIZER_PRE_MISSING"));
  EXPECT_THAT(RenderHtml(r), HasSubstr("model lint, side B: warning TOKENIZER_PRE_MISSING: BPE vocabulary "
                                       "without tokenizer.ggml.pre &lt;degrades&gt;"));
  EXPECT_EQ(RenderText(r, false).find("model lint, side A"), std::string::npos);
  // Only B runs with the override: the model check says so.
  const ModelCheck check = CheckModels(run.info_a, run.info_b);
  EXPECT_EQ(check.status, CheckStatus::kWarn);
  EXPECT_THAT(check.messages, ::testing::Contains(HasSubstr("A none, B tokenizer.ggml.pre=str:llama-bpe")));
}

TEST(Report, MarkdownAndTextCarryTheVerdict) {
  const json r = Finished(MakeRun(0.5f));
  EXPECT_THAT(RenderMarkdown(r), HasSubstr("**Verdict:** FAIL"));
  EXPECT_THAT(RenderText(r, false), HasSubstr("VERDICT: FAIL disagree (exit 1)"));
}

TEST(Report, BaselineFlagsDriftRegression) {
  const json old = Finished(MakeRun(0));
  json now = BuildReport(MakeRun(0.5f), "x");
  Thresholds t;
  ApplyBaseline(&now, old, "old.json", t);
  FinalizeVerdict(&now);
  EXPECT_TRUE(testing::ValidateJson(now, LoadSchema()).empty());
  EXPECT_FALSE(now["baseline"]["pass"].get<bool>());
  EXPECT_GE(now["baseline"]["regressions"].size(), 1u);
  EXPECT_THAT(now["verdict"]["failed_checks"].dump(), HasSubstr("baseline"));
  // And no regression against itself.
  json same = BuildReport(MakeRun(0), "x");
  ApplyBaseline(&same, old, "old.json", t);
  EXPECT_TRUE(same["baseline"]["pass"].get<bool>());
}

TEST(Verdict, GenerationDivergenceAtANearTiePasses) {
  PromptResult p;
  p.generation.measured = true;
  p.generation.ids_a = {1, 2};
  p.generation.ids_b = {1, 3};
  p.generation.common_prefix = 1;
  NearTie t;
  t.index = 1;
  t.token_a = 2;
  t.token_b = 3;
  t.b_in_a_top = t.a_in_b_top = true;
  t.gap_a = 0.01;
  t.gap_b = 0.02;
  t.near_tie = true;
  p.generation.divergence = t;
  Thresholds th;
  JudgePrompt(th, &p);
  EXPECT_EQ(p.generation_check.status, CheckStatus::kPass);
  EXPECT_THAT(p.generation_check.reasons[0], HasSubstr("near tie"));
  PromptResult q = p;
  q.generation_check = CheckResult();
  q.generation.divergence->near_tie = false;
  q.generation.divergence->a_in_b_top = false;
  JudgePrompt(th, &q);
  EXPECT_EQ(q.generation_check.status, CheckStatus::kFail);
  EXPECT_THAT(q.generation_check.reasons[0], HasSubstr("not a near tie"));
}

TEST(Verdict, ModelCheckRefusesDifferentShapesAndWarnsOnFaults) {
  auto a = Info("x"), b = Info("y");
  b.mutable_model()->set_n_vocab(4);
  EXPECT_EQ(CheckModels(a, b).status, CheckStatus::kFail);
  auto c = Info("y");
  c.set_fault_injection("rope-offset:1");
  const ModelCheck m = CheckModels(a, c);
  EXPECT_EQ(m.status, CheckStatus::kWarn);
  EXPECT_THAT(m.messages[0], HasSubstr("--inject-fault rope-offset:1"));
}

}  // namespace
}  // namespace bitparity

// compare --shard I/N and bitparity merge: the split and the merge's
// refusals. That a merged report equals an unsharded run's is shown end to end by
// tests/deploy/nightly_local_test.sh (real servers).
#include <set>

#include "gtest/gtest.h"
#include "orchestrator/merge.h"
#include "orchestrator/shard.h"

namespace bitparity {
namespace {

PromptSet Set(int n) {
  PromptSet s;
  s.source = "test";
  s.sha256 = std::string(64, 'a');
  for (int i = 0; i < n; ++i) s.prompts.push_back(Prompt{"p" + std::to_string(i), "", std::string("text"), {}, {}, ""});
  return s;
}

TEST(Shard, ParsesIOverN) {
  auto s = ParseShard("2/5");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->index, 2);
  EXPECT_EQ(s->count, 5);
  for (const char* bad : {"5/5", "-1/3", "1/0", "1", "a/b", "1/2/3", ""}) EXPECT_FALSE(ParseShard(bad).ok()) << bad;
}

TEST(Shard, StableHashOfTheId) {
  // FNV-1a 64 of "a" is 0xaf63dc4c8601ec8c (published test vector).
  EXPECT_EQ(ShardOfId("a", 1 << 16), static_cast<int>(0xaf63dc4c8601ec8cull % (1 << 16)));
  EXPECT_EQ(ShardOfId("prose-fox", 7), ShardOfId("prose-fox", 7));
  EXPECT_EQ(ShardOfId("anything", 1), 0);
}

TEST(Shard, EveryPromptInExactlyOneShardInOrder) {
  const int n = 4;
  std::multiset<std::string> seen;
  for (int i = 0; i < n; ++i) {
    PromptSet s = Set(50);
    nlohmann::json meta = ApplyShard(&s, Shard{i, n});
    EXPECT_EQ(meta["total_prompts"], 50);
    EXPECT_EQ(meta["order"].size(), 50u);
    EXPECT_EQ(meta["order"][0], "p0");
    EXPECT_EQ(s.sha256, std::string(64, 'a'));  // provenance of the whole set
    EXPECT_GT(s.prompts.size(), 0u);
    int last = -1;
    for (const Prompt& p : s.prompts) {
      seen.insert(p.id);
      const int k = std::stoi(p.id.substr(1));
      EXPECT_GT(k, last);  // the set's order is kept
      last = k;
    }
  }
  EXPECT_EQ(seen.size(), 50u);
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 50u);
}

nlohmann::json ShardReport(int index, int count, std::vector<std::string> ids, std::vector<std::string> order) {
  nlohmann::json r;
  r["shard"] = {{"index", index}, {"count", count}, {"total_prompts", order.size()}, {"order", order}};
  r["prompt_set"] = {{"source", "t"}, {"sha256", std::string(64, 'a')}, {"count", ids.size()}};
  r["settings"] = {{"mode", "batch"}};
  r["thresholds"] = nlohmann::json::object();
  r["sides"] = {{"a", {{"info", {{"model", {{"sha256", "x"}, {"n_layer", 2}}}}}}},
                {"b", {{"info", {{"model", {{"sha256", "x"}, {"n_layer", 2}}}}}}}};
  r["prompts"] = nlohmann::json::array();
  for (const auto& id : ids) r["prompts"].push_back({{"id", id}});
  return r;
}

TEST(Merge, RefusesIncompleteOrForeignShards) {
  const std::vector<std::string> order = {"x", "y", "z"};
  auto s0 = ShardReport(0, 2, {"x"}, order), s1 = ShardReport(1, 2, {"y", "z"}, order);
  auto msg = [](const absl::StatusOr<nlohmann::json>& r) { return std::string(r.status().message()); };

  auto missing = MergeShardReports({s0}, {"s0.json"}, "merge");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(msg(missing).find("shard 1/2 is missing"), std::string::npos);

  auto twice = MergeShardReports({s0, s0}, {"a.json", "b.json"}, "merge");
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(msg(twice).find("given twice"), std::string::npos);

  auto other = s1;
  other["sides"]["b"]["info"]["model"]["sha256"] = "y";
  auto foreign = MergeShardReports({s0, other}, {"s0.json", "s1.json"}, "merge");
  ASSERT_FALSE(foreign.ok());
  EXPECT_NE(msg(foreign).find("side B model"), std::string::npos);

  auto lost = ShardReport(1, 2, {"y"}, order);  // z ran nowhere
  auto gap = MergeShardReports({s0, lost}, {"s0.json", "s1.json"}, "merge");
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(msg(gap).find("'z' is in no shard"), std::string::npos);

  nlohmann::json unsharded = s0;
  unsharded.erase("shard");
  auto plain = MergeShardReports({unsharded}, {"run.json"}, "merge");
  ASSERT_FALSE(plain.ok());
  EXPECT_NE(msg(plain).find("not a shard report"), std::string::npos);
}

}  // namespace
}  // namespace bitparity

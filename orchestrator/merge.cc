#include "orchestrator/merge.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "orchestrator/report_json.h"
#include "orchestrator/thresholds.h"

namespace bitparity {
using nlohmann::json;

namespace {

// Adds one shard's resilience counts to the merged ones: counts sum, a worker
// restart count stays null only while no shard reported one, failed prompts
// are listed from every shard.
void AddResilience(const json& shard, json* merged) {
  if (!shard.is_object()) return;
  for (const char* side : {"a", "b"}) {
    const json& from = shard[side];
    json& to = (*merged)[side];
    to["prompt_retries"] = to["prompt_retries"].get<int64_t>() + from.value("prompt_retries", int64_t{0});
    to["server_retries"] = to["server_retries"].get<int64_t>() + from.value("server_retries", int64_t{0});
    if (from["worker_restarts"].is_number_integer()) {
      const int64_t before = to["worker_restarts"].is_null() ? 0 : to["worker_restarts"].get<int64_t>();
      to["worker_restarts"] = before + from["worker_restarts"].get<int64_t>();
    }
  }
  for (const json& f : shard["failed_prompts"]) (*merged)["failed_prompts"].push_back(f);
}

// The shards' model checks combine to the worst: fail over warn over pass.
int StatusRank(std::optional<CheckStatus> s) { return s == CheckStatus::kFail ? 2 : (s == CheckStatus::kWarn ? 1 : 0); }

std::string ModelSha(const json& r, const char* side) {
  const json& info = r["sides"][side]["info"];
  if (!info.is_object() || !info.contains("model")) return "";
  return info["model"].value("sha256", "");
}

}  // namespace

absl::StatusOr<json> MergeShardReports(const std::vector<json>& reports, const std::vector<std::string>& paths,
                                       const std::string& command_line) {
  if (reports.empty()) return absl::InvalidArgumentError("merge: no reports given");
  // Every report a shard of the same comparison; every shard exactly once.
  std::map<int, size_t> by_index;
  int count = -1;
  for (size_t i = 0; i < reports.size(); ++i) {
    const json& r = reports[i];
    const std::string& path = paths[i];
    if (!r.contains("shard") || !r["shard"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is not a shard report (it was not written by compare --shard I/N)"));
    }
    const json& s = r["shard"];
    const int idx = s["index"].get<int>(), n = s["count"].get<int>();
    if (count < 0) count = n;
    if (n != count) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is shard ", idx, "/", n, " but '", paths[0], "' is one of ", count));
    }
    if (!by_index.emplace(idx, i).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("shard ", idx, "/", n, " given twice: '", paths[by_index[idx]], "' and '", path, "'"));
    }
    const json& r0 = reports[0];
    struct Same {
      const char* what;
      json a, b;
    };
    const Same same[] = {
        {"prompt set (sha256)", r["prompt_set"]["sha256"], r0["prompt_set"]["sha256"]},
        {"prompt order", s["order"], r0["shard"]["order"]},
        {"settings", r["settings"], r0["settings"]},
        {"thresholds", r["thresholds"], r0["thresholds"]},
        {"side A model (sha256)", ModelSha(r, "a"), ModelSha(r0, "a")},
        {"side B model (sha256)", ModelSha(r, "b"), ModelSha(r0, "b")},
    };
    for (const Same& c : same) {
      if (c.a != c.b) {
        return absl::InvalidArgumentError(absl::StrCat("'", path, "' and '", paths[0], "' differ in their ", c.what,
                                                       ": they are not shards of one comparison"));
      }
    }
  }
  for (int i = 0; i < count; ++i) {
    if (!by_index.count(i)) {
      return absl::InvalidArgumentError(absl::StrCat("shard ", i, "/", count, " is missing (", reports.size(),
                                                     " report(s) given)"));
    }
  }

  // Per-prompt results back in the set's order.
  std::map<std::string, const json*> by_id;
  for (const json& r : reports) {
    for (const json& p : r["prompts"]) {
      const std::string id = p["id"].get<std::string>();
      if (!by_id.emplace(id, &p).second) {
        return absl::InvalidArgumentError(absl::StrCat("prompt '", id, "' is in more than one shard"));
      }
    }
  }
  const json& first = reports[by_index.begin()->second];
  const json& order = first["shard"]["order"];
  json prompts = json::array();
  for (const json& idj : order) {
    const std::string id = idj.get<std::string>();
    auto it = by_id.find(id);
    if (it == by_id.end()) {
      return absl::InvalidArgumentError(absl::StrCat("prompt '", id, "' is in no shard's results"));
    }
    prompts.push_back(*it->second);
    by_id.erase(it);
  }
  if (!by_id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt '", by_id.begin()->first, "' is not in the prompt set the shards were made from"));
  }

  json m = first;  // provenance (sides, settings, thresholds, prompt set) is the same in every shard
  m.erase("shard");
  m.erase("verdict");
  m["command"] = command_line;
  m["prompt_set"]["count"] = prompts.size();
  m["prompts"] = std::move(prompts);
  json shards = json::array();
  json warnings = json::array();
  bool lost = false;
  double wall = 0;
  std::string created = first["created_utc"].get<std::string>();
  json speed = nullptr, speed_error = nullptr, invariance = nullptr;
  CheckStatus mc_status = CheckStatus::kPass;
  json mc_messages = json::array();
  std::set<std::string> seen_messages;
  json resilience = {{"a", {{"prompt_retries", 0}, {"server_retries", 0}, {"worker_restarts", nullptr}}},
                     {"b", {{"prompt_retries", 0}, {"server_retries", 0}, {"worker_restarts", nullptr}}},
                     {"failed_prompts", json::array()}};
  for (const auto& [idx, i] : by_index) {
    const json& r = reports[i];
    shards.push_back({{"index", idx},
                      {"count", count},
                      {"report", paths[i]},
                      {"prompts", r["prompts"].size()},
                      {"created_utc", r["created_utc"]},
                      {"wall_s", r["wall_s"]},
                      {"host", r["host"]},
                      {"command", r["command"]},
                      {"has_speed", r["speed"].is_object()}});
    for (const json& w : r["warnings"]) warnings.push_back(w);
    AddResilience(r["resilience"], &resilience);
    lost = lost || r.value("connection_lost", false);
    wall = std::max(wall, r["wall_s"].get<double>());
    created = std::min(created, r["created_utc"].get<std::string>());
    if (speed.is_null() && r["speed"].is_object()) speed = r["speed"];
    // Each shard probes its own first prompts; the first shard's that has any wins.
    if (invariance.is_null() && r.contains("batch_invariance") && r["batch_invariance"].is_object()) {
      invariance = r["batch_invariance"];
    }
    if (speed_error.is_null() && !r["speed_error"].is_null()) speed_error = r["speed_error"];
    const json& mc = r["model_check"];
    const std::optional<CheckStatus> status = ParseCheckStatus(mc["status"].get<std::string>());
    if (StatusRank(status) > StatusRank(mc_status)) mc_status = *status;
    for (const json& msg : mc["messages"]) {
      if (seen_messages.insert(msg.get<std::string>()).second) mc_messages.push_back(msg);
    }
  }
  m["shards"] = shards;
  m["warnings"] = warnings;
  m["resilience"] = resilience;
  m["connection_lost"] = lost;
  m["wall_s"] = wall;
  m["created_utc"] = created;
  m["speed"] = speed;
  m["batch_invariance"] = invariance;
  // A shard that measured speed wins over one whose speed failed.
  m["speed_error"] = speed.is_object() ? json(nullptr) : speed_error;
  m["model_check"] = {{"status", CheckStatusName(mc_status)}, {"messages", mc_messages}};
  m["baseline"] = nullptr;
  const int n_layer = m["sides"]["a"]["info"]["model"].value("n_layer", 0);
  m["overall"] = OverallFromPrompts(m["prompts"], n_layer);
  Thresholds t;
  if (absl::Status s = t.MergeJson(m["thresholds"]); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", paths[0], "': thresholds: ", s.message()));
  }
  m["checks"] = SummarizeChecks(m, t);
  return m;
}

}  // namespace bitparity

#include "orchestrator/shard.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace bitparity {

absl::StatusOr<Shard> ParseShard(const std::string& spec) {
  std::vector<std::string> parts = absl::StrSplit(spec, '/');
  Shard s;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &s.index) || !absl::SimpleAtoi(parts[1], &s.count) ||
      s.count < 1 || s.index < 0 || s.index >= s.count) {
    return absl::InvalidArgumentError(
        absl::StrCat("--shard '", spec, "': expected I/N with 0 <= I < N (e.g. 0/4 for the first of four)"));
  }
  return s;
}

int ShardOfId(const std::string& id, int count) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  for (unsigned char c : id) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return static_cast<int>(h % static_cast<uint64_t>(count));
}

nlohmann::json ApplyShard(PromptSet* set, const Shard& shard) {
  nlohmann::json order = nlohmann::json::array();
  std::vector<Prompt> kept;
  for (Prompt& p : set->prompts) {
    order.push_back(p.id);
    if (ShardOfId(p.id, shard.count) == shard.index) kept.push_back(std::move(p));
  }
  const size_t total = set->prompts.size();
  set->prompts = std::move(kept);
  return {{"index", shard.index}, {"count", shard.count}, {"total_prompts", total}, {"order", order}};
}

}  // namespace bitparity

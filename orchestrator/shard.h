// File: orchestrator/shard.h
//
// `bitparity compare --shard I/N`: runs only the prompts whose id hashes to shard I
// of N, so N jobs (a Kubernetes Indexed Job) split one prompt set between them.
// The split is stable: it depends on the prompt id alone (64-bit FNV-1a of the id,
// modulo N), not on the order of the file, the machine or the run, so a prompt
// stays in its shard when others are added or removed. Every prompt is in exactly
// one shard. The shard's report records the whole set's order ("shard" object) so
// that `bitparity merge` (merge.h) can put the prompts back in it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "orchestrator/prompt_set.h"

namespace bitparity {

struct Shard {
  int index = 0;  // 0-based
  int count = 1;
};

// "I/N" with 0 <= I < N; InvalidArgument otherwise.
absl::StatusOr<Shard> ParseShard(const std::string& spec);

// The shard (0..count-1) a prompt id belongs to.
int ShardOfId(const std::string& id, int count);

// Keeps the prompts of `shard` (in their order). Returns the report's "shard"
// object: {"index", "count", "total_prompts", "order": [every id of the whole set,
// in order]}. The set's source and sha256 stay those of the whole set.
nlohmann::json ApplyShard(PromptSet* set, const Shard& shard);

}  // namespace bitparity

// File: orchestrator/prompt_set.h
//
// The prompts a comparison runs. Three sources:
//   - JSONL: one object per line, {"id": "...", "text": "..."} or {"id": ..., "ids": [1, 2, 3]}
//     or a chat, {"id": ..., "messages": [{"role": "user", "content": "..."}, ...]} with an
//     optional "chat_template" (a built-in name; default the model's own) ("category"
//     optional). Ids are used exactly as given (no BOS added). A chat is rendered by each
//     server's ApplyChatTemplate and tokenized with parse_special, as Input.chat is.
//   - plain text: one prompt per non-empty line, ids "line-N" (N from 1).
//   - the built-in default set (orchestrator/prompts/default.jsonl, embedded at
//     build time): prose, code, numbers, unicode and long context.
// A file is JSONL when its name ends in .jsonl / .json or its first non-blank
// character is '{'.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity {

// One turn of a chat prompt.
struct PromptTurn {
  std::string role;
  std::string content;
};

struct Prompt {
  std::string id;
  std::string category;             // may be empty
  std::optional<std::string> text;  // text prompts: tokenized by each server
  std::vector<int32_t> ids;         // ids prompts: used as given
  std::vector<PromptTurn> chat;     // chat prompts: rendered by each server
  std::string chat_template;        // chat prompts: "" = the model's own
  bool is_text() const { return text.has_value(); }
  bool is_chat() const { return !chat.empty(); }
};

struct PromptSet {
  std::string source;  // "builtin:default" or the file path
  std::string sha256;  // of the bytes the set was read from (provenance)
  std::vector<Prompt> prompts;
};

// InvalidArgument naming the line for malformed JSONL, a missing text/ids, a
// duplicate id or an empty set; NotFound for an unreadable file.
absl::StatusOr<PromptSet> LoadPromptFile(const std::string& path);
absl::StatusOr<PromptSet> ParseJsonlPrompts(absl::string_view content, const std::string& source);
absl::StatusOr<PromptSet> ParsePlainPrompts(absl::string_view content, const std::string& source);
absl::StatusOr<PromptSet> DefaultPromptSet();

// Keeps the first `n` prompts (n <= 0: all).
void LimitPrompts(PromptSet* set, int n);

}  // namespace bitparity

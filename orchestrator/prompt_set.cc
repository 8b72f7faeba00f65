#include "orchestrator/prompt_set.h"

#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "base/sha256.h"
#include "nlohmann/json.hpp"

namespace bitparity {

extern const unsigned char kDefaultPromptsJsonl[];
extern const size_t kDefaultPromptsJsonl_size;

namespace {

std::string HashOf(absl::string_view content) {
  return Sha256Hex(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(content.data()), content.size()));
}

absl::Status CheckSet(const PromptSet& set) {
  if (set.prompts.empty()) return absl::InvalidArgumentError(absl::StrCat(set.source, ": no prompts"));
  std::set<std::string> seen;
  for (const Prompt& p : set.prompts) {
    if (!seen.insert(p.id).second) {
      return absl::InvalidArgumentError(absl::StrCat(set.source, ": duplicate prompt id '", p.id, "'"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PromptSet> ParseJsonlPrompts(absl::string_view content, const std::string& source) {
  PromptSet set;
  set.source = source;
  set.sha256 = HashOf(content);
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto where = [&] { return absl::StrCat(source, ":", line_no, ": "); };
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "not a JSON object"));
    }
    Prompt p;
    if (j.contains("id")) {
      p.id = j["id"].is_string() ? j["id"].get<std::string>() : j["id"].dump();
    } else {
      p.id = absl::StrCat("line-", line_no);
    }
    if (j.contains("category") && j["category"].is_string()) p.category = j["category"].get<std::string>();
    const bool has_text = j.contains("text"), has_ids = j.contains("ids"),
               has_chat = j.contains("messages");
    if (has_text + has_ids + has_chat != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "needs exactly one of \"text\", \"ids\" and \"messages\""));
    }
    if (has_chat) {
      if (!j["messages"].is_array() || j["messages"].empty()) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "\"messages\" must be a non-empty array"));
      }
      for (const auto& m : j["messages"]) {
        if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
            !m["content"].is_string()) {
          return absl::InvalidArgumentError(
              absl::StrCat(where(), "each message must be {\"role\": string, \"content\": string}"));
        }
        p.chat.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
      }
      if (j.contains("chat_template")) {
        if (!j["chat_template"].is_string()) {
          return absl::InvalidArgumentError(absl::StrCat(where(), "\"chat_template\" must be a string"));
        }
        p.chat_template = j["chat_template"].get<std::string>();
      }
    } else if (has_text) {
      if (!j["text"].is_string() || j["text"].get<std::string>().empty()) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "\"text\" must be a non-empty string"));
      }
      p.text = j["text"].get<std::string>();
    } else {
      if (!j["ids"].is_array() || j["ids"].empty()) {
        return absl::InvalidArgumentError(absl::StrCat(where(), "\"ids\" must be a non-empty array"));
      }
      for (const auto& v : j["ids"]) {
        if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX) {
          return absl::InvalidArgumentError(absl::StrCat(where(), "\"ids\" must hold non-negative int32 ids"));
        }
        p.ids.push_back(v.get<int32_t>());
      }
    }
    set.prompts.push_back(std::move(p));
  }
  if (absl::Status s = CheckSet(set); !s.ok()) return s;
  return set;
}

absl::StatusOr<PromptSet> ParsePlainPrompts(absl::string_view content, const std::string& source) {
  PromptSet set;
  set.source = source;
  set.sha256 = HashOf(content);
  int line_no = 0;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    ++line_no;
    line = absl::StripSuffix(line, "\r");
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    Prompt p;
    p.id = absl::StrCat("line-", line_no);
    p.text = std::string(line);
    set.prompts.push_back(std::move(p));
  }
  if (absl::Status s = CheckSet(set); !s.ok()) return s;
  return set;
}

absl::StatusOr<PromptSet> LoadPromptFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read prompt file '", path, "'"));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string content = ss.str();
  absl::string_view head = absl::StripLeadingAsciiWhitespace(content);
  const bool jsonl = absl::EndsWith(path, ".jsonl") || absl::EndsWith(path, ".json") ||
                     (!head.empty() && head.front() == '{');
  return jsonl ? ParseJsonlPrompts(content, path) : ParsePlainPrompts(content, path);
}

absl::StatusOr<PromptSet> DefaultPromptSet() {
  return ParseJsonlPrompts(absl::string_view(reinterpret_cast<const char*>(kDefaultPromptsJsonl), kDefaultPromptsJsonl_size), "builtin:default");
}

void LimitPrompts(PromptSet* set, int n) {
  if (n > 0 && static_cast<size_t>(n) < set->prompts.size()) set->prompts.resize(n);
}

}  // namespace bitparity

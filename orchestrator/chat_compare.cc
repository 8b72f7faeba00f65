#include "orchestrator/chat_compare.h"

#include <algorithm>
#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "base/chat_template_names.h"

namespace bitparity {
namespace v1 = ::bitnet::v1;

namespace {

struct Conversation {
  const char* name;
  std::vector<std::pair<const char*, const char*>> turns;
};

// System + user, a multi-turn exchange with padding some templates trim,
// unicode, and a lone user turn.
const std::vector<Conversation>& Conversations() {
  static const std::vector<Conversation> set = {
      {"system+user", {{"system", "You are a helpful assistant."}, {"user", "Hello!"}}},
      {"multi-turn",
       {{"system", "Answer briefly."},
        {"user", "What is 2+2?"},
        {"assistant", "  4  "},
        {"user", "And 3+3?"}}},
      {"unicode", {{"user", u8"  Ça va? 世界 🌍\n"}, {"assistant", u8"Très bien.\t"}, {"user", u8"Ünïcödé"}}},
      {"user-only", {{"user", "Tell me a story."}}},
  };
  return set;
}

std::string Answer(const grpc::Status& s, const v1::ApplyChatTemplateResponse& r) {
  if (s.ok()) return r.text();
  return absl::StrCat("ERROR ", s.error_code(), ": ", s.error_message());
}

// `s` from a little before byte `at`, escaped, at most 60 bytes.
std::string Around(const std::string& s, size_t at) {
  const size_t from = at > 20 ? at - 20 : 0;
  return absl::StrCat(from > 0 ? "..." : "", absl::CEscape(s.substr(from, 60)),
                      from + 60 < s.size() ? "..." : "");
}

}  // namespace

// The model's own template (""), then every built-in name but falcon_e, which
// that llama.cpp version can never select (its test needs a name that is also a
// template text), so both sides only refuse it.
const std::vector<std::string>& ChatCompareTemplates() {
  static const std::vector<std::string> templates = [] {
    std::vector<std::string> t = {""};
    for (absl::string_view name : kChatTemplateNames) {
      if (name != "falcon_e") t.emplace_back(name);
    }
    return t;
  }();
  return templates;
}

ChatCompareResult CompareChatTemplates(EngineClient& a, EngineClient& b) {
  ChatCompareResult result;
  for (const std::string& tmpl : ChatCompareTemplates()) {
    for (const Conversation& conv : Conversations()) {
      for (bool add : {true, false}) {
        v1::ApplyChatTemplateRequest req;
        for (const auto& [role, content] : conv.turns) {
          v1::ChatMessage* m = req.mutable_chat()->add_messages();
          m->set_role(role);
          m->set_content(content);
        }
        req.mutable_chat()->set_chat_template(tmpl);
        req.mutable_chat()->set_add_assistant_prompt(add);
        v1::ApplyChatTemplateResponse ra, rb;
        const grpc::Status sa = a.ApplyChatTemplate(req, &ra);
        const grpc::Status sb = b.ApplyChatTemplate(req, &rb);
        ChatCompareCase c;
        c.chat_template = tmpl;
        c.conversation = conv.name;
        c.add_assistant = add;
        c.a = Answer(sa, ra);
        c.b = Answer(sb, rb);
        c.a_template_name = ra.template_name();
        c.b_template_name = rb.template_name();
        // Refusals count as equal when their codes are: the messages are each
        // server's own words about the same refusal.
        c.equal = sa.error_code() == sb.error_code() &&
                  (!sa.ok() || (ra.text() == rb.text() && ra.template_name() == rb.template_name() &&
                                ra.source() == rb.source()));
        (c.equal ? result.equal : result.different)++;
        result.cases.push_back(std::move(c));
      }
    }
  }
  return result;
}

std::string RenderChatCompare(const ChatCompareResult& r) {
  std::string out = "chat templates (ApplyChatTemplate on both sides)\n";
  std::map<std::string, std::pair<int, int>> per;  // template -> (equal, all)
  std::vector<std::string> order;
  for (const ChatCompareCase& c : r.cases) {
    if (!per.count(c.chat_template)) order.push_back(c.chat_template);
    per[c.chat_template].first += c.equal;
    per[c.chat_template].second += 1;
  }
  for (const std::string& t : order) {
    const auto [eq, all] = per[t];
    absl::StrAppendFormat(&out, "  %-14s %2d/%-2d equal  %s\n", t.empty() ? "(model's own)" : t, eq,
                          all, eq == all ? "ok" : "DIFFERENT");
  }
  for (const ChatCompareCase& c : r.cases) {
    if (c.equal) continue;
    size_t at = 0;
    while (at < c.a.size() && at < c.b.size() && c.a[at] == c.b[at]) ++at;
    absl::StrAppendFormat(&out,
                          "\n  %s / %s / add_assistant=%s: first difference at byte %d\n"
                          "    A [%s]: %s\n    B [%s]: %s\n",
                          c.chat_template.empty() ? "(model's own)" : c.chat_template,
                          c.conversation, c.add_assistant ? "on" : "off", at, c.a_template_name,
                          Around(c.a, at), c.b_template_name, Around(c.b, at));
  }
  absl::StrAppendFormat(&out, "\n%d of %d cases equal: %s\n", r.equal, r.equal + r.different,
                        r.different == 0 ? "the servers render chats alike"
                                         : "the servers render chats DIFFERENTLY");
  return out;
}

}  // namespace bitparity

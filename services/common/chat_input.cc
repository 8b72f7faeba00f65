#include "services/common/chat_input.h"

#include <array>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/chat_template_names.h"
#include "base/status_macros.h"

namespace bitparity {

namespace v1 = bitnet::v1;

namespace {

constexpr const auto& kNames = kChatTemplateNames;

// Tells the families and their variants apart: a system message (folded,
// blocked or prefixed), an assistant turn, padding that some templates trim,
// and the assistant prompt.
const std::vector<ChatTurn>& ProbeConversation() {
  static const std::vector<ChatTurn> probe = {
      {"system", " Be terse. "}, {"user", " Hi "}, {"assistant", " Hello "}, {"user", "Bye"}};
  return probe;
}

bool HasNul(absl::string_view s) { return s.find('\0') != absl::string_view::npos; }

// A template quoted in an error: short, with its size when cut.
std::string Quote(absl::string_view tmpl) {
  constexpr size_t kMax = 60;
  if (tmpl.size() <= kMax) return absl::StrCat("\"", tmpl, "\"");
  return absl::StrCat("\"", tmpl.substr(0, kMax), "...\" (", tmpl.size(), " bytes)");
}

}  // namespace

absl::Span<const absl::string_view> ChatTemplateNames() { return kNames; }

absl::Status ValidateChatMessages(const v1::ChatMessages& chat, const char* field) {
  if (chat.messages().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".messages is empty: give at least one message"));
  }
  if (chat.messages_size() > kMaxChatMessages) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".messages has ", chat.messages_size(),
                                                   " messages; at most ", kMaxChatMessages));
  }
  for (int i = 0; i < chat.messages_size(); ++i) {
    const v1::ChatMessage& m = chat.messages(i);
    const std::string where = absl::StrCat(field, ".messages[", i, "]");
    if (m.role().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".role is empty: give \"system\", \"user\" or \"assistant\""));
    }
    if (m.role().size() > static_cast<size_t>(kMaxChatRoleBytes)) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".role has ", m.role().size(),
                                                     " bytes; at most ", kMaxChatRoleBytes));
    }
    if (HasNul(m.role()) || HasNul(m.content())) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, " contains a NUL byte, which llama.cpp's chat API cannot carry"));
    }
  }
  if (chat.chat_template().size() > static_cast<size_t>(kMaxChatTemplateBytes)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ".chat_template has ",
                                                   chat.chat_template().size(),
                                                   " bytes; at most ", kMaxChatTemplateBytes));
  }
  if (HasNul(chat.chat_template())) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ".chat_template contains a NUL byte, which llama.cpp's chat API cannot carry"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RenderedChat> RenderChatInput(const v1::ChatMessages& chat,
                                             const EngineBackend& backend, const char* field) {
  RETURN_IF_ERROR(ValidateChatMessages(chat, field));
  std::vector<ChatTurn> turns;
  turns.reserve(chat.messages_size());
  for (const v1::ChatMessage& m : chat.messages()) turns.push_back({m.role(), m.content()});
  const bool add_assistant = chat.has_add_assistant_prompt() ? chat.add_assistant_prompt() : true;
  ASSIGN_OR_RETURN(ChatRendering r,
                   backend.ApplyChatTemplate(turns, chat.chat_template(), add_assistant));
  if (!r.text.has_value()) {
    if (r.source == ChatTemplateSource::kRequest) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ".chat_template = ", Quote(chat.chat_template()),
          " is not a chat template bitnet.cpp's llama.cpp knows: give a built-in name (",
          absl::StrJoin(kNames, ", "), ") or a template text that contains its markers"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "the model's tokenizer.chat_template matches none of llama.cpp's built-in templates "
        "(this version detects them by fixed substrings, not Jinja): set ",
        field, ".chat_template to a built-in name"));
  }
  return RenderedChat{std::move(*r.text), r.source};
}

absl::StatusOr<std::string> IdentifyChatTemplate(const EngineBackend& backend,
                                                 absl::string_view tmpl) {
  ASSIGN_OR_RETURN(ChatRendering target, backend.ApplyChatTemplate(ProbeConversation(), tmpl, true));
  if (!target.text.has_value()) return std::string();
  for (absl::string_view name : kNames) {
    ASSIGN_OR_RETURN(ChatRendering r, backend.ApplyChatTemplate(ProbeConversation(), name, true));
    if (r.text == target.text) return std::string(name);
  }
  return std::string();
}

v1::ChatTemplateSource ToProtoChatTemplateSource(ChatTemplateSource source) {
  switch (source) {
    case ChatTemplateSource::kRequest:
      return v1::CHAT_TEMPLATE_SOURCE_REQUEST;
    case ChatTemplateSource::kModel:
      return v1::CHAT_TEMPLATE_SOURCE_MODEL;
    case ChatTemplateSource::kDefault:
      return v1::CHAT_TEMPLATE_SOURCE_DEFAULT;
  }
  return v1::CHAT_TEMPLATE_SOURCE_UNSPECIFIED;
}

}  // namespace bitparity

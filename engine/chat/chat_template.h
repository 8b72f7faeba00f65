// File: engine/chat/chat_template.h
//
// Chat templates as bitnet.cpp renders them: a hand port of the built-in
// templates of its vendored llama.cpp (src/llama.cpp,
// llama_chat_apply_template_internal and llama_chat_apply_template). That
// version is not a Jinja engine: it recognises a template by a name ("llama3",
// "chatml", ...) or by substrings of the template text, and renders the chosen
// family with fixed rules. We follow that version, not newer llama.cpp, so that
// both servers render a conversation to the same bytes.
//
//   std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "Hi"}};
//   std::string tmpl = ModelChatTemplate(gguf_value);   // or a name: "llama3"
//   std::optional<std::string> text = RenderChat(tmpl, chat, /*add_assistant=*/true);
//   if (!text) { /* not a template llama.cpp knows */ }
//
// Quirks of that version kept on purpose (each is what bitnet.cpp does):
//   - The model's template is read into a 2048-byte buffer: only its first 2047
//     bytes are seen, and the string keeps the buffer's trailing NULs, so a
//     model whose metadata is literally "llama3" does not match by name, only
//     by substring (ModelChatTemplate).
//   - "falcon_e" is listed but unreachable (its test needs the name itself to
//     contain "assistant"): it is an unknown template.
//   - "bitnet" prints a system message as "System: <content>" with no separator.
//   - llama2-family templates ignore add_assistant.
//   - trim() and openchat's capitalised role are ASCII-only (C locale).
//
// Thread safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace bitparity::chat {

// One turn: role ("system", "user", "assistant", or any other word; templates
// print it as given unless they say otherwise) and its UTF-8 content.
struct ChatMessage {
  std::string role;
  std::string content;
};

// The names llama_chat_apply_template accepts as tmpl, in the order it tests
// them. Two names can render alike ("gemma" and "gemma2").
absl::Span<const absl::string_view> BuiltinTemplateNames();

// What llama_chat_apply_template(model, tmpl=nullptr, ...) uses as the template
// of a model whose tokenizer.chat_template is `value`: its first 2047 bytes,
// padded with NULs to 2048. Models without the key get "chatml" (use
// kDefaultTemplate).
std::string ModelChatTemplate(absl::string_view value);
inline constexpr absl::string_view kDefaultTemplate = "chatml";

// Which built-in family renders `tmpl` (a name or a template text), in
// llama.cpp's order of tests; nullopt when none does (llama.cpp returns -1).
// The family name is the branch's first name: a llama2 variant with <<SYS>> is
// still "llama2".
std::optional<absl::string_view> DetectTemplateFamily(absl::string_view tmpl);

// `chat` rendered with `tmpl`; add_assistant appends the opening of the
// assistant's turn (llama.cpp's add_ass). nullopt when no family matches.
std::optional<std::string> RenderChat(absl::string_view tmpl, absl::Span<const ChatMessage> chat,
                                      bool add_assistant);

}  // namespace bitparity::chat

#include "engine/chat/chat_template.h"

#include <array>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/chat_template_names.h"

namespace bitparity::chat {
namespace {

// llama.cpp's 2048-byte buffer for the model's template (llama_chat_apply_template).
constexpr size_t kModelTemplateBuffer = 2048;

constexpr const auto& kNames = kChatTemplateNames;

// isspace() in the C locale, as llama.cpp's trim() sees it.
bool IsCSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

std::string Trim(absl::string_view s) {
  size_t start = 0, end = s.size();
  while (start < end && IsCSpace(s[start])) ++start;
  while (end > start && IsCSpace(s[end - 1])) --end;
  return std::string(s.substr(start, end - start));
}

// The tests of llama_chat_apply_template_internal, in its order. Each family
// is chosen by its name(s) or by substrings of the template text.
struct Family {
  absl::string_view name;
  bool (*matches)(absl::string_view tmpl);
};

bool Has(absl::string_view tmpl, absl::string_view s) { return absl::StrContains(tmpl, s); }

constexpr Family kFamilies[] = {
    {"chatml", [](absl::string_view t) { return t == "chatml" || Has(t, "<|im_start|>"); }},
    {"llama2",
     [](absl::string_view t) { return t == "llama2" || t == "mistral" || Has(t, "[INST]"); }},
    {"phi3",
     [](absl::string_view t) {
       return t == "phi3" || (Has(t, "<|assistant|>") && Has(t, "<|end|>"));
     }},
    {"falcon3",
     [](absl::string_view t) {
       return t == "falcon3" || (Has(t, "<|assistant|>") && Has(t, "<|user|>"));
     }},
    // As written upstream: `==` and contains("assistant") cannot both hold.
    {"falcon_e",
     [](absl::string_view t) {
       return t == "falcon_e" && (Has(t, "assistant") && Has(t, "user"));
     }},
    {"zephyr", [](absl::string_view t) { return t == "zephyr" || Has(t, "<|user|>"); }},
    {"monarch",
     [](absl::string_view t) { return t == "monarch" || Has(t, "bos_token + message['role']"); }},
    {"gemma",
     [](absl::string_view t) { return t == "gemma" || t == "gemma2" || Has(t, "<start_of_turn>"); }},
    {"orion",
     [](absl::string_view t) { return t == "orion" || Has(t, "'\\n\\nAssistant: ' + eos_token"); }},
    {"openchat", [](absl::string_view t) { return t == "openchat" || Has(t, "GPT4 Correct "); }},
    {"vicuna",
     [](absl::string_view t) {
       return t == "vicuna" || t == "vicuna-orca" || (Has(t, "USER: ") && Has(t, "ASSISTANT: "));
     }},
    {"deepseek",
     [](absl::string_view t) {
       return t == "deepseek" || (Has(t, "### Instruction:") && Has(t, "<|EOT|>"));
     }},
    {"command-r",
     [](absl::string_view t) {
       return t == "command-r" ||
              (Has(t, "<|START_OF_TURN_TOKEN|>") && Has(t, "<|USER_TOKEN|>"));
     }},
    {"llama3",
     [](absl::string_view t) {
       return t == "llama3" || (Has(t, "<|start_header_id|>") && Has(t, "<|end_header_id|>"));
     }},
    {"chatglm3", [](absl::string_view t) { return t == "chatglm3" || Has(t, "[gMASK]sop"); }},
    {"chatglm4", [](absl::string_view t) { return t == "chatglm4" || Has(t, "[gMASK]<sop>"); }},
    {"minicpm",
     [](absl::string_view t) { return t == "minicpm" || Has(t, "<\xE7\x94\xA8\xE6\x88\xB7>"); }},
    {"deepseek2",
     [](absl::string_view t) {
       return t == "deepseek2" || Has(t, "'Assistant: ' + message['content'] + eos_token");
     }},
    {"exaone3",
     [](absl::string_view t) {
       return t == "exaone3" ||
              (Has(t, "[|system|]") && Has(t, "[|assistant|]") && Has(t, "[|endofturn|]"));
     }},
    {"bitnet", [](absl::string_view t) { return t == "bitnet" || Has(t, "BITNET"); }},
};

using Chat = absl::Span<const ChatMessage>;

// ---------------------------------------------------------------------------
// One renderer per family, each a transcription of its upstream branch.
// ---------------------------------------------------------------------------

std::string Chatml(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    absl::StrAppend(&s, "<|im_start|>", m.role, "\n", m.content, "<|im_end|>\n");
  }
  if (add_ass) s += "<|im_start|>assistant\n";
  return s;
}

// llama2 and its variants; add_ass is ignored (as upstream).
std::string Llama2(absl::string_view tmpl, Chat chat) {
  const bool system_block = Has(tmpl, "<<SYS>>") || tmpl == "mistral";
  const bool space_around_response = Has(tmpl, "' ' + eos_token");
  const bool bos_inside_history = Has(tmpl, "bos_token + '[INST]");
  const bool strip = Has(tmpl, "content.strip()");
  std::string s = "[INST] ";
  bool inside_turn = true;  // the first [INST] is already written
  for (const ChatMessage& m : chat) {
    const std::string content = strip ? Trim(m.content) : m.content;
    if (!inside_turn) {
      inside_turn = true;
      s += bos_inside_history ? "<s>[INST] " : "[INST] ";
    }
    if (m.role == "system") {
      if (system_block) {
        absl::StrAppend(&s, "<<SYS>>\n", content, "\n<</SYS>>\n\n");
      } else {
        absl::StrAppend(&s, content, "\n");  // folded into the first turn
      }
    } else if (m.role == "user") {
      absl::StrAppend(&s, content, " [/INST]");
    } else {
      const char* pad = space_around_response ? " " : "";
      absl::StrAppend(&s, pad, content, pad, "</s>");
      inside_turn = false;
    }
  }
  return s;
}

std::string Phi3(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) absl::StrAppend(&s, "<|", m.role, "|>\n", m.content, "<|end|>\n");
  if (add_ass) s += "<|assistant|>\n";
  return s;
}

std::string Falcon3(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) absl::StrAppend(&s, "<|", m.role, "|>\n", m.content, "\n");
  if (add_ass) s += "<|assistant|>\n";
  return s;
}

// Unreachable (see kFamilies); kept so the table reads like upstream.
std::string FalconE(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) absl::StrAppend(&s, m.role, m.content, "\n");
  if (add_ass) s += "assistant\n";
  return s;
}

std::string Zephyr(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    absl::StrAppend(&s, "<|", m.role, "|>\n", m.content, "<|endoftext|>\n");
  }
  if (add_ass) s += "<|assistant|>\n";
  return s;
}

std::string Monarch(Chat chat, bool add_ass) {
  std::string s;
  for (size_t i = 0; i < chat.size(); ++i) {
    absl::StrAppend(&s, i == 0 ? "" : "<s>", chat[i].role, "\n", chat[i].content, "</s>\n");
  }
  if (add_ass) s += "<s>assistant\n";
  return s;
}

// No system role: the (trimmed) system text opens the next non-model turn.
std::string Gemma(Chat chat, bool add_ass) {
  std::string s, system_prompt;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      system_prompt = Trim(m.content);
      continue;
    }
    const std::string role = m.role == "assistant" ? "model" : m.role;
    absl::StrAppend(&s, "<start_of_turn>", role, "\n");
    if (!system_prompt.empty() && role != "model") {
      absl::StrAppend(&s, system_prompt, "\n\n");
      system_prompt.clear();
    }
    absl::StrAppend(&s, Trim(m.content), "<end_of_turn>\n");
  }
  if (add_ass) s += "<start_of_turn>model\n";
  return s;
}

// add_ass ignored (as upstream).
std::string Orion(Chat chat) {
  std::string s, system_prompt;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      system_prompt = m.content;
    } else if (m.role == "user") {
      s += "Human: ";
      if (!system_prompt.empty()) {
        absl::StrAppend(&s, system_prompt, "\n\n");
        system_prompt.clear();
      }
      absl::StrAppend(&s, m.content, "\n\nAssistant: </s>");
    } else {
      absl::StrAppend(&s, m.content, "</s>");
    }
  }
  return s;
}

std::string Openchat(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      absl::StrAppend(&s, m.content, "<|end_of_turn|>");
    } else {
      std::string role = m.role;
      if (!role.empty() && role[0] >= 'a' && role[0] <= 'z') role[0] = static_cast<char>(role[0] - 32);
      absl::StrAppend(&s, "GPT4 Correct ", role, ": ", m.content, "<|end_of_turn|>");
    }
  }
  if (add_ass) s += "GPT4 Correct Assistant:";
  return s;
}

std::string Vicuna(absl::string_view tmpl, Chat chat, bool add_ass) {
  const bool orca = tmpl == "vicuna-orca" || Has(tmpl, "SYSTEM: ");
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      if (orca) {
        absl::StrAppend(&s, "SYSTEM: ", m.content, "\n");
      } else {
        absl::StrAppend(&s, m.content, "\n\n");
      }
    } else if (m.role == "user") {
      absl::StrAppend(&s, "USER: ", m.content, "\n");
    } else if (m.role == "assistant") {
      absl::StrAppend(&s, "ASSISTANT: ", m.content, "</s>\n");
    }
  }
  if (add_ass) s += "ASSISTANT:";
  return s;
}

std::string Deepseek(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      s += m.content;
    } else if (m.role == "user") {
      absl::StrAppend(&s, "### Instruction:\n", m.content, "\n");
    } else if (m.role == "assistant") {
      absl::StrAppend(&s, "### Response:\n", m.content, "\n<|EOT|>\n");
    }
  }
  if (add_ass) s += "### Response:\n";
  return s;
}

std::string CommandR(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    const char* token = m.role == "system"  ? "<|SYSTEM_TOKEN|>"
                        : m.role == "user"  ? "<|USER_TOKEN|>"
                        : m.role == "assistant" ? "<|CHATBOT_TOKEN|>"
                                                : nullptr;
    if (token == nullptr) continue;  // other roles are dropped
    absl::StrAppend(&s, "<|START_OF_TURN_TOKEN|>", token, Trim(m.content), "<|END_OF_TURN_TOKEN|>");
  }
  if (add_ass) s += "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>";
  return s;
}

std::string Llama3(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    absl::StrAppend(&s, "<|start_header_id|>", m.role, "<|end_header_id|>\n\n", Trim(m.content),
                    "<|eot_id|>");
  }
  if (add_ass) s += "<|start_header_id|>assistant<|end_header_id|>\n\n";
  return s;
}

std::string Chatglm3(Chat chat, bool add_ass) {
  std::string s = "[gMASK]sop";
  for (const ChatMessage& m : chat) absl::StrAppend(&s, "<|", m.role, "|>\n ", m.content);
  if (add_ass) s += "<|assistant|>";
  return s;
}

std::string Chatglm4(Chat chat, bool add_ass) {
  std::string s = "[gMASK]<sop>";
  for (const ChatMessage& m : chat) absl::StrAppend(&s, "<|", m.role, "|>\n", m.content);
  if (add_ass) s += "<|assistant|>";
  return s;
}

// add_ass ignored (as upstream).
std::string Minicpm(Chat chat) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "user") {
      absl::StrAppend(&s, "<\xE7\x94\xA8\xE6\x88\xB7>", Trim(m.content), "<AI>");  // "<用户>"
    } else {
      s += Trim(m.content);
    }
  }
  return s;
}

std::string Deepseek2(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      absl::StrAppend(&s, m.content, "\n\n");
    } else if (m.role == "user") {
      absl::StrAppend(&s, "User: ", m.content, "\n\n");
    } else if (m.role == "assistant") {
      // "<｜end▁of▁sentence｜>": U+FF5C, U+2581.
      absl::StrAppend(&s, "Assistant: ", m.content,
                      "<\xEF\xBD\x9C" "end\xE2\x96\x81" "of\xE2\x96\x81" "sentence\xEF\xBD\x9C>");
    }
  }
  if (add_ass) s += "Assistant:";
  return s;
}

std::string Exaone3(Chat chat, bool add_ass) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      absl::StrAppend(&s, "[|system|]", Trim(m.content), "[|endofturn|]\n");
    } else if (m.role == "user") {
      absl::StrAppend(&s, "[|user|]", Trim(m.content), "\n");
    } else if (m.role == "assistant") {
      absl::StrAppend(&s, "[|assistant|]", Trim(m.content), "[|endofturn|]\n");
    }
  }
  if (add_ass) s += "[|assistant|]";
  return s;
}

// bitnet.cpp's own ("bitnet-25"). Its system_prompt is never set upstream, so a
// system message prints inline; add_ass is ignored (the user turn already ends
// with "Assistant: ").
std::string Bitnet(Chat chat) {
  std::string s;
  for (const ChatMessage& m : chat) {
    if (m.role == "system") {
      absl::StrAppend(&s, "System: ", m.content);
    } else if (m.role == "user") {
      absl::StrAppend(&s, "User: ", m.content, "<|eot_id|>Assistant: ");
    } else {
      s += m.content;
    }
  }
  return s;
}

}  // namespace

absl::Span<const absl::string_view> BuiltinTemplateNames() { return kNames; }

std::string ModelChatTemplate(absl::string_view value) {
  std::string t(value.substr(0, kModelTemplateBuffer - 1));  // snprintf keeps room for its NUL
  t.resize(kModelTemplateBuffer, '\0');
  return t;
}

std::optional<absl::string_view> DetectTemplateFamily(absl::string_view tmpl) {
  for (const Family& f : kFamilies) {
    if (f.matches(tmpl)) return f.name;
  }
  return std::nullopt;
}

std::optional<std::string> RenderChat(absl::string_view tmpl, Chat chat, bool add_assistant) {
  const std::optional<absl::string_view> family = DetectTemplateFamily(tmpl);
  if (!family.has_value()) return std::nullopt;
  const absl::string_view f = *family;
  if (f == "chatml") return Chatml(chat, add_assistant);
  if (f == "llama2") return Llama2(tmpl, chat);
  if (f == "phi3") return Phi3(chat, add_assistant);
  if (f == "falcon3") return Falcon3(chat, add_assistant);
  if (f == "falcon_e") return FalconE(chat, add_assistant);
  if (f == "zephyr") return Zephyr(chat, add_assistant);
  if (f == "monarch") return Monarch(chat, add_assistant);
  if (f == "gemma") return Gemma(chat, add_assistant);
  if (f == "orion") return Orion(chat);
  if (f == "openchat") return Openchat(chat, add_assistant);
  if (f == "vicuna") return Vicuna(tmpl, chat, add_assistant);
  if (f == "deepseek") return Deepseek(chat, add_assistant);
  if (f == "command-r") return CommandR(chat, add_assistant);
  if (f == "llama3") return Llama3(chat, add_assistant);
  if (f == "chatglm3") return Chatglm3(chat, add_assistant);
  if (f == "chatglm4") return Chatglm4(chat, add_assistant);
  if (f == "minicpm") return Minicpm(chat);
  if (f == "deepseek2") return Deepseek2(chat, add_assistant);
  if (f == "exaone3") return Exaone3(chat, add_assistant);
  return Bitnet(chat);
}

}  // namespace bitparity::chat

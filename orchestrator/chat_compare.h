// File: orchestrator/chat_compare.h
//
// `bitparity chat-templates --a HOST:PORT --b HOST:PORT`: do two servers render
// chat conversations to the same text? It sends a fixed set of conversations
// through ApplyChatTemplate on both sides, with the model's own template and
// with every built-in template by name, the assistant prompt on and off, and
// compares the answers: the status code, the text, the template name and its
// source. A chat input (Input.chat) is tokenized from exactly this text, so a
// difference here is a difference of every chat prompt.
//
//   ChatCompareResult r = CompareChatTemplates(*a, *b);
//   std::fputs(RenderChatCompare(r).c_str(), stdout);
//   return r.different == 0 ? 0 : 1;
#pragma once

#include <string>
#include <vector>

#include "orchestrator/engine_client.h"

namespace bitparity {

// One conversation rendered by one template on both sides.
struct ChatCompareCase {
  std::string chat_template;  // "" = the model's own
  std::string conversation;   // its name in the fixed set
  bool add_assistant = true;
  bool equal = false;
  // Each side's answer: the text, or "ERROR <CODE>: message".
  std::string a, b;
  std::string a_template_name, b_template_name;
};

struct ChatCompareResult {
  std::vector<ChatCompareCase> cases;
  int equal = 0;
  int different = 0;
};

// The templates tried: "" (the model's own) and the built-in names that
// engine.proto lists for ChatMessages.chat_template.
const std::vector<std::string>& ChatCompareTemplates();

// Every template x conversation x add_assistant on both sides, one call at a
// time, each within the clients' per-call deadline.
ChatCompareResult CompareChatTemplates(EngineClient& a, EngineClient& b);

// One line per template (cases equal / all), then each different case with
// both answers quoted up to their first difference.
std::string RenderChatCompare(const ChatCompareResult& r);

}  // namespace bitparity

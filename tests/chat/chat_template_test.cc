// engine/chat tests, in three parts:
//   1. Known answers: real template texts (from models' tokenizer configs, the
//      fixture GGUFs and llama.cpp's test table for the version bitnet.cpp
//      vendors) rendered on one six-turn conversation, against the exact text
//      that llama.cpp of that version produces.
//   2. Built-in names: each name renders the BitNet families' expected text;
//      detection maps template texts to families; unknown ones are refused.
//   3. Quirks kept from upstream: the 2048-byte model buffer, falcon_e, add_ass.
// To add a known answer, add a row to kKnownAnswers.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/chat/chat_template.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bitparity::chat {
namespace {

using ::testing::Optional;

// System, two full exchanges (the second reply padded with spaces, which some
// templates trim and some keep), and a last question.
const std::vector<ChatMessage>& Conversation() {
  static const std::vector<ChatMessage> chat = {
      {"system", "You are a helpful assistant"}, {"user", "Hello"},
      {"assistant", "Hi there"},                 {"user", "Who are you"},
      {"assistant", "   I am an assistant   "},  {"user", "Another question"},
  };
  return chat;
}

struct KnownAnswer {
  const char* model;     // where the template comes from
  const char* tmpl;      // its text
  const char* family;    // what llama.cpp detects
  const char* expected;  // rendered with add_assistant = true
};

const KnownAnswer kKnownAnswers[] = {
    {"OpenHermes-2.5 (chatml)",
     "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
     "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' "
     "}}{% endif %}",
     "chatml",
     "<|im_start|>system\nYou are a helpful assistant<|im_end|>\n<|im_start|>user\nHello<|im_end|>\n"
     "<|im_start|>assistant\nHi there<|im_end|>\n<|im_start|>user\nWho are you<|im_end|>\n"
     "<|im_start|>assistant\n   I am an assistant   <|im_end|>\n<|im_start|>user\nAnother "
     "question<|im_end|>\n<|im_start|>assistant\n"},
    {"Mistral-7B-Instruct-v0.2 (llama2, no <<SYS>>)",
     "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + "
     "message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ "
     "message['content'] + eos_token}}{% endif %}{% endfor %}",
     "llama2",
     "[INST] You are a helpful assistant\nHello [/INST]Hi there</s>[INST] Who are you [/INST]   I am "
     "an assistant   </s>[INST] Another question [/INST]"},
    {"FusionNet (llama2 with <<SYS>>, spaces, BOS in history)",
     "{{- bos_token + '[INST] ' + messages[idx]['content'] + ' [/INST]' -}}{{- '[INST] <<SYS>>\\\\n' "
     "-}}{{- ' '  + messages[idx]['content'] + ' ' + eos_token -}}",
     "llama2",
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s><s>[INST] "
     "Who are you [/INST]    I am an assistant    </s><s>[INST] Another question [/INST]"},
    {"vigogne-2 (llama2 with <<SYS>> and strip)",
     "{% if message['role'] == 'user' %}{{ '[INST] ' + content.strip() + ' [/INST]' }}{% elif "
     "message['role'] == 'system' %}{{ '<<SYS>>\\\\n' + content.strip() + '\\\\n<</SYS>>\\\\n\\\\n' }}"
     "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}",
     "llama2",
     "[INST] <<SYS>>\nYou are a helpful assistant\n<</SYS>>\n\nHello [/INST] Hi there </s>[INST] Who "
     "are you [/INST] I am an assistant </s>[INST] Another question [/INST]"},
    {"AlphaMonarch-7B",
     "{% for message in messages %}{{bos_token + message['role'] + '\\n' + message['content'] + "
     "eos_token + '\\n'}}{% endfor %}",
     "monarch",
     "system\nYou are a helpful assistant</s>\n<s>user\nHello</s>\n<s>assistant\nHi there</s>\n<s>user"
     "\nWho are you</s>\n<s>assistant\n   I am an assistant   </s>\n<s>user\nAnother question</s>\n"
     "<s>assistant\n"},
    {"gemma-7b-it",
     "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}",
     "gemma",
     "<start_of_turn>user\nYou are a helpful assistant\n\nHello<end_of_turn>\n<start_of_turn>model\nHi "
     "there<end_of_turn>\n<start_of_turn>user\nWho are you<end_of_turn>\n<start_of_turn>model\nI am an "
     "assistant<end_of_turn>\n<start_of_turn>user\nAnother question<end_of_turn>\n<start_of_turn>"
     "model\n"},
    {"Orion-14B-Chat",
     "{% if message['role'] == 'user' %}{{ 'Human: ' + message['content'] + '\\n\\nAssistant: ' + "
     "eos_token }}{% endif %}",
     "orion",
     "Human: You are a helpful assistant\n\nHello\n\nAssistant: </s>Hi there</s>Human: Who are you\n\n"
     "Assistant: </s>   I am an assistant   </s>Human: Another question\n\nAssistant: </s>"},
    {"openchat-3.5",
     "{{ 'GPT4 Correct ' + message['role'].title() + ': ' + message['content'] + '<|end_of_turn|>'}}",
     "openchat",
     "You are a helpful assistant<|end_of_turn|>GPT4 Correct User: Hello<|end_of_turn|>GPT4 Correct "
     "Assistant: Hi there<|end_of_turn|>GPT4 Correct User: Who are you<|end_of_turn|>GPT4 Correct "
     "Assistant:    I am an assistant   <|end_of_turn|>GPT4 Correct User: Another question"
     "<|end_of_turn|>GPT4 Correct Assistant:"},
    {"deepseek-coder-33b-instruct",
     "{{'### Instruction:\\n' + message['content'] + '\\n'}}{{'### Response:\\n' + "
     "message['content'] + '\\n<|EOT|>\\n'}}",
     "deepseek",
     "You are a helpful assistant### Instruction:\nHello\n### Response:\nHi there\n<|EOT|>\n### "
     "Instruction:\nWho are you\n### Response:\n   I am an assistant   \n<|EOT|>\n### Instruction:\n"
     "Another question\n### Response:\n"},
    {"vicuna-13b-1.1",
     "{{-'USER: ' + message['content'] + '\n'-}}{{-'ASSISTANT: ' + message['content'] + '</s>\n' -}}",
     "vicuna",
     "You are a helpful assistant\n\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\n"
     "ASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:"},
    {"Orca-Vicuna",
     "{{-'SYSTEM: ' + message['content'] + '\n' -}}{{-'USER: ' + message['content'] + '\n'-}}{{-"
     "'ASSISTANT: ' + message['content'] + '</s>\n' -}}",
     "vicuna",
     "SYSTEM: You are a helpful assistant\nUSER: Hello\nASSISTANT: Hi there</s>\nUSER: Who are you\n"
     "ASSISTANT:    I am an assistant   </s>\nUSER: Another question\nASSISTANT:"},
    {"c4ai-command-r-plus",
     "{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + system_message + '<|END_OF_TURN_TOKEN|>' }}{{ "
     "'<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + content.strip() + '<|END_OF_TURN_TOKEN|>' }}",
     "command-r",
     "<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>You are a helpful assistant<|END_OF_TURN_TOKEN|>"
     "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hello<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|>"
     "<|CHATBOT_TOKEN|>Hi there<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Who are you"
     "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>I am an assistant"
     "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Another question<|END_OF_TURN_TOKEN|>"
     "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>"},
    // LLaMA 3, as stored in the fixtures ggml-vocab-llama-bpe.gguf and tiny-b158-l3.gguf.
    {"LLaMA-3 (fixture GGUFs)",
     "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
     "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + "
     "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ "
     "content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}",
     "llama3",
     "<|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|><|start_header_id|>assistant"
     "<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWho are you"
     "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nI am an assistant<|eot_id|>"
     "<|start_header_id|>user<|end_header_id|>\n\nAnother question<|eot_id|><|start_header_id|>"
     "assistant<|end_header_id|>\n\n"},
    {"Phi-3-small",
     "{{'<|' + message['role'] + '|>' + '\n' + message['content'] + '<|end|>\n' }}{% if "
     "add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}",
     "phi3",
     "<|system|>\nYou are a helpful assistant<|end|>\n<|user|>\nHello<|end|>\n<|assistant|>\nHi there"
     "<|end|>\n<|user|>\nWho are you<|end|>\n<|assistant|>\n   I am an assistant   <|end|>\n<|user|>\n"
     "Another question<|end|>\n<|assistant|>\n"},
    {"ChatGLM3",
     "{% if loop.first %}[gMASK]sop<|{{ message['role'] }}|>\n {{ message['content'] }}{% endif %}",
     "chatglm3",
     "[gMASK]sop<|system|>\n You are a helpful assistant<|user|>\n Hello<|assistant|>\n Hi there"
     "<|user|>\n Who are you<|assistant|>\n    I am an assistant   <|user|>\n Another question"
     "<|assistant|>"},
    {"ChatGLM4", "[gMASK]<sop>{% for item in messages %}<|{{ item['role'] }}|>\n{{ item['content'] }}",
     "chatglm4",
     "[gMASK]<sop><|system|>\nYou are a helpful assistant<|user|>\nHello<|assistant|>\nHi there"
     "<|user|>\nWho are you<|assistant|>\n   I am an assistant   <|user|>\nAnother question"
     "<|assistant|>"},
    {"MiniCPM-3B-OpenHermes", u8"{{'<用户>' + message['content'].strip() + '<AI>'}}", "minicpm",
     u8"You are a helpful assistant<用户>Hello<AI>Hi there<用户>Who are you<AI>I am an assistant<用户>"
     u8"Another question<AI>"},
    {"DeepSeek-V2",
     "{{ 'User: ' + message['content'] + '\n\n' }}{% elif message['role'] == 'assistant' %}{{ "
     "'Assistant: ' + message['content'] + eos_token }}",
     "deepseek2",
     u8"You are a helpful assistant\n\nUser: Hello\n\nAssistant: Hi there<｜end▁of▁sentence｜>User: "
     u8"Who are you\n\nAssistant:    I am an assistant   <｜end▁of▁sentence｜>User: Another "
     u8"question\n\nAssistant:"},
};

TEST(ChatTemplateKnownAnswers, RendersEachTemplateAsLlamaCpp) {
  for (const KnownAnswer& k : kKnownAnswers) {
    SCOPED_TRACE(k.model);
    EXPECT_THAT(DetectTemplateFamily(k.tmpl), Optional(absl::string_view(k.family)));
    EXPECT_THAT(RenderChat(k.tmpl, Conversation(), true), Optional(std::string(k.expected)));
  }
}

// ---------------------------------------------------------------------------
// The families the official BitNet models use, by name, with add_assistant on
// and off.
// ---------------------------------------------------------------------------

const std::vector<ChatMessage> kShort = {{"system", "Be brief."}, {"user", " Hi! "}};

struct NamedCase {
  const char* name;
  bool add_assistant;
  const char* expected;
};

const NamedCase kNamed[] = {
    {"llama3", true,
     "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
     "<|end_header_id|>\n\nHi!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama3", false,
     "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user"
     "<|end_header_id|>\n\nHi!<|eot_id|>"},
    {"falcon3", true, "<|system|>\nBe brief.\n<|user|>\n Hi! \n<|assistant|>\n"},
    {"falcon3", false, "<|system|>\nBe brief.\n<|user|>\n Hi! \n"},
    // bitnet: the system text runs straight into "User: "; add_assistant changes nothing.
    {"bitnet", true, "System: Be brief.User:  Hi! <|eot_id|>Assistant: "},
    {"bitnet", false, "System: Be brief.User:  Hi! <|eot_id|>Assistant: "},
    {"chatml", true, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n"
                     "<|im_start|>assistant\n"},
    {"chatml", false, "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n Hi! <|im_end|>\n"},
    {"zephyr", true, "<|system|>\nBe brief.<|endoftext|>\n<|user|>\n Hi! <|endoftext|>\n"
                     "<|assistant|>\n"},
    {"llama2", true, "[INST] Be brief.\n Hi!  [/INST]"},
    {"llama2", false, "[INST] Be brief.\n Hi!  [/INST]"},
    {"mistral", true, "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hi!  [/INST]"},
    {"gemma2", true, "<start_of_turn>user\nBe brief.\n\nHi!<end_of_turn>\n<start_of_turn>model\n"},
    {"vicuna-orca", true, "SYSTEM: Be brief.\nUSER:  Hi! \nASSISTANT:"},
    {"exaone3", true, "[|system|]Be brief.[|endofturn|]\n[|user|]Hi!\n[|assistant|]"},
};

TEST(ChatTemplateNames, RenderTheBitNetFamilies) {
  for (const NamedCase& c : kNamed) {
    SCOPED_TRACE(absl::StrCat(c.name, " add_assistant=", c.add_assistant));
    EXPECT_THAT(RenderChat(c.name, kShort, c.add_assistant), Optional(std::string(c.expected)));
  }
}

TEST(ChatTemplateNames, EveryNameButFalconEIsKnown) {
  for (absl::string_view name : BuiltinTemplateNames()) {
    SCOPED_TRACE(name);
    if (name == "falcon_e") {
      EXPECT_EQ(DetectTemplateFamily(name), std::nullopt);
    } else {
      EXPECT_NE(RenderChat(name, kShort, true), std::nullopt);
    }
  }
  EXPECT_THAT(DetectTemplateFamily("mistral"), Optional(absl::string_view("llama2")));
  EXPECT_THAT(DetectTemplateFamily("vicuna-orca"), Optional(absl::string_view("vicuna")));
}

// ---------------------------------------------------------------------------
// Detection of BitNet templates and refusals
// ---------------------------------------------------------------------------

TEST(ChatTemplateDetection, BitNetGgufTemplateIsBitnet) {
  // The template Microsoft's converter writes into BitNet 2B-4T GGUFs carries
  // "BITNET" in its labels.
  EXPECT_THAT(DetectTemplateFamily("{{ 'BITNETAssistant: ' + message['content'] }}"),
              Optional(absl::string_view("bitnet")));
}

TEST(ChatTemplateDetection, BitNetHuggingFaceTemplateIsUnknownInThisVersion) {
  // tokenizer_config.json of microsoft/bitnet-b1.58-2B-4T: "Role: content<|eot_id|>".
  // None of this llama.cpp version's substrings occur in it.
  const char* hf =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
      "message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if "
      "loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor "
      "%}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}";
  EXPECT_EQ(DetectTemplateFamily(hf), std::nullopt);
  EXPECT_EQ(RenderChat(hf, kShort, true), std::nullopt);
}

TEST(ChatTemplateDetection, UnknownTemplatesAreRefused) {
  EXPECT_EQ(RenderChat("INVALID TEMPLATE", kShort, true), std::nullopt);
  EXPECT_EQ(RenderChat("", kShort, true), std::nullopt);
  EXPECT_EQ(RenderChat("Llama3", kShort, true), std::nullopt);  // names are case-sensitive
}

TEST(ChatTemplateDetection, FirstMatchingFamilyWins) {
  // "<|user|>" with "<|assistant|>" is falcon3 even though zephyr also has <|user|>.
  EXPECT_THAT(DetectTemplateFamily("<|user|> <|assistant|>"),
              Optional(absl::string_view("falcon3")));
  EXPECT_THAT(DetectTemplateFamily("<|user|>"), Optional(absl::string_view("zephyr")));
  // chatml is tested before everything else.
  EXPECT_THAT(DetectTemplateFamily("<|im_start|> [INST]"), Optional(absl::string_view("chatml")));
}

// ---------------------------------------------------------------------------
// Quirks kept from upstream
// ---------------------------------------------------------------------------

TEST(ChatTemplateModelBuffer, ModelTemplateNamesDoNotMatchByName) {
  // Read from a model, "llama3" keeps the buffer's NULs and is not the name.
  const std::string t = ModelChatTemplate("llama3");
  EXPECT_EQ(t.size(), 2048u);
  EXPECT_EQ(DetectTemplateFamily(t), std::nullopt);
  EXPECT_THAT(DetectTemplateFamily(ModelChatTemplate("x <|im_start|> y")),
              Optional(absl::string_view("chatml")));
}

TEST(ChatTemplateModelBuffer, OnlyTheFirst2047BytesAreSeen) {
  const std::string pad(2047 - 5, ' ');
  EXPECT_THAT(DetectTemplateFamily(ModelChatTemplate(pad + "BITNET")), std::nullopt)
      << "'BITNET' straddles byte 2047";
  EXPECT_THAT(DetectTemplateFamily(ModelChatTemplate(pad.substr(1) + "BITNET")),
              Optional(absl::string_view("bitnet")));
}

TEST(ChatTemplateQuirks, MonarchSkipsBosOnlyBeforeTheFirstMessage) {
  EXPECT_THAT(RenderChat("monarch", {{"user", "a"}, {"user", "a"}}, false),
              Optional(std::string("user\na</s>\n<s>user\na</s>\n")));
}

TEST(ChatTemplateQuirks, OpenchatCapitalisesAsciiOnly) {
  EXPECT_THAT(RenderChat("openchat", {{"\xC3\xA9lan", "x"}}, false),
              Optional(std::string("GPT4 Correct \xC3\xA9lan: x<|end_of_turn|>")));
}

TEST(ChatTemplateQuirks, TrimIsAsciiOnly) {
  // U+00A0 (no-break space) is not trimmed; tab and newline are.
  EXPECT_THAT(RenderChat("llama3", {{"user", "\t\xC2\xA0x\n"}}, false),
              Optional(std::string("<|start_header_id|>user<|end_header_id|>\n\n\xC2\xA0x<|eot_id|>")));
}

}  // namespace
}  // namespace bitparity::chat

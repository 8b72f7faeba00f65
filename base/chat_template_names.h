// File: base/chat_template_names.h
//
// The names of the built-in chat templates of bitnet.cpp's llama.cpp
// (llama_chat_apply_template_internal), in its detection order. The native
// renderer (engine/chat), the service's validation (services/common) and
// bitparity's template comparison (orchestrator) all speak of this one list.
#pragma once

#include <array>

#include "absl/strings/string_view.h"

namespace bitparity {

inline constexpr std::array<absl::string_view, 23> kChatTemplateNames = {
    "chatml",  "llama2",   "mistral", "phi3",     "falcon3",  "falcon_e",    "zephyr",  "monarch",
    "gemma",   "gemma2",   "orion",   "openchat", "vicuna",   "vicuna-orca", "deepseek",
    "command-r", "llama3", "chatglm3", "chatglm4", "minicpm", "deepseek2",   "exaone3", "bitnet"};

}  // namespace bitparity

// File: services/common/chat_input.h
//
// Chat conversations in bitnet.v1 (Input.chat and the ApplyChatTemplate RPC),
// written once for both servers: validation of a ChatMessages, rendering it
// through the backend's own chat templates (bitnet.cpp's llama.cpp on one side,
// engine/chat on the other) with one wording of every error, and naming the
// built-in template a rendering is (ApplyChatTemplateResponse.template_name).
//
//   ASSIGN_OR_RETURN(RenderedChat r, RenderChatInput(req.chat(), backend, "chat"));
//   ASSIGN_OR_RETURN(std::string name, IdentifyChatTemplate(backend, req.chat().chat_template()));
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "bitnet/v1/engine.pb.h"
#include "services/common/engine_backend.h"

namespace bitparity {

// Bounds of a ChatMessages (documented in engine.proto).
inline constexpr int kMaxChatMessages = 1024;
inline constexpr int kMaxChatRoleBytes = 64;
inline constexpr int kMaxChatTemplateBytes = 65536;

// The built-in template names of bitnet.cpp's llama.cpp, in the order its
// llama_chat_apply_template tests them (the list in engine.proto). engine/chat
// keeps its own copy; a test holds the two equal.
absl::Span<const absl::string_view> ChatTemplateNames();

// 1 .. kMaxChatMessages messages, roles non-empty and at most kMaxChatRoleBytes,
// no NUL byte in roles, contents or the template (llama.cpp's C API would cut
// the string there), the template at most kMaxChatTemplateBytes.
// InvalidArgument naming `field` ("input.chat") and the message index.
absl::Status ValidateChatMessages(const bitnet::v1::ChatMessages& chat, const char* field);

struct RenderedChat {
  std::string text;
  ChatTemplateSource source = ChatTemplateSource::kRequest;
};

// Validates `chat` and renders it with the backend (add_assistant_prompt unset =
// true). A template no built-in one matches is InvalidArgument naming it when
// the request gave it, FailedPrecondition when it is the model's own.
absl::StatusOr<RenderedChat> RenderChatInput(const bitnet::v1::ChatMessages& chat,
                                             const EngineBackend& backend, const char* field);

// The first name of ChatTemplateNames() whose rendering of a fixed probe
// conversation equals that of `tmpl` (empty = the model's template); "" when
// none does. Renders once per name, with the backend's own renderer.
absl::StatusOr<std::string> IdentifyChatTemplate(const EngineBackend& backend,
                                                 absl::string_view tmpl);

bitnet::v1::ChatTemplateSource ToProtoChatTemplateSource(ChatTemplateSource source);

}  // namespace bitparity

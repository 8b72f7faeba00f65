#include "engine/gguf/model_header.h"

namespace bitparity {
namespace {

std::optional<std::string> StringKey(const GgufFile& f, const char* key) {
  absl::StatusOr<std::string> v = f.GetString(key);
  return v.ok() ? std::optional<std::string>(*std::move(v)) : std::nullopt;
}

std::optional<int64_t> IntKey(const GgufFile& f, const char* key) {
  absl::StatusOr<int64_t> v = f.GetInt64(key);
  return v.ok() ? std::optional<int64_t>(*v) : std::nullopt;
}

}  // namespace

ModelHeader ModelHeaderOf(const GgufFile& f) {
  ModelHeader h;
  h.file = f.path();
  h.tokenizer_model = StringKey(f, kKeyTokenizerModel);
  h.tokenizer_pre = StringKey(f, kKeyTokenizerPre);
  h.chat_template = StringKey(f, kKeyChatTemplate);
  h.bos_id = IntKey(f, kKeyBosId);
  h.eos_id = IntKey(f, kKeyEosId);
  h.eot_id = IntKey(f, kKeyEotId);
  if (auto tokens = f.GetStringArray("tokenizer.ggml.tokens"); tokens.ok()) {
    h.tokens.reserve(tokens->size());
    for (absl::string_view t : *tokens) h.tokens.emplace_back(t);
  }
  for (const GgufTensorInfo& t : f.tensors()) {
    h.tensors.push_back({t.name, static_cast<uint32_t>(t.type), t.ne});
  }
  return h;
}

}  // namespace bitparity

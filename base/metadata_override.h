// File: base/metadata_override.h
//
// A GGUF metadata override, as llama.cpp's `--override-kv KEY=TYPE:VALUE`
// (common/common.cpp string_parse_kv_override; llama_model_kv_override in llama.h).
// Parsed once here, so every server and tool accepts the same spellings, and the
// bitnet.cpp worker hands llama.cpp exactly the values our engine uses.
//
//   ASSIGN_OR_RETURN(MetadataOverride o, ParseMetadataOverride("tokenizer.ggml.pre=str:llama-bpe"));
//   FormatMetadataOverride(o) == "tokenizer.ggml.pre=str:llama-bpe"
//
// Rules (llama.cpp's, except where noted):
//   KEY    1..127 bytes before the first '='.
//   TYPE   int | float | bool | str.
//   VALUE  int: a whole decimal int64; float: a decimal or exponent number; bool:
//          exactly "true" or "false"; str: at most 127 bytes (llama.cpp's val_str is
//          char[128]). llama.cpp reads int and float with atol/atof and so takes
//          "int:abc" as 0; here that is an error.
// An empty key (llama.cpp's list terminator) and the same key twice are errors here;
// llama.cpp would end its list early or keep the first.
// bitnet-cpp-server parses the specs before starting workers (malformed: exit at once);
// a TYPE that differs from the file's is refused by each worker, so that server exits 1
// after --worker-start-timeout, like a bad model path.
// Whether TYPE matches the key's type in a file is checked where the file is read
// (engine/gguf's GgufFile::ApplyOverrides; base/model_lint.h for the header view).
//
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity {

// llama_model_kv_override_type.
enum class OverrideType { kInt, kFloat, kBool, kStr };

// "int" | "float" | "bool" | "str".
const char* OverrideTypeName(OverrideType type);

// Longest key and longest str value, in bytes (char[128] with its terminator).
inline constexpr size_t kMaxOverrideKeyBytes = 127;
inline constexpr size_t kMaxOverrideStrBytes = 127;

struct MetadataOverride {
  std::string key;
  OverrideType type = OverrideType::kInt;
  // The one matching `type` is meaningful.
  int64_t int_value = 0;
  double float_value = 0;
  bool bool_value = false;
  std::string str_value;
};

bool operator==(const MetadataOverride& a, const MetadataOverride& b);

// "KEY=TYPE:VALUE" -> override; InvalidArgument naming the spec and the rule it breaks.
absl::StatusOr<MetadataOverride> ParseMetadataOverride(absl::string_view spec);

// Every spec of a repeated flag, in order; InvalidArgument on the first bad one or
// on a key given twice.
absl::StatusOr<std::vector<MetadataOverride>> ParseMetadataOverrides(
    const std::vector<std::string>& specs);

// The value alone, as it would be written after "TYPE:" (floats round-trip: %.17g).
std::string OverrideValueText(const MetadataOverride& o);

// "KEY=TYPE:VALUE"; ParseMetadataOverride(FormatMetadataOverride(o)) == o.
std::string FormatMetadataOverride(const MetadataOverride& o);

// The override TYPE that can replace a GGUF value of type `gguf_value_type` (gguf_type:
// 0..5, 10, 11 integers -> int; 6, 12 floats -> float; 7 -> bool; 8 -> str); false
// for arrays (9) and unknown numbers, which no override can replace.
bool OverrideTypeForGgufType(uint32_t gguf_value_type, OverrideType* type);

// Whether `o` may replace a value of GGUF type `gguf_value_type` held by its key in
// `file`: the TYPE must be the key's (llama.cpp only warns and keeps the file's value;
// here a wrong TYPE is InvalidArgument, so no one runs a model they did not mean to),
// and an int must fit the key's integer width (OutOfRange otherwise).
absl::Status CheckOverrideFitsKey(const MetadataOverride& o, uint32_t gguf_value_type,
                                  absl::string_view file);

}  // namespace bitparity

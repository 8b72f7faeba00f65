// GgufFile::ApplyOverrides: the metadata overlay of --override-kv (gguf_reader.h).
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"

namespace bitparity {
namespace {

// The override's value in the GGUF type `type` (already checked to fit).
GgufValue ValueAs(const MetadataOverride& o, GgufValueType type, absl::string_view str) {
  switch (type) {
    case GgufValueType::kUint8: return static_cast<uint8_t>(o.int_value);
    case GgufValueType::kInt8: return static_cast<int8_t>(o.int_value);
    case GgufValueType::kUint16: return static_cast<uint16_t>(o.int_value);
    case GgufValueType::kInt16: return static_cast<int16_t>(o.int_value);
    case GgufValueType::kUint32: return static_cast<uint32_t>(o.int_value);
    case GgufValueType::kInt32: return static_cast<int32_t>(o.int_value);
    case GgufValueType::kUint64: return static_cast<uint64_t>(o.int_value);
    case GgufValueType::kInt64: return o.int_value;
    case GgufValueType::kFloat32: return static_cast<float>(o.float_value);
    case GgufValueType::kFloat64: return o.float_value;
    case GgufValueType::kBool: return o.bool_value;
    default: return str;
  }
}

// The GGUF type a missing key is added with.
GgufValueType NaturalType(OverrideType t) {
  switch (t) {
    case OverrideType::kInt: return GgufValueType::kInt64;
    case OverrideType::kFloat: return GgufValueType::kFloat64;
    case OverrideType::kBool: return GgufValueType::kBool;
    case OverrideType::kStr: return GgufValueType::kString;
  }
  return GgufValueType::kString;
}

}  // namespace

absl::Status GgufFile::ApplyOverrides(absl::Span<const MetadataOverride> overrides) {
  // Check all first, so a bad override leaves the file as it was.
  for (const MetadataOverride& o : overrides) {
    if (const GgufMetadataEntry* e = FindKey(o.key)) {
      RETURN_IF_ERROR(CheckOverrideFitsKey(o, static_cast<uint32_t>(e->type), path_));
    }
  }
  for (const MetadataOverride& o : overrides) {
    absl::string_view str;
    if (o.type == OverrideType::kStr) str = override_strings_.emplace_back(o.str_value);
    auto it = key_index_.find(o.key);
    if (it != key_index_.end()) {
      GgufMetadataEntry& e = metadata_[it->second];
      e.value = ValueAs(o, e.type, str);
    } else {
      const GgufValueType type = NaturalType(o.type);
      key_index_.emplace(o.key, metadata_.size());
      metadata_.push_back({o.key, type, ValueAs(o, type, str)});
    }
    overrides_.push_back(o);
  }
  return absl::OkStatus();
}

}  // namespace bitparity

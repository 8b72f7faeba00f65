#include "base/metadata_override.h"

#include <cmath>
#include <limits>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace bitparity {
namespace {

absl::Status Bad(absl::string_view spec, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("malformed metadata override '", spec, "': ", why,
                   " (expected KEY=TYPE:VALUE, TYPE one of int, float, bool, str)"));
}

}  // namespace

const char* OverrideTypeName(OverrideType type) {
  switch (type) {
    case OverrideType::kInt: return "int";
    case OverrideType::kFloat: return "float";
    case OverrideType::kBool: return "bool";
    case OverrideType::kStr: return "str";
  }
  return "unknown";
}

bool operator==(const MetadataOverride& a, const MetadataOverride& b) {
  if (a.key != b.key || a.type != b.type) return false;
  switch (a.type) {
    case OverrideType::kInt: return a.int_value == b.int_value;
    case OverrideType::kFloat: return a.float_value == b.float_value;
    case OverrideType::kBool: return a.bool_value == b.bool_value;
    case OverrideType::kStr: return a.str_value == b.str_value;
  }
  return false;
}

absl::StatusOr<MetadataOverride> ParseMetadataOverride(absl::string_view spec) {
  const size_t eq = spec.find('=');
  if (eq == absl::string_view::npos) return Bad(spec, "no '='");
  if (eq == 0) return Bad(spec, "empty key");
  if (eq > kMaxOverrideKeyBytes) {
    return Bad(spec, absl::StrCat("key longer than ", kMaxOverrideKeyBytes, " bytes"));
  }
  MetadataOverride o;
  o.key = std::string(spec.substr(0, eq));
  absl::string_view rest = spec.substr(eq + 1);
  const size_t colon = rest.find(':');
  if (colon == absl::string_view::npos) return Bad(spec, "no TYPE: before the value");
  const absl::string_view type = rest.substr(0, colon);
  const absl::string_view value = rest.substr(colon + 1);
  if (type == "int") {
    o.type = OverrideType::kInt;
    if (!absl::SimpleAtoi(value, &o.int_value)) {
      return Bad(spec, absl::StrCat("'", value, "' is not a 64-bit integer"));
    }
  } else if (type == "float") {
    o.type = OverrideType::kFloat;
    if (!absl::SimpleAtod(value, &o.float_value) || !std::isfinite(o.float_value)) {
      return Bad(spec, absl::StrCat("'", value, "' is not a finite number"));
    }
  } else if (type == "bool") {
    o.type = OverrideType::kBool;
    if (value == "true") {
      o.bool_value = true;
    } else if (value != "false") {
      return Bad(spec, absl::StrCat("bool value '", value, "' is neither true nor false"));
    }
  } else if (type == "str") {
    o.type = OverrideType::kStr;
    if (value.size() > kMaxOverrideStrBytes) {
      return Bad(spec, absl::StrCat("str value longer than ", kMaxOverrideStrBytes, " bytes"));
    }
    o.str_value = std::string(value);
  } else {
    return Bad(spec, absl::StrCat("unknown type '", type, "'"));
  }
  return o;
}

absl::StatusOr<std::vector<MetadataOverride>> ParseMetadataOverrides(
    const std::vector<std::string>& specs) {
  std::vector<MetadataOverride> out;
  absl::flat_hash_set<std::string> seen;
  for (const std::string& spec : specs) {
    absl::StatusOr<MetadataOverride> o = ParseMetadataOverride(spec);
    if (!o.ok()) return o.status();
    if (!seen.insert(o->key).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata key '", o->key, "' is overridden twice"));
    }
    out.push_back(*std::move(o));
  }
  return out;
}

std::string OverrideValueText(const MetadataOverride& o) {
  switch (o.type) {
    case OverrideType::kInt: return absl::StrCat(o.int_value);
    case OverrideType::kFloat: return absl::StrFormat("%.17g", o.float_value);
    case OverrideType::kBool: return o.bool_value ? "true" : "false";
    case OverrideType::kStr: return o.str_value;
  }
  return "";
}

std::string FormatMetadataOverride(const MetadataOverride& o) {
  return absl::StrCat(o.key, "=", OverrideTypeName(o.type), ":", OverrideValueText(o));
}

bool OverrideTypeForGgufType(uint32_t gguf_value_type, OverrideType* type) {
  switch (gguf_value_type) {
    case 0: case 1: case 2: case 3: case 4: case 5: case 10: case 11:
      *type = OverrideType::kInt;
      return true;
    case 6: case 12:
      *type = OverrideType::kFloat;
      return true;
    case 7:
      *type = OverrideType::kBool;
      return true;
    case 8:
      *type = OverrideType::kStr;
      return true;
    default:
      return false;
  }
}

namespace {

// Range of the GGUF integer types 0..5, 10, 11 (u8, i8, u16, i16, u32, i32, u64, i64).
bool IntFits(int64_t v, uint32_t gguf_value_type) {
  switch (gguf_value_type) {
    case 0: return v >= 0 && v <= std::numeric_limits<uint8_t>::max();
    case 1: return v >= std::numeric_limits<int8_t>::min() && v <= std::numeric_limits<int8_t>::max();
    case 2: return v >= 0 && v <= std::numeric_limits<uint16_t>::max();
    case 3: return v >= std::numeric_limits<int16_t>::min() && v <= std::numeric_limits<int16_t>::max();
    case 4: return v >= 0 && v <= std::numeric_limits<uint32_t>::max();
    case 5: return v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max();
    case 10: return v >= 0;
    default: return true;
  }
}

const char* GgufTypeWord(uint32_t t) {
  static const char* const kNames[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32",
                                       "bool", "str", "array", "u64", "i64", "f64"};
  return t < 13 ? kNames[t] : "unknown";
}

}  // namespace

absl::Status CheckOverrideFitsKey(const MetadataOverride& o, uint32_t gguf_value_type,
                                  absl::string_view file) {
  OverrideType want;
  if (!OverrideTypeForGgufType(gguf_value_type, &want)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata override '", FormatMetadataOverride(o), "': ", file, " holds key '", o.key,
        "' as ", GgufTypeWord(gguf_value_type), ", which cannot be overridden"));
  }
  if (want != o.type) {
    return absl::InvalidArgumentError(absl::StrCat(
        "metadata override '", FormatMetadataOverride(o), "': ", file, " holds key '", o.key,
        "' as ", GgufTypeWord(gguf_value_type), ", so the override must be ", OverrideTypeName(want),
        ":, not ", OverrideTypeName(o.type), ":"));
  }
  if (o.type == OverrideType::kInt && !IntFits(o.int_value, gguf_value_type)) {
    return absl::OutOfRangeError(absl::StrCat("metadata override '", FormatMetadataOverride(o),
                                              "': ", o.int_value, " does not fit key '", o.key,
                                              "' (", GgufTypeWord(gguf_value_type), ") of ", file));
  }
  return absl::OkStatus();
}

}  // namespace bitparity

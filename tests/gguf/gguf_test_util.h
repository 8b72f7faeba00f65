// File: tests/gguf/gguf_test_util.h
//
// Helpers for the GGUF tests: a StatusIs(code, message_matcher) matcher (Debian's
// Abseil has no status_matchers.h) and GgufBytes, a little-endian byte builder for
// hand-made GGUF files with exactly one defect each.
#pragma once

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "gmock/gmock.h"

namespace bitparity::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER_P2(StatusIs, code, message_matcher, "") {
  const absl::Status& s = GetStatus(arg);
  if (s.code() != code) {
    *result_listener << "status is " << s;
    return false;
  }
  return ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER(IsOk, "") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

// Appends little-endian GGUF fields. Type numbers are spelled out in the tests so
// that a defect is visible at the call site.
class GgufBytes {
 public:
  template <typename T>
  GgufBytes& Put(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  GgufBytes& U8(uint8_t v) { return Put(v); }
  GgufBytes& U32(uint32_t v) { return Put(v); }
  GgufBytes& U64(uint64_t v) { return Put(v); }
  GgufBytes& I64(int64_t v) { return Put(v); }
  GgufBytes& F32(float v) { return Put(v); }
  GgufBytes& Str(absl::string_view s) {
    U64(s.size());
    bytes_.append(s.data(), s.size());
    return *this;
  }
  GgufBytes& Raw(absl::string_view s) {
    bytes_.append(s.data(), s.size());
    return *this;
  }
  GgufBytes& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return Raw("GGUF").U32(version).U64(n_tensors).U64(n_kv);
  }
  GgufBytes& KvU32(absl::string_view key, uint32_t v) { return Str(key).U32(4).U32(v); }
  GgufBytes& KvStr(absl::string_view key, absl::string_view v) { return Str(key).U32(8).Str(v); }
  GgufBytes& TensorInfo(absl::string_view name, std::initializer_list<int64_t> ne, uint32_t type,
                        uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) I64(d);
    return U32(type).U64(offset);
  }
  GgufBytes& PadTo(size_t alignment) {
    bytes_.resize((bytes_.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
  GgufBytes& Zeros(size_t n) {
    bytes_.append(n, '\0');
    return *this;
  }
  size_t size() const { return bytes_.size(); }
  const std::string& str() const { return bytes_; }

 private:
  std::string bytes_;
};

}  // namespace bitparity::testing

namespace absl {
// Lets gtest print a StatusOr in failure messages instead of its raw bytes.
template <typename T>
void PrintTo(const StatusOr<T>& s, std::ostream* os) {
  if (s.ok()) {
    *os << "OK (a value)";
  } else {
    *os << s.status();
  }
}
}  // namespace absl

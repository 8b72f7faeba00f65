// File: tests/services/status_matchers.h
//
// StatusIs(code, message_matcher) for absl::Status, absl::StatusOr<T> and
// grpc::Status (Debian's Abseil 20220623 has no status_matchers.h).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "grpcpp/support/status.h"

namespace bitparity::testing {

inline absl::Status ToAbsl(const absl::Status& s) { return s; }
template <typename T>
absl::Status ToAbsl(const absl::StatusOr<T>& s) {
  return s.status();
}
inline absl::Status ToAbsl(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

MATCHER_P2(StatusIs, code, message_matcher,
           std::string("has status ") + absl::StatusCodeToString(code)) {
  const absl::Status s = ToAbsl(arg);
  *result_listener << "status is " << s.ToString();
  return s.code() == code &&
         ::testing::ExplainMatchResult(message_matcher, std::string(s.message()), result_listener);
}

MATCHER(IsOk, "is OK") {
  const absl::Status s = ToAbsl(arg);
  *result_listener << "status is " << s.ToString();
  return s.ok();
}

}  // namespace bitparity::testing

// File: base/status_macros.h
//
// RETURN_IF_ERROR and ASSIGN_OR_RETURN for absl::Status / absl::StatusOr, which
// the Abseil in Debian 12 (20220623) does not ship yet.
//
//   absl::StatusOr<Model> Load(...) {
//     ASSIGN_OR_RETURN(GgufFile file, GgufFile::Open(path));
//     RETURN_IF_ERROR(Validate(file));
//     ...
//   }
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define BP_STATUS_CONCAT_INNER(a, b) a##b
#define BP_STATUS_CONCAT(a, b) BP_STATUS_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                 \
  do {                                        \
    ::absl::Status bp_status_ = (expr);       \
    if (!bp_status_.ok()) return bp_status_;  \
  } while (0)

#define ASSIGN_OR_RETURN(lhs, expr) \
  BP_ASSIGN_OR_RETURN_IMPL(BP_STATUS_CONCAT(bp_statusor_, __LINE__), lhs, expr)

#define BP_ASSIGN_OR_RETURN_IMPL(statusor, lhs, expr) \
  auto statusor = (expr);                             \
  if (!statusor.ok()) return statusor.status();       \
  lhs = std::move(*statusor)

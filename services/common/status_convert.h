// File: services/common/status_convert.h
//
// absl::Status <-> grpc::Status. The canonical codes are the same set with the
// same numbers (absl/status/status.h says so), so the mapping is one to one and
// an engine's Status reaches the wire unchanged: code and message.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace bitparity {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace bitparity

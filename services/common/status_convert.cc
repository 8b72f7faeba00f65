#include "services/common/status_convert.h"

#include <string>

namespace bitparity {

static_assert(static_cast<int>(absl::StatusCode::kUnauthenticated) ==
                  static_cast<int>(grpc::StatusCode::UNAUTHENTICATED),
              "absl and gRPC code numbering differ");
static_assert(static_cast<int>(absl::StatusCode::kDataLoss) ==
                  static_cast<int>(grpc::StatusCode::DATA_LOSS),
              "absl and gRPC code numbering differ");

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // absl::string_view is not std::string_view in Abseil 20220623: copy explicitly.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message().data(), status.message().size()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace bitparity

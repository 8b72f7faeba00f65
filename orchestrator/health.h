// File: orchestrator/health.h
//
// `bitparity health ADDR`: one grpc.health.v1.Health/Check call, like
// grpc_health_probe, for container health checks (Docker HEALTHCHECK) where
// Kubernetes' native gRPC probes are not available. Plain text (no TLS), as
// Kubernetes' gRPC probes are. Exit 0 when the server answers SERVING, 1 when it
// answers another status, 2 when it cannot be reached in time.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/channel.h"

namespace bitparity {

// One Health/Check of `service` over `channel`: the ServingStatus number (1 =
// SERVING), or the gRPC error as a Status.
absl::StatusOr<int> CheckHealthStatus(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                                      double timeout_s);

// Server reflection (grpc.reflection.v1alpha, list_services): the raw reply bytes,
// in which each service name appears as a length-delimited string.
absl::StatusOr<std::string> ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel, double timeout_s);

int RunHealthProbe(const std::string& address, const std::string& service, double timeout_s, bool quiet);

}  // namespace bitparity

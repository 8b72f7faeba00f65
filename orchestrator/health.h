// File: orchestrator/health.h
//
// `bitparity health ADDR`: one grpc.health.v1.Health/Check call, like
// grpc_health_probe, for container health checks (Docker HEALTHCHECK) where
// Kubernetes' native gRPC probes are not available. Plain text (no TLS), as
// Kubernetes' gRPC probes are. Exit 0 when the server answers SERVING, 1 when it
// answers another status, 2 when it cannot be reached in time.
#pragma once

#include <string>

namespace bitparity {

int RunHealthProbe(const std::string& address, const std::string& service, double timeout_s, bool quiet);

}  // namespace bitparity

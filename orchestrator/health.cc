#include "orchestrator/health.h"

#include <chrono>
#include <cstdio>
#include <vector>

#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"

namespace bitparity {

namespace {

// The two messages are tiny; encode them by hand rather than depend on the
// health proto's generated code:
//   HealthCheckRequest  { string service = 1; }
//   HealthCheckResponse { ServingStatus status = 1; }  (1 = SERVING)
std::string EncodeRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;
  out.push_back(0x0a);  // field 1, length-delimited
  size_t n = service.size();
  while (n >= 0x80) {
    out.push_back(static_cast<char>((n & 0x7f) | 0x80));
    n >>= 7;
  }
  out.push_back(static_cast<char>(n));
  return out + service;
}

// The status field, 0 (UNKNOWN) when absent; -1 on a malformed reply.
int DecodeStatus(const std::string& b) {
  int status = 0;
  size_t i = 0;
  auto varint = [&](uint64_t* v) {
    *v = 0;
    for (int shift = 0; i < b.size() && shift < 64; shift += 7) {
      const unsigned char c = b[i++];
      *v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if (!(c & 0x80)) return true;
    }
    return false;
  };
  while (i < b.size()) {
    uint64_t key, v;
    if (!varint(&key)) return -1;
    const int wire = key & 7;
    if (wire == 0) {
      if (!varint(&v)) return -1;
      if ((key >> 3) == 1) status = static_cast<int>(v);
    } else if (wire == 2) {
      if (!varint(&v) || i + v > b.size()) return -1;
      i += v;
    } else {
      return -1;
    }
  }
  return status;
}

const char* StatusName(int s) {
  switch (s) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "malformed reply";
  }
}

std::string BytesOf(grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return bytes;
}

void SetTimeout(grpc::ClientContext* ctx, double timeout_s) {
  ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000)));
}

absl::Status ToStatus(const grpc::Status& s, const char* what) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), std::string(what) + ": " + s.error_message());
}

// One generic unary grpc.health.v1.Health/Check call with `ctx` (deadline and
// wait-for-ready already set); the reply's bytes into *response.
grpc::Status CallHealthCheck(const std::shared_ptr<grpc::Channel>& channel, grpc::ClientContext* ctx,
                             const std::string& service, grpc::ByteBuffer* response) {
  grpc::GenericStub stub(channel);
  const std::string req_bytes = EncodeRequest(service);
  grpc::Slice slice(req_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::CompletionQueue cq;
  auto call = stub.PrepareUnaryCall(ctx, "/grpc.health.v1.Health/Check", request, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(response, &status, reinterpret_cast<void*>(1));
  void* tag = nullptr;
  bool ok = false;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

}  // namespace

absl::StatusOr<int> CheckHealthStatus(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                                      double timeout_s) {
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_s);
  grpc::ByteBuffer response;
  const grpc::Status status = CallHealthCheck(channel, &ctx, service, &response);
  if (!status.ok()) return ToStatus(status, "grpc.health.v1.Health/Check");
  return DecodeStatus(BytesOf(response));
}

absl::StatusOr<std::string> ReflectionListServices(const std::shared_ptr<grpc::Channel>& channel, double timeout_s) {
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  SetTimeout(&ctx, timeout_s);
  grpc::CompletionQueue cq;
  // ServerReflectionRequest { string list_services = 7; } with an empty value.
  const std::string req_bytes("\x3a\x00", 2);
  grpc::Slice slice(req_bytes);
  grpc::ByteBuffer request(&slice, 1), response;
  grpc::Status status;
  // One bidi call driven step by step: start, write, half-close, read, finish.
  auto call = stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  void* tag = nullptr;
  bool ok = false;
  bool read_ok = false;
  call->StartCall(reinterpret_cast<void*>(1));
  if (cq.Next(&tag, &ok) && ok) {
    call->Write(request, reinterpret_cast<void*>(2));
    if (cq.Next(&tag, &ok) && ok) {
      call->WritesDone(reinterpret_cast<void*>(3));
      cq.Next(&tag, &ok);
      call->Read(&response, reinterpret_cast<void*>(4));
      read_ok = cq.Next(&tag, &ok) && ok;
    }
  }
  call->Finish(&status, reinterpret_cast<void*>(5));
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return ToStatus(status, "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo");
  if (!read_ok) return absl::DataLossError("server reflection: no reply to list_services");
  return BytesOf(response);
}

int RunHealthProbe(const std::string& address, const std::string& service, double timeout_s, bool quiet) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  grpc::ClientContext ctx;
  ctx.set_wait_for_ready(true);  // a server still binding is not an error until the deadline
  SetTimeout(&ctx, timeout_s);
  grpc::ByteBuffer response;
  const grpc::Status status = CallHealthCheck(channel, &ctx, service, &response);
  if (!status.ok()) {
    if (!quiet) {
      std::fprintf(stderr, "bitparity health: %s: %s: %s\n", address.c_str(),
                   status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? "no answer in time" : "error",
                   status.error_message().c_str());
    }
    return 2;
  }
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (response.Dump(&slices).ok()) {
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  const int st = DecodeStatus(bytes);
  if (!quiet) std::printf("%s: %s\n", address.c_str(), StatusName(st));
  return st == 1 ? 0 : 1;
}

}  // namespace bitparity

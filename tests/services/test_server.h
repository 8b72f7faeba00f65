// File: tests/services/test_server.h
//
// An EngineServer on 127.0.0.1:0 with a given backend, a client stub for it, and
// the request log captured in a temporary file, for loopback integration tests.
// Also: TLS test certificates made with the openssl command-line tool.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "services/common/engine_server.h"

namespace bitparity::testing {

inline std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class LoopbackServer {
 public:
  // Starts the server; the backend is installed unless `install_backend` is false.
  static std::unique_ptr<LoopbackServer> Start(ServerOptions options,
                                               std::shared_ptr<EngineBackend> backend,
                                               bool install_backend = true) {
    auto s = std::unique_ptr<LoopbackServer>(new LoopbackServer());
    s->log_file_ = std::tmpfile();
    s->log_ = std::make_unique<RequestLog>(s->log_file_);
    options.listen = "127.0.0.1:0";
    auto server = EngineServer::Start(options, s->log_.get());
    if (!server.ok()) {
      ADD_FAILURE() << "server did not start: " << server.status();
      return nullptr;
    }
    s->server_ = std::move(*server);
    s->backend_ = backend;
    if (install_backend) s->server_->SetBackend(backend);
    return s;
  }

  ~LoopbackServer() {
    server_.reset();
    if (log_file_ != nullptr) std::fclose(log_file_);
  }

  EngineServer& server() { return *server_; }
  int port() const { return server_->port(); }
  std::string address() const { return absl::StrCat("127.0.0.1:", server_->port()); }

  std::shared_ptr<grpc::Channel> Channel(
      std::shared_ptr<grpc::ChannelCredentials> creds = grpc::InsecureChannelCredentials(),
      int max_receive_mb = 256) const {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(max_receive_mb << 20);
    args.SetMaxSendMessageSize(max_receive_mb << 20);
    args.SetSslTargetNameOverride("localhost");
    return grpc::CreateCustomChannel(address(), creds, args);
  }
  std::unique_ptr<bitnet::v1::Engine::Stub> Stub() const {
    return bitnet::v1::Engine::NewStub(Channel());
  }

  // Health of `service` ("" = the whole server).
  grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& service = "") {
    auto stub = grpc::health::v1::Health::NewStub(Channel());
    grpc::ClientContext ctx;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::Status st = stub->Check(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return resp.status();
  }

  // The request log so far, one JSON object per line.
  std::vector<std::string> LogLines() {
    std::fflush(log_file_);
    std::rewind(log_file_);
    std::string all;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), log_file_)) > 0) all.append(buf, n);
    std::fseek(log_file_, 0, SEEK_END);
    std::vector<std::string> lines;
    for (absl::string_view l : absl::StrSplit(all, '\n', absl::SkipEmpty())) lines.emplace_back(l);
    return lines;
  }

 private:
  LoopbackServer() = default;
  std::FILE* log_file_ = nullptr;
  std::unique_ptr<RequestLog> log_;
  std::unique_ptr<EngineServer> server_;
  std::shared_ptr<EngineBackend> backend_;
};

// A CA, a server certificate for localhost/127.0.0.1 and a client certificate,
// all signed by the CA, made with the `openssl` tool in a fresh temporary folder.
inline bool HaveOpensslTool() { return std::system("command -v openssl >/dev/null 2>&1") == 0; }

struct TestCertificates {
  std::string dir;
  std::string ca_pem, server_pem, server_key, client_pem, client_key;
  std::string other_ca_pem;  // an unrelated CA (for rejection tests)

  static std::unique_ptr<TestCertificates> Make() {
    char tmpl[] = "/tmp/bitparity-tls-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) return nullptr;
    auto c = std::make_unique<TestCertificates>();
    c->dir = tmpl;
    const std::string d = c->dir;
    const std::string key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::vector<std::string> cmds = {
        absl::StrCat("openssl req -x509 ", key, " -keyout ", d, "/ca.key -out ", d,
                     "/ca.pem -days 2 -subj /CN=bitparity-test-ca"),
        absl::StrCat("openssl req -x509 ", key, " -keyout ", d, "/other.key -out ", d,
                     "/other.pem -days 2 -subj /CN=bitparity-other-ca"),
        absl::StrCat("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > ", d, "/san.ext"),
        absl::StrCat("openssl req ", key, " -keyout ", d, "/server.key -out ", d,
                     "/server.csr -subj /CN=localhost"),
        absl::StrCat("openssl x509 -req -in ", d, "/server.csr -CA ", d, "/ca.pem -CAkey ", d,
                     "/ca.key -CAcreateserial -out ", d, "/server.pem -days 2 -extfile ", d,
                     "/san.ext"),
        absl::StrCat("openssl req ", key, " -keyout ", d, "/client.key -out ", d,
                     "/client.csr -subj /CN=bitparity-client"),
        absl::StrCat("openssl x509 -req -in ", d, "/client.csr -CA ", d, "/ca.pem -CAkey ", d,
                     "/ca.key -CAcreateserial -out ", d, "/client.pem -days 2"),
    };
    for (const std::string& cmd : cmds) {
      if (std::system((cmd + " >/dev/null 2>&1").c_str()) != 0) {
        ADD_FAILURE() << "failed: " << cmd;
        return nullptr;
      }
    }
    c->ca_pem = d + "/ca.pem";
    c->other_ca_pem = d + "/other.pem";
    c->server_pem = d + "/server.pem";
    c->server_key = d + "/server.key";
    c->client_pem = d + "/client.pem";
    c->client_key = d + "/client.key";
    return c;
  }

  ~TestCertificates() {
    if (!dir.empty() && std::system(("rm -rf " + dir).c_str()) != 0) {
      ADD_FAILURE() << "could not remove " << dir;
    }
  }
};

}  // namespace bitparity::testing

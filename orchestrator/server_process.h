// File: orchestrator/server_process.h
//
// A bitnet.v1 server run as a child process (Boost.Process), for `bitparity demo`
// and the end-to-end tests. The server binds 127.0.0.1:0 (a free port chosen by
// the OS) and reports the port through --port-file, so no port is ever guessed.
// The child gets PR_SET_PDEATHSIG(SIGTERM): it goes away with us even when we
// are killed. Stop() sends SIGTERM (the servers drain and exit 0), waits, then
// SIGKILLs. The destructor stops a running child.
//
//   auto s = ServerProcess::Start({.binary = BinDir() + "/bitnet-native-server",
//                                  .args = {"--model", m}, .label = "A", .log_path = "a.log"}, 60);
//   ... connect to (*s)->address() ...
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace boost::process {
class child;
}

namespace bitparity {

struct ServerSpec {
  std::string binary;
  std::vector<std::string> args;  // --listen and --port-file are added
  std::string label;              // for messages
  std::string log_path;           // the child's stdout and stderr ("" = /dev/null)
};

class ServerProcess {
 public:
  // Starts the child and waits (up to timeout_s) for its port file. NotFound
  // when the binary is missing; Internal with the log's tail when it exits early.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const ServerSpec& spec, double timeout_s);
  ~ServerProcess();

  int port() const { return port_; }
  std::string address() const;  // "127.0.0.1:PORT"
  int pid() const { return pid_; }
  const ServerSpec& spec() const { return spec_; }
  bool Running();
  // SIGTERM, up to grace_s to exit, then SIGKILL. Idempotent.
  void Stop(double grace_s = 10);

 private:
  ServerProcess() = default;
  ServerSpec spec_;
  std::unique_ptr<boost::process::child> child_;
  std::string port_file_;
  int port_ = 0;
  int pid_ = -1;
};

// The folder holding this executable (/proc/self/exe).
std::string ExecutableDir();
// dir/name when that file exists and is executable, else "".
std::string FindExecutable(const std::string& dir, const std::string& name);
// The last `n` lines of a text file ("" when unreadable).
std::string TailOfFile(const std::string& path, int n);

}  // namespace bitparity

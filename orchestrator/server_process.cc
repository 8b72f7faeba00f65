#include "orchestrator/server_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <thread>

#include <boost/process.hpp>
#include <boost/process/extend.hpp>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace bitparity {
namespace bp = boost::process;

std::string ExecutableDir() {
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  std::string p(buf, n);
  const size_t slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

std::string FindExecutable(const std::string& dir, const std::string& name) {
  const std::string p = dir + "/" + name;
  return access(p.c_str(), X_OK) == 0 ? p : "";
}

std::string TailOfFile(const std::string& path, int n) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    lines.push_back(line);
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  return absl::StrJoin(lines, "\n");
}

std::string ServerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const ServerSpec& spec, double timeout_s) {
  if (access(spec.binary.c_str(), X_OK) != 0) {
    return absl::NotFoundError(absl::StrCat("server binary '", spec.binary, "' not found or not executable"));
  }
  std::unique_ptr<ServerProcess> s(new ServerProcess());
  s->spec_ = spec;
  char tmpl[] = "/tmp/bitparity-port-XXXXXX";
  const int fd = mkstemp(tmpl);
  if (fd < 0) return absl::InternalError("mkstemp failed for the port file");
  close(fd);
  s->port_file_ = tmpl;
  std::remove(tmpl);  // the server creates it once the port is bound
  std::vector<std::string> args = spec.args;
  args.insert(args.end(), {"--listen", "127.0.0.1:0", "--port-file", s->port_file_});
  const std::string log = spec.log_path.empty() ? "/dev/null" : spec.log_path;
  try {
    s->child_ = std::make_unique<bp::child>(
        bp::exe = spec.binary, bp::args = args, bp::std_in < bp::null, (bp::std_out & bp::std_err) > log,
        bp::extend::on_exec_setup = [](auto&) {
          // The child must not inherit a blocked SIGINT/SIGTERM (bitparity demo
          // blocks them for its signal thread), and must die with us.
          sigset_t none;
          sigemptyset(&none);
          sigprocmask(SIG_SETMASK, &none, nullptr);
          prctl(PR_SET_PDEATHSIG, SIGTERM);
        });
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("cannot start ", spec.binary, ": ", e.what()));
  }
  s->pid_ = s->child_->id();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(s->port_file_);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    int port = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &port) && port > 0) {
      s->port_ = port;
      std::remove(s->port_file_.c_str());
      return s;
    }
    if (!s->Running()) {
      return absl::InternalError(absl::StrCat("server ", spec.label, " (", spec.binary, ") exited with code ",
                                              s->child_->exit_code(), " before binding; last log lines:\n",
                                              TailOfFile(log, 15)));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  s->Stop(1);
  return absl::DeadlineExceededError(absl::StrCat("server ", spec.label, " did not report its port within ",
                                                  timeout_s, " s; last log lines:\n", TailOfFile(log, 15)));
}

bool ServerProcess::Running() {
  if (!child_) return false;
  std::error_code ec;
  return child_->running(ec);
}

void ServerProcess::Stop(double grace_s) {
  if (!child_) return;
  if (Running()) {
    kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<int64_t>(grace_s * 1000));
    while (Running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (Running()) {
      std::error_code ec;
      child_->terminate(ec);  // SIGKILL
    }
  }
  std::error_code ec;
  if (child_->valid()) child_->wait(ec);
  child_.reset();
  std::remove(port_file_.c_str());
}

ServerProcess::~ServerProcess() { Stop(5); }

}  // namespace bitparity

#include "orchestrator/demo.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/process.hpp>

#include "absl/strings/str_cat.h"
#include "orchestrator/compare_command.h"
#include "orchestrator/prompt_set.h"
#include "orchestrator/server_process.h"

namespace bitparity {
namespace bp = boost::process;

namespace {

bool MakeDirs(const std::string& path) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      cur = path.substr(0, i);
      if (mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
    }
  }
  return true;
}

bool Exists(const std::string& p) {
  struct stat st;
  return stat(p.c_str(), &st) == 0;
}

// The servers the signal thread must stop; guarded by g_mu.
std::mutex g_mu;
std::vector<ServerProcess*> g_servers;

void StopAll() {
  std::lock_guard<std::mutex> lock(g_mu);
  for (ServerProcess* s : g_servers) s->Stop(5);
}

// Ctrl-C / SIGTERM while the demo runs: stop both servers, then exit 130 / 143.
// SIGUSR1 ends the thread when the demo is done.
void SignalThread(sigset_t set) {
  int sig = 0;
  sigwait(&set, &sig);
  if (sig == SIGUSR1) return;
  std::fprintf(stderr, "\nbitparity demo: %s, stopping the servers\n", sig == SIGINT ? "interrupted" : "terminated");
  StopAll();
  std::_Exit(128 + sig);
}

absl::StatusOr<std::string> EnsureModel(const std::string& bin_dir, const std::string& cache_dir) {
  const std::string model = cache_dir + "/models/synth-tiny-seed1.gguf";
  if (Exists(model)) return model;
  const std::string synth = FindExecutable(bin_dir, "bitnet-synth");
  if (synth.empty()) {
    return absl::NotFoundError(absl::StrCat("bitnet-synth not found in ", bin_dir,
                                            " (build it: cmake --build build --target bitnet-synth)"));
  }
  if (!MakeDirs(cache_dir + "/models")) {
    return absl::PermissionDeniedError(absl::StrCat("cannot create ", cache_dir, "/models"));
  }
  std::fprintf(stderr, "bitparity demo: first use: writing the demo model with bitnet-synth to %s\n", model.c_str());
  const std::string tmp = model + ".tmp";
  int code = -1;
  try {
    code = bp::system(bp::exe = synth, bp::args = {"--shape", "tiny", "--seed", "1", "--out", tmp},
                      bp::std_in < bp::null, (bp::std_out & bp::std_err) > (cache_dir + "/models/synth.log"));
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("running bitnet-synth failed: ", e.what()));
  }
  if (code != 0 || std::rename(tmp.c_str(), model.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("bitnet-synth exited with ", code, ": ",
                                            TailOfFile(cache_dir + "/models/synth.log", 10)));
  }
  return model;
}

}  // namespace

std::string DefaultCacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/bitparity";
  if (const char* h = std::getenv("HOME"); h && *h) return std::string(h) + "/.cache/bitparity";
  return "/tmp/bitparity-cache";
}

int RunDemo(const DemoOptions& o, const std::string& command_line, Progress* progress) {
  const std::string bin_dir = o.bin_dir.empty() ? ExecutableDir() : o.bin_dir;
  const std::string cache_dir = o.cache_dir.empty() ? DefaultCacheDir() : o.cache_dir;
  const std::string out_dir = o.out_dir.empty() ? cache_dir + "/demo" : o.out_dir;
  if (!MakeDirs(out_dir)) {
    std::fprintf(stderr, "bitparity demo: cannot create %s\n", out_dir.c_str());
    return 2;
  }
  const std::string native = FindExecutable(bin_dir, "bitnet-native-server");
  if (native.empty()) {
    std::fprintf(stderr, "bitparity demo: bitnet-native-server not found in %s (build it: cmake --build build "
                 "--target bitnet-native-server)\n", bin_dir.c_str());
    return 2;
  }
  std::string model = o.model;
  if (model.empty()) {
    auto m = EnsureModel(bin_dir, cache_dir);
    if (!m.ok()) {
      std::fprintf(stderr, "bitparity demo: %s\n", std::string(m.status().message()).c_str());
      return 2;
    }
    model = *m;
  }

  // Signals go to one thread that stops the servers; block them before any thread
  // or child exists (children unblock them again, server_process.cc).
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread sig_thread(SignalThread, set);

  const std::string cpp = FindExecutable(bin_dir, "bitnet-cpp-server");
  std::vector<std::string> common = {"--model", model};
  if (o.server_threads > 0) common.insert(common.end(), {"--threads", std::to_string(o.server_threads)});
  ServerSpec spec_a;
  spec_a.binary = native;
  spec_a.args = common;
  spec_a.label = "A";
  spec_a.log_path = out_dir + "/server-a.log";
  spec_a.args.insert(spec_a.args.end(), {"--kernels", "auto"});
  ServerSpec spec_b;
  if (!cpp.empty()) {
    spec_b.binary = cpp;
    spec_b.args = common;
    spec_b.label = "B";
    spec_b.log_path = out_dir + "/server-b.log";
    std::fprintf(stderr, "bitparity demo: side B (the reference) is bitnet.cpp: %s\n", cpp.c_str());
  } else {
    spec_b.binary = native;
    spec_b.args = common;
    spec_b.label = "B";
    spec_b.log_path = out_dir + "/server-b.log";
    spec_b.args.insert(spec_b.args.end(), {"--kernels", "scalar"});
    std::fprintf(stderr,
                 "\n"
                 "==========================================================================\n"
                 " NOTE: no bitnet.cpp server: %s/bitnet-cpp-server does not exist.\n"
                 " Side B (the reference) is therefore the NATIVE engine on its SCALAR\n"
                 " reference kernels (--kernels scalar). This demo compares the native\n"
                 " engine's fast kernels with their scalar twins, NOT with bitnet.cpp.\n"
                 " To compare with Microsoft's bitnet.cpp, build bitnet.cpp and configure:\n"
                 "   cmake -S . -B build -DBITNET_CPP_DIR=/path/to/BitNet\n"
                 "   cmake --build build --target bitnet-cpp-server bitparity\n"
                 " then run `bitparity demo` again.\n"
                 "==========================================================================\n\n",
                 bin_dir.c_str());
  }
  int code = 2;
  {
    std::fprintf(stderr, "bitparity demo: model %s\n", model.c_str());
    auto a = ServerProcess::Start(spec_a, 60);
    absl::StatusOr<std::unique_ptr<ServerProcess>> b = a.ok() ? ServerProcess::Start(spec_b, 60)
                                                              : absl::StatusOr<std::unique_ptr<ServerProcess>>(a.status());
    {
      std::lock_guard<std::mutex> lock(g_mu);
      if (a.ok()) g_servers.push_back(a->get());
      if (b.ok()) g_servers.push_back(b->get());
    }
    if (!a.ok() || !b.ok()) {
      std::fprintf(stderr, "bitparity demo: %s\n", std::string((a.ok() ? b.status() : a.status()).message()).c_str());
    } else {
      std::fprintf(stderr, "bitparity demo: side A %s (pid %d, log %s)\n", (*a)->address().c_str(), (*a)->pid(),
                   spec_a.log_path.c_str());
      std::fprintf(stderr, "bitparity demo: side B %s (pid %d, log %s)\n", (*b)->address().c_str(), (*b)->pid(),
                   spec_b.log_path.c_str());
      ClientOptions copt;
      copt.connect_timeout_s = 120;  // the servers may still be loading the model
      Endpoint ea, eb;
      ea.label = "A";
      ea.address = (*a)->address();
      eb.label = "B";
      eb.address = (*b)->address();
      auto ca = EngineClient::Connect(ea, copt);
      auto cb = ca.ok() ? EngineClient::Connect(eb, copt) : absl::StatusOr<std::unique_ptr<EngineClient>>(ca.status());
      auto prompts = DefaultPromptSet();
      if (!ca.ok() || !cb.ok()) {
        std::fprintf(stderr, "bitparity demo: %s\n", std::string((ca.ok() ? cb.status() : ca.status()).message()).c_str());
      } else if (!prompts.ok()) {
        std::fprintf(stderr, "bitparity demo: %s\n", std::string(prompts.status().message()).c_str());
      } else {
        LimitPrompts(&*prompts, o.prompts);
        OutputOptions out;
        out.json_path = out_dir + "/report.json";
        out.html_path = out_dir + "/report.html";
        out.markdown_path = out_dir + "/report.md";
        out.junit_path = out_dir + "/report.junit.xml";
        out.color = o.color;
        code = CompareAndReport(**ca, **cb, *prompts, o.compare, out, command_line, progress);
        std::printf("\nHTML report: %s\n", out.html_path.c_str());
        if (cpp.empty()) {
          std::printf("(side B was the native engine on scalar kernels: no bitnet-cpp-server in %s)\n", bin_dir.c_str());
        }
      }
    }
    StopAll();
    std::lock_guard<std::mutex> lock(g_mu);
    g_servers.clear();
  }
  pthread_kill(sig_thread.native_handle(), SIGUSR1);
  sig_thread.join();
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  return code;
}

}  // namespace bitparity

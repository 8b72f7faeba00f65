#include "cpp_ref_adapter/worker_flags.h"

#include <unistd.h>

#include <climits>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"

namespace bitparity::worker {

std::string ExecutableDir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, n);
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

void AddWorkerServerFlags(CLI::App& app, WorkerServerFlags* f, const std::string& default_worker) {
  app.add_option("--model,-m", f->model, "GGUF model file")->required();
  app.add_option("--threads,-t", f->threads, "Compute threads per worker (0 = online cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  app.add_option("--max-context", f->max_context,
                 "Positions per request (prompt + generated), the workers' n_ctx; "
                 "0 = the model's training context")
      ->capture_default_str()
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--workers", f->workers,
                 "Worker processes; also the default of --max-concurrent")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  app.add_option("--worker", f->worker,
                 "Worker executable (default: " + default_worker + " beside this server)");
  app.add_option("--override-kv", f->override_kv,
                 "KEY=TYPE:VALUE (TYPE int, float, bool, str): run the model with this metadata "
                 "value, as llama.cpp's flag; repeatable, passed to every worker");
  app.add_option("--worker-arg", f->worker_args,
                 "Extra argument for every worker (repeatable), e.g. --worker-arg=--kernels=scalar");
  app.add_option("--worker-start-timeout", f->start_timeout_s,
                 "Seconds a worker may take to load its model")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  app.add_option("--worker-backoff-max", f->backoff_max_s,
                 "Longest wait, seconds, before restarting a worker that keeps failing")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  app.add_option("--worker-stopped-timeout", f->stopped_timeout_s,
                 "Seconds a worker may stay stopped (SIGSTOP) before it is replaced; its "
                 "request in flight gets UNAVAILABLE")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 3600.0));
  app.add_flag("--worker-stderr", f->worker_stderr, "Copy the workers' stderr to the server's");
  app.add_option("--parallel", f->parallel,
                 "Requests one worker serves at once (bitnet-cpp-worker only; needs --workers 1): "
                 "N sequences in one llama context of N x --max-context cells, decoded together "
                 "by continuous batching as llama-server -np N -cb. Generate streams through it; "
                 "the other calls run one at a time between its steps. Outputs are then NOT "
                 "batch-invariant (a sequence's tokens depend on what shares its steps). "
                 "Also the default --max-concurrent (x --workers)")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
}

absl::StatusOr<WorkerBackendOptions> MakeWorkerBackendOptions(const WorkerServerFlags& f,
                                                              const std::string& default_worker,
                                                              const std::string& label) {
  WorkerBackendOptions o;
  std::string exe = f.worker;
  if (exe.empty()) {
    const std::string dir = ExecutableDir();
    if (dir.empty()) return absl::NotFoundError("cannot read /proc/self/exe; pass --worker");
    exe = dir + "/" + default_worker;
  }
  o.pool.command.executable = exe;
  o.pool.command.args = {"--model",       f.model,
                         "--threads",     std::to_string(f.threads),
                         "--max-context", std::to_string(f.max_context)};
  // Parsed here too, so a malformed spec is refused before a worker is started.
  absl::StatusOr<std::vector<MetadataOverride>> overrides = ParseMetadataOverrides(f.override_kv);
  if (!overrides.ok()) return overrides.status();
  for (const MetadataOverride& ov : *overrides) {
    o.pool.command.args.push_back("--override-kv");
    o.pool.command.args.push_back(FormatMetadataOverride(ov));
  }
  if (f.parallel > 1) {
    if (f.workers != 1) {
      return absl::InvalidArgumentError(absl::StrCat("--parallel ", f.parallel,
                                                     " serves from one worker; --workers must be 1"));
    }
    o.pool.command.args.push_back("--parallel");
    o.pool.command.args.push_back(std::to_string(f.parallel));
  }
  o.parallel = f.parallel;
  o.pool.command.args.insert(o.pool.command.args.end(), f.worker_args.begin(), f.worker_args.end());
  o.pool.command.forward_stderr = f.worker_stderr;
  o.pool.workers = f.workers;
  o.pool.label = label;
  const auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  o.pool.hello_timeout = ms(f.start_timeout_s);
  o.pool.backoff_max = ms(f.backoff_max_s);
  o.pool.stopped_timeout = ms(f.stopped_timeout_s);
  o.start_timeout = ms(f.start_timeout_s);
  o.model_path = f.model;
  return o;
}

absl::StatusOr<std::unique_ptr<EngineBackend>> LoadWorkerBackend(const WorkerServerFlags& flags,
                                                                 const std::string& default_worker,
                                                                 const std::string& label,
                                                                 const StopFn& stop) {
  absl::StatusOr<WorkerBackendOptions> o = MakeWorkerBackendOptions(flags, default_worker, label);
  if (!o.ok()) return o.status();
  absl::StatusOr<std::unique_ptr<WorkerBackend>> b = WorkerBackend::Start(*o, stop);
  if (!b.ok()) return b.status();
  return std::unique_ptr<EngineBackend>(std::move(*b));
}

}  // namespace bitparity::worker

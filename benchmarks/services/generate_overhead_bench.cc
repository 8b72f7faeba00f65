// What the gRPC wrapper costs: Generate of 64 tokens through bitnet-native-server's
// service (loopback gRPC, unary and streaming) against the same engine called in
// process, on the same loaded Model. The ratio grpc/in-process is printed at the end.
//
//   generate_overhead_bench [--model PATH] [--threads N] [--tokens N] [benchmark flags]
//   generate_overhead_bench --paired 20 [--model PATH] ...   (interleaved rounds; robust
//                                                            on a machine with other load)
//
// Defaults: the tiny-b158 fixture, 2 threads, 64 tokens, greedy, EOS ignored.
// Speed is measured, never asserted (not a ctest test).
#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "bitnet/v1/engine.grpc.pb.h"
#include "engine/model/generate.h"
#include "engine/model/model.h"
#include "engine/model/session.h"
#include "grpcpp/create_channel.h"
#include "services/common/engine_server.h"
#include "services/native/native_backend.h"

namespace bitparity {
namespace {

namespace v1 = bitnet::v1;

struct Setup {
  std::string model_path = std::string(BITPARITY_FIXTURES_DIR) + "/models/tiny-b158.gguf";
  int threads = 2;
  int tokens = 64;
  std::shared_ptr<const Model> model;
  std::vector<int32_t> prompt;
  RequestLog log{std::tmpfile()};  // keep the per-request lines out of the output
  std::unique_ptr<EngineServer> server;
  std::unique_ptr<v1::Engine::Stub> stub;
};

Setup& S() {
  static Setup s;
  return s;
}

bool Prepare() {
  Setup& s = S();
  ModelOptions o;
  o.threads = s.threads;
  auto m = Model::Load(s.model_path, o);
  if (!m.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", s.model_path.c_str(), m.status().ToString().c_str());
    return false;
  }
  s.model = std::shared_ptr<const Model>(std::move(*m));
  if (const Tokenizer* tok = s.model->tokenizer()) {
    auto ids = tok->Encode("The quick brown fox jumps over the lazy dog.");
    if (!ids.ok()) return false;
    s.prompt = *ids;
  } else {
    s.prompt = {1, 2, 3, 4, 5, 6, 7, 8};
  }
  ServerOptions so;
  so.listen = "127.0.0.1:0";
  auto server = EngineServer::Start(so, &s.log);
  if (!server.ok()) {
    std::fprintf(stderr, "server: %s\n", server.status().ToString().c_str());
    return false;
  }
  s.server = std::move(*server);
  s.server->SetBackend(std::shared_ptr<EngineBackend>(NativeBackend::Wrap(s.model, 0, 2)));
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  s.stub = v1::Engine::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(s.server->port()), grpc::InsecureChannelCredentials(), args));
  // Warm up: the first pass faults the mmapped weights in; no benchmark should pay it.
  {
    Session warm(*s.model, s.model->config().n_ctx_train);
    GenerateOptions o;
    o.max_new_tokens = 2;
    if (!Generate(warm, s.prompt, o).ok()) return false;
  }
  std::fprintf(stderr, "model %s, %d threads, kernels %s, prompt %zu tokens, %d new tokens\n",
               s.model_path.c_str(), s.model->threads(), s.model->kernels().name, s.prompt.size(),
               s.tokens);
  return true;
}

v1::GenerateRequest Request() {
  v1::GenerateRequest r;
  for (int32_t id : S().prompt) r.mutable_input()->mutable_ids()->add_ids(id);
  r.set_max_new_tokens(S().tokens);
  r.set_ignore_eos(true);
  return r;
}

void BM_GenerateInProcess(benchmark::State& state) {
  Setup& s = S();
  // The same context the server's sessions get (the model's training context).
  Session session(*s.model, s.model->config().n_ctx_train);
  GenerateOptions o;
  o.max_new_tokens = s.tokens;
  o.ignore_eos = true;
  for (auto _ : state) {
    session.Reset();
    auto r = Generate(session, s.prompt, o);
    if (!r.ok() || static_cast<int>(r->ids.size()) != s.tokens) {
      state.SkipWithError("in-process Generate failed");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * s.tokens);
}

void BM_GenerateGrpcUnary(benchmark::State& state) {
  const v1::GenerateRequest req = Request();
  for (auto _ : state) {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    grpc::Status st = S().stub->Generate(&ctx, req, &resp);
    if (!st.ok() || resp.ids_size() != S().tokens) {
      state.SkipWithError(("gRPC Generate failed: " + st.error_message()).c_str());
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * S().tokens);
}

void BM_GenerateGrpcStream(benchmark::State& state) {
  const v1::GenerateRequest req = Request();
  for (auto _ : state) {
    grpc::ClientContext ctx;
    auto reader = S().stub->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse m;
    int tokens = 0;
    while (reader->Read(&m)) tokens += m.has_token() ? 1 : 0;
    if (!reader->Finish().ok() || tokens != S().tokens) {
      state.SkipWithError("gRPC GenerateStream failed");
      return;
    }
  }
  state.SetItemsProcessed(state.iterations() * S().tokens);
}

BENCHMARK(BM_GenerateInProcess)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_GenerateGrpcUnary)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_GenerateGrpcStream)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

// Prints the usual table, then the gRPC / in-process ratios.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& r : runs) {
      if (r.error_occurred) continue;
      const std::string& name = r.run_name.function_name;
      if (r.run_type == Run::RT_Iteration) {
        iterations_[name].push_back(r.GetAdjustedRealTime());
      } else if (r.aggregate_name == "median") {
        median_[name] = r.GetAdjustedRealTime();
      }
    }
  }
  void Finalize() override {
    ConsoleReporter::Finalize();
    auto time_of = [&](const std::string& name) -> double {
      if (median_.count(name)) return median_[name];
      std::vector<double> v = iterations_[name];
      if (v.empty()) return 0;
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const double base = time_of("BM_GenerateInProcess");
    if (base <= 0) return;
    for (const char* name : {"BM_GenerateGrpcUnary", "BM_GenerateGrpcStream"}) {
      const double t = time_of(name);
      if (t > 0) {
        std::printf("%s / BM_GenerateInProcess = %.4f (%+.2f%%, %+.3f ms per request of %d tokens)\n",
                    name, t / base, (t / base - 1) * 100, t - base, S().tokens);
      }
    }
  }

 private:
  std::map<std::string, std::vector<double>> iterations_;
  std::map<std::string, double> median_;
};

// --paired N: N rounds, each timing in-process, unary and streaming Generate back
// to back (order rotated per round), so that slow changes in machine load hit all
// three alike; prints the median of the per-round ratios.
int RunPaired(int rounds) {
  Setup& s = S();
  Session session(*s.model, s.model->config().n_ctx_train);
  GenerateOptions o;
  o.max_new_tokens = s.tokens;
  o.ignore_eos = true;
  const v1::GenerateRequest req = Request();
  using Clock = std::chrono::steady_clock;
  auto in_process = [&] {
    session.Reset();
    return Generate(session, s.prompt, o).ok();
  };
  auto unary = [&] {
    grpc::ClientContext ctx;
    v1::GenerateResponse resp;
    return s.stub->Generate(&ctx, req, &resp).ok() && resp.ids_size() == s.tokens;
  };
  auto stream = [&] {
    grpc::ClientContext ctx;
    auto reader = s.stub->GenerateStream(&ctx, req);
    v1::GenerateStreamResponse m;
    int n = 0;
    while (reader->Read(&m)) n += m.has_token() ? 1 : 0;
    return reader->Finish().ok() && n == s.tokens;
  };
  const std::function<bool()> runs[3] = {in_process, unary, stream};
  std::vector<double> ms[3], ratio_unary, ratio_stream;
  for (int r = 0; r < rounds; ++r) {
    double t[3];
    for (int k = 0; k < 3; ++k) {
      const int which = (r + k) % 3;
      const auto t0 = Clock::now();
      if (!runs[which]()) {
        std::fprintf(stderr, "round %d: run %d failed\n", r, which);
        return 1;
      }
      t[which] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
      ms[which].push_back(t[which]);
    }
    ratio_unary.push_back(t[1] / t[0]);
    ratio_stream.push_back(t[2] / t[0]);
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  std::printf("paired rounds: %d, %d new tokens per request\n", rounds, s.tokens);
  std::printf("in-process Generate  median %9.2f ms  (%.1f tok/s)\n", median(ms[0]),
              s.tokens * 1000.0 / median(ms[0]));
  std::printf("gRPC Generate        median %9.2f ms  ratio %.4f (median of per-round ratios)\n",
              median(ms[1]), median(ratio_unary));
  std::printf("gRPC GenerateStream  median %9.2f ms  ratio %.4f (median of per-round ratios)\n",
              median(ms[2]), median(ratio_stream));
  return 0;
}

}  // namespace
}  // namespace bitparity

int main(int argc, char** argv) {
  // Our own flags first; the rest go to Google Benchmark.
  std::vector<char*> rest = {argv[0]};
  int paired = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--model" || a == "--threads" || a == "--tokens" || a == "--paired") &&
        i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--paired") paired = std::atoi(v.c_str());
      if (a == "--model") bitparity::S().model_path = v;
      if (a == "--threads") bitparity::S().threads = std::atoi(v.c_str());
      if (a == "--tokens") bitparity::S().tokens = std::atoi(v.c_str());
    } else {
      rest.push_back(argv[i]);
    }
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  if (benchmark::ReportUnrecognizedArguments(n, rest.data())) return 2;
  if (!bitparity::Prepare()) return 1;
  if (paired > 0) {
    const int rc = bitparity::RunPaired(paired);
    bitparity::S().server->Shutdown(0);
    return rc;
  }
  bitparity::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  bitparity::S().server->Shutdown(0);
  benchmark::Shutdown();
  return 0;
}

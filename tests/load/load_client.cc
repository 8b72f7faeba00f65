// File: tests/load/load_client.cc
//
// bitparity-load: N concurrent gRPC clients for T seconds against one bitnet.v1
// server (bounded and self-stopping: no request starts after T seconds, and every
// request carries a deadline, so the run ends by T + deadline).
//
//   bitparity-load --target 127.0.0.1:50051 --clients 4 --seconds 5
//                  [--deadline-ms 30000] [--max-new-tokens 8] [--requests-out ids.tsv]
//
// Each client cycles through a fixed mix: Tokenize, EvalLogits (text, top-5 of the
// last position), Generate (greedy), GenerateStream, an EvalLogits with an id out of
// range (INVALID_ARGUMENT expected), a Generate past the context (OUT_OF_RANGE
// expected). A server with a small --max-concurrent/--queue also answers
// RESOURCE_EXHAUSTED. Every request gets an x-request-id ("load-<client>-<n>") that
// the server echoes in its request log, so a script can match both sides
// (--requests-out writes one "id<TAB>rpc<TAB>code" line per request).
//
// Prints one JSON object: requests sent, results by status code, p50/p99 latency
// (ms) of successful requests per rpc and overall, server resident memory before and
// after (GetModelInfo.memory, the server's own VmRSS; for a worker server also its
// workers' summed VmRSS) and "accounted": sent equals
// the sum of the results. Exit status: 0 when every request is accounted for and
// every deliberately bad request got its expected code; 1 otherwise; 2 for usage
// errors or when the server cannot be reached.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "bitnet/v1/engine.grpc.pb.h"

namespace {

namespace v1 = bitnet::v1;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string target;
  int clients = 4;
  double seconds = 5;
  int deadline_ms = 30000;
  int max_new_tokens = 8;
  std::string requests_out;
};

struct Record {
  std::string id;
  const char* rpc;
  grpc::StatusCode code;
  double ms;
  bool expectation_met;
};

const char* CodeName(grpc::StatusCode c) {
  switch (c) {
    case grpc::OK: return "OK";
    case grpc::CANCELLED: return "CANCELLED";
    case grpc::UNKNOWN: return "UNKNOWN";
    case grpc::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::NOT_FOUND: return "NOT_FOUND";
    case grpc::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::ABORTED: return "ABORTED";
    case grpc::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::INTERNAL: return "INTERNAL";
    case grpc::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::DATA_LOSS: return "DATA_LOSS";
    case grpc::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&](const char* name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bitparity-load: %s needs a value\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--target") o->target = next("--target");
    else if (a == "--clients") o->clients = std::atoi(next("--clients"));
    else if (a == "--seconds") o->seconds = std::atof(next("--seconds"));
    else if (a == "--deadline-ms") o->deadline_ms = std::atoi(next("--deadline-ms"));
    else if (a == "--max-new-tokens") o->max_new_tokens = std::atoi(next("--max-new-tokens"));
    else if (a == "--requests-out") o->requests_out = next("--requests-out");
    else {
      std::fprintf(stderr, "bitparity-load: unknown argument %s\n", a.c_str());
      return false;
    }
  }
  if (o->target.empty() || o->clients < 1 || o->clients > 256 || !(o->seconds > 0) ||
      o->seconds > 3600 || o->deadline_ms < 1 || o->max_new_tokens < 1) {
    std::fprintf(stderr,
                 "usage: bitparity-load --target HOST:PORT [--clients 1..256] [--seconds T<=3600]"
                 " [--deadline-ms MS] [--max-new-tokens N] [--requests-out FILE]\n");
    return false;
  }
  return true;
}

class Client {
 public:
  Client(std::shared_ptr<grpc::Channel> channel, const Options& o, int index, int max_context,
         int n_vocab)
      : stub_(v1::Engine::NewStub(channel)), o_(o), index_(index), max_context_(max_context),
        n_vocab_(n_vocab) {}

  // One request of the mix; returns its record.
  Record One(int n) {
    Record r;
    r.id = "load-" + std::to_string(index_) + "-" + std::to_string(n);
    grpc::ClientContext ctx;
    ctx.AddMetadata("x-request-id", r.id);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(o_.deadline_ms));
    const auto t0 = Clock::now();
    grpc::Status st;
    grpc::StatusCode expected = grpc::OK;  // OK here means "any code is fine"
    bool any = true;
    const std::string prompt = "load client " + std::to_string(index_) + " says " +
                               std::to_string(n % 97);
    switch (n % 6) {
      case 0: {
        r.rpc = "Tokenize";
        v1::TokenizeRequest req;
        v1::TokenizeResponse resp;
        req.set_text(prompt);
        st = stub_->Tokenize(&ctx, req, &resp);
        break;
      }
      case 1: {
        r.rpc = "EvalLogits";
        v1::EvalLogitsRequest req;
        v1::EvalLogitsResponse resp;
        req.mutable_input()->set_text(prompt);
        req.mutable_output()->set_kind(v1::LogitsOutput::TOP_K);
        req.mutable_output()->set_top_k(5);
        st = stub_->EvalLogits(&ctx, req, &resp);
        break;
      }
      case 2: {
        r.rpc = "Generate";
        v1::GenerateRequest req;
        v1::GenerateResponse resp;
        req.mutable_input()->set_text(prompt);
        req.set_max_new_tokens(o_.max_new_tokens);
        st = stub_->Generate(&ctx, req, &resp);
        break;
      }
      case 3: {
        r.rpc = "GenerateStream";
        v1::GenerateRequest req;
        req.mutable_input()->set_text(prompt);
        req.set_max_new_tokens(o_.max_new_tokens);
        auto reader = stub_->GenerateStream(&ctx, req);
        v1::GenerateStreamResponse msg;
        while (reader->Read(&msg)) {
        }
        st = reader->Finish();
        break;
      }
      case 4: {
        r.rpc = "EvalLogits";
        v1::EvalLogitsRequest req;
        v1::EvalLogitsResponse resp;
        req.mutable_input()->mutable_ids()->add_ids(n_vocab_);  // one past the vocabulary
        st = stub_->EvalLogits(&ctx, req, &resp);
        expected = grpc::INVALID_ARGUMENT;
        any = false;
        break;
      }
      default: {
        r.rpc = "Generate";
        v1::GenerateRequest req;
        v1::GenerateResponse resp;
        req.mutable_input()->set_text(prompt);
        req.set_max_new_tokens(max_context_);  // prompt + this > max_context
        st = stub_->Generate(&ctx, req, &resp);
        expected = grpc::OUT_OF_RANGE;
        any = false;
        break;
      }
    }
    r.code = st.error_code();
    r.ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    r.expectation_met = any || r.code == expected;
    return r;
  }

 private:
  std::unique_ptr<v1::Engine::Stub> stub_;
  const Options& o_;
  int index_;
  int max_context_;
  int n_vocab_;
};

bool ModelInfo(v1::Engine::Stub& stub, v1::GetModelInfoResponse* info) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::Status st = stub.GetModelInfo(&ctx, v1::GetModelInfoRequest(), info);
  if (!st.ok()) {
    std::fprintf(stderr, "bitparity-load: GetModelInfo: %s %s\n", CodeName(st.error_code()),
                 st.error_message().c_str());
  }
  return st.ok();
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) return 2;

  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "bitparity-load: cannot connect to %s\n", o.target.c_str());
    return 2;
  }
  auto info_stub = v1::Engine::NewStub(channel);
  v1::GetModelInfoResponse before;
  if (!ModelInfo(*info_stub, &before)) return 2;
  const int max_context = before.limits().max_context();
  const int n_vocab = static_cast<int>(before.model().n_vocab());

  // One channel per client: separate HTTP/2 connections, as separate callers would use.
  std::atomic<int64_t> sent{0};
  std::mutex mu;
  std::vector<Record> records;
  const auto stop_at = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o.seconds));
  const auto t_start = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < o.clients; ++c) {
    threads.emplace_back([&, c] {
      auto ch = grpc::CreateCustomChannel(o.target, grpc::InsecureChannelCredentials(), args);
      Client client(ch, o, c, max_context, n_vocab);
      std::vector<Record> mine;
      for (int n = c; Clock::now() < stop_at; ++n) {  // offset: clients start at different kinds
        sent.fetch_add(1);
        mine.push_back(client.One(n));
      }
      std::lock_guard<std::mutex> lock(mu);
      records.insert(records.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  const double wall_s = std::chrono::duration<double>(Clock::now() - t_start).count();

  v1::GetModelInfoResponse after;
  const bool have_after = ModelInfo(*info_stub, &after);

  std::map<std::string, int64_t> by_code;
  std::map<std::string, std::vector<double>> ok_ms;
  std::vector<double> all_ok_ms;
  int64_t unexpected = 0;
  for (const Record& r : records) {
    ++by_code[CodeName(r.code)];
    if (r.code == grpc::OK) {
      ok_ms[r.rpc].push_back(r.ms);
      all_ok_ms.push_back(r.ms);
    }
    if (!r.expectation_met) {
      ++unexpected;
      if (unexpected <= 5) {
        std::fprintf(stderr, "bitparity-load: %s %s got %s\n", r.id.c_str(), r.rpc,
                     CodeName(r.code));
      }
    }
  }
  int64_t results = 0;
  for (const auto& [code, count] : by_code) results += count;
  const bool accounted = results == sent.load() && results == static_cast<int64_t>(records.size());

  if (!o.requests_out.empty()) {
    std::ofstream out(o.requests_out);
    for (const Record& r : records) out << r.id << '\t' << r.rpc << '\t' << CodeName(r.code) << '\n';
    if (!out) {
      std::fprintf(stderr, "bitparity-load: cannot write %s\n", o.requests_out.c_str());
      return 1;
    }
  }

  std::printf("{\"clients\": %d, \"seconds\": %.1f, \"wall_s\": %.2f, \"sent\": %lld, \"results\": %lld,"
              " \"accounted\": %s, \"unexpected_codes\": %lld,\n \"by_code\": {",
              o.clients, o.seconds, wall_s, static_cast<long long>(sent.load()),
              static_cast<long long>(results), accounted ? "true" : "false",
              static_cast<long long>(unexpected));
  bool first = true;
  for (const auto& [code, count] : by_code) {
    std::printf("%s\"%s\": %lld", first ? "" : ", ", code.c_str(), static_cast<long long>(count));
    first = false;
  }
  std::printf("},\n \"ok_latency_ms\": {\"all\": {\"n\": %zu, \"p50\": %.2f, \"p99\": %.2f}",
              all_ok_ms.size(), Percentile(all_ok_ms, 0.5), Percentile(all_ok_ms, 0.99));
  for (const auto& [rpc, v] : ok_ms) {
    std::printf(", \"%s\": {\"n\": %zu, \"p50\": %.2f, \"p99\": %.2f}", rpc.c_str(), v.size(),
                Percentile(v, 0.5), Percentile(v, 0.99));
  }
  std::printf("},\n \"server_rss_bytes\": {\"before\": %lld, \"after\": %lld,"
              " \"peak_after\": %lld}",
              static_cast<long long>(before.memory().resident_bytes()),
              static_cast<long long>(have_after ? after.memory().resident_bytes() : -1),
              static_cast<long long>(have_after ? after.memory().peak_resident_bytes() : -1));
  // A worker server: its workers' memory too (sums over the live workers).
  if (before.memory().workers_size() > 0) {
    std::printf(",\n \"worker_rss_bytes\": {\"before\": %lld, \"after\": %lld,"
                " \"peak_after\": %lld, \"workers\": %d}",
                static_cast<long long>(before.memory().worker_resident_bytes()),
                static_cast<long long>(have_after ? after.memory().worker_resident_bytes() : -1),
                static_cast<long long>(have_after ? after.memory().worker_peak_resident_bytes() : -1),
                have_after ? after.memory().workers_size() : -1);
  }
  std::printf("}\n");
  if (!have_after) return 1;
  return accounted && unexpected == 0 ? 0 : 1;
}

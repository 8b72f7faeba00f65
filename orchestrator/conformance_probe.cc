#include "orchestrator/conformance_probe.h"

namespace bitparity::conformance {

GreedyData& Probe::Greedy() {
  if (greedy_) return *greedy_;
  greedy_.emplace();
  GreedyData& g = *greedy_;
  const int n = TokensAllowed(o_.generate_tokens, static_cast<int>(prompt_.size()));
  g.request.mutable_input()->mutable_ids()->mutable_ids()->Add(prompt_.begin(), prompt_.end());
  g.request.set_max_new_tokens(std::max(1, n));
  g.request.set_ignore_eos(true);
  g.request.set_logprobs(true);
  g.request.set_top_logprobs(std::min(5, info_.limits().max_top_logprobs()));
  // The sequential mode: every step then is exactly one token through the network,
  // as the sequential EvalLogits below computes it.
  g.request.set_prefill_mode(v1::EVAL_MODE_SEQUENTIAL);
  g.status = Generate(g.request, &g.response);
  if (!g.status.ok() || g.response.ids().empty()) return g;
  // prompt + generated[0 .. n-2]; position len(prompt)-1+i predicts generated[i].
  std::vector<int32_t> seq = prompt_;
  seq.insert(seq.end(), g.response.ids().begin(), g.response.ids().end() - 1);
  g.eval_request.mutable_input()->mutable_ids()->mutable_ids()->Add(seq.begin(), seq.end());
  g.eval_request.set_mode(v1::EVAL_MODE_SEQUENTIAL);
  g.eval_request.mutable_positions()->set_kind(v1::Positions::LIST);
  for (int i = 0; i < g.response.ids_size(); ++i) {
    g.eval_request.mutable_positions()->add_list(static_cast<int>(prompt_.size()) - 1 + i);
  }
  v1::EvalLogitsResponse resp;
  g.eval_status = EvalLogits(g.eval_request, &resp);
  if (!g.eval_status.ok()) return g;
  for (const auto& p : resp.positions()) g.rows.push_back(F32Row(p.logits()));
  return g;
}

SpeedData& Probe::Speed() {
  if (speed_) return *speed_;
  // Long enough that the client's clock can tell a 10x lie from jitter: start at
  // speed_tokens and grow while the decode took under ~150 ms on the client's clock.
  const int cap = TokensAllowed(1024, static_cast<int>(prompt_.size()));
  int n = std::min(cap, std::max(2, o_.speed_tokens));
  for (;;) {
    SpeedData d;
    d.request.mutable_input()->mutable_ids()->mutable_ids()->Add(prompt_.begin(), prompt_.end());
    d.request.set_max_new_tokens(std::max(1, n));
    d.request.set_ignore_eos(true);
    grpc::ClientContext ctx;
    Deadline(&ctx, o_.call_timeout_s);
    const auto t0 = Clock::now();
    auto reader = stub_->GenerateStream(&ctx, d.request);
    v1::GenerateStreamResponse msg;
    while (reader->Read(&msg)) {
      if (msg.has_token()) {
        const double t = MsSince(t0);
        if (d.first_token_ms < 0) d.first_token_ms = t;
        d.last_token_ms = t;
        ++d.streamed_tokens;
      } else if (msg.has_summary()) {
        d.summary = msg.summary();
      }
    }
    d.status = reader->Finish();
    d.wall_ms = MsSince(t0);
    const bool long_enough = d.last_token_ms - d.first_token_ms >= 150;
    if (!d.status.ok() || long_enough || n >= cap) {
      speed_ = std::move(d);
      return *speed_;
    }
    n = std::min(cap, n * 4);
  }
}


}  // namespace bitparity::conformance

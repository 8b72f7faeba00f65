// File: tests/services/fake_backend.h
//
// A small, controllable EngineBackend for the service tests that must not
// depend on engine speed: admission limits, queueing, deadlines, cancellation
// and draining. Its "model" has a 100-token vocabulary (id = byte % 100 + ...,
// see Tokenize), 2 layers, n_embd 4, max_context 64, and logits that are a
// closed-form function of the sequence, so tests can predict every value.
//
// Timing control: every evaluation step (token or decode step) sleeps step_ms
// and, while `hold` is set, waits until Release() is called; it checks
// `cancelled` while it waits, as a real backend checks between layers.
#pragma once

#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "services/common/engine_backend.h"

namespace bitparity::testing {

class FakeBackend final : public EngineBackend {
 public:
  static constexpr int kVocab = 100;

  FakeBackend() {
    info_.engine_name = "fake";
    info_.engine_version = "0";
    info_.architecture = "fake";
    info_.file_name = "fake.gguf";
    info_.sha256 = std::string(64, 'a');
    info_.n_layer = 2;
    info_.n_embd = 4;
    info_.n_vocab = kVocab;
    info_.n_ctx_train = 64;
    info_.max_context = 64;
    info_.bos_id = 1;
    info_.eos_id = 2;
    info_.add_bos = true;
    info_.has_tokenizer = true;
    info_.threads = 1;
    info_.tensor_types = {{"f32", 3}};
  }

  // Logit of `id` after the sequence ending at `last` at position `pos`.
  static float Logit(int pos, int32_t last, int32_t id) {
    return static_cast<float>(((id * 7 + last * 3 + pos) % kVocab)) / 10.0f;
  }

  const BackendInfo& Info() const override { return info_; }
  int64_t SessionBytes() const override { return 0; }

  // One token per byte: 'a' -> 'a' % 90 + 10 (never BOS/EOS).
  absl::StatusOr<std::vector<int32_t>> Tokenize(absl::string_view text, bool add_bos,
                                                bool parse_special) const override {
    ++tokenize_calls_;
    std::vector<int32_t> ids;
    if (add_bos) ids.push_back(info_.bos_id);
    for (unsigned char c : text) ids.push_back(c % 90 + 10);
    return ids;
  }
  absl::StatusOr<std::string> TokenPiece(int32_t id) const override {
    if (id < 10) return std::string();
    return std::string(1, static_cast<char>('A' + (id - 10) % 26));
  }
  absl::StatusOr<std::string> Detokenize(absl::Span<const int32_t> ids) const override {
    std::string out;
    for (int32_t id : ids) {
      auto p = TokenPiece(id);
      out += *p;
    }
    return out;
  }

  absl::Status EvalLogits(absl::Span<const int32_t> ids, BackendEvalMode mode,
                          const std::vector<int>& rows, const LogitsRowFn& on_row,
                          const CancelledFn& cancelled, CallNotes* /*notes*/) override {
    Enter();
    std::vector<float> row(kVocab);
    size_t next = 0;
    for (size_t pos = 0; pos < ids.size(); ++pos) {
      if (!Step(cancelled)) return Leave(absl::CancelledError("fake: cancelled"));
      if (next < rows.size() && rows[next] == static_cast<int>(pos)) {
        for (int v = 0; v < kVocab; ++v) row[v] = Logit(static_cast<int>(pos), ids[pos], v);
        absl::Status st = on_row(static_cast<int>(pos), row);
        if (!st.ok()) return Leave(st);
        ++next;
      }
    }
    return Leave(absl::OkStatus());
  }

  absl::Status EvalTrace(absl::Span<const int32_t> ids, BackendEvalMode mode,
                         const std::vector<int>& rows, const ResidualFn& on_residual,
                         const CancelledFn& cancelled, CallNotes* /*notes*/) override {
    Enter();
    for (int layer = 0; layer <= info_.n_layer; ++layer) {
      if (!Step(cancelled)) return Leave(absl::CancelledError("fake: cancelled"));
      for (int r : rows) {
        std::vector<float> h(info_.n_embd);
        for (int i = 0; i < info_.n_embd; ++i) h[i] = layer * 100 + r + i * 0.25f;
        on_residual(layer, r, h);
      }
    }
    return Leave(absl::OkStatus());
  }

  absl::StatusOr<GenerationResult> Generate(absl::Span<const int32_t> prompt,
                                            const GenerationSpec& spec, const TokenFn& on_token,
                                            const CancelledFn& cancelled, CallNotes* /*notes*/) override {
    Enter();
    GenerationResult r;
    {
      std::lock_guard<std::mutex> lock(mu_);
      last_spec_ = spec;
    }
    const auto t0 = std::chrono::steady_clock::now();
    auto first = t0;
    int32_t last = prompt.back();
    int pos = static_cast<int>(prompt.size()) - 1;
    for (int i = 0; i < spec.max_new_tokens; ++i) {
      if (!Step(cancelled)) {
        r.finish = GenerationFinish::kCancelled;
        r.cancel_detail = absl::StrCat("fake: generation cancelled after ", i, " tokens");
        --running_;
        return r;
      }
      // Greedy over the closed-form logits: the id maximising (7 id + 3 last + pos) % 100.
      int32_t best = 0;
      for (int v = 1; v < kVocab; ++v) {
        if (Logit(pos, last, v) > Logit(pos, last, best)) best = v;
      }
      GeneratedTokenInfo t;
      t.id = best;
      t.text = *TokenPiece(best);
      if (spec.logprobs_top_n >= 0) t.logprob = -1.0;
      if (r.ids.empty()) first = std::chrono::steady_clock::now();
      r.ids.push_back(best);
      r.text += t.text;
      r.tokens.push_back(t);
      absl::Status st = on_token ? on_token(t) : absl::OkStatus();
      if (!st.ok()) return Leave(st);
      last = best;
      ++pos;
    }
    r.finish = GenerationFinish::kLength;
    r.decode_steps = std::max(0, static_cast<int>(r.ids.size()) - 1);
    r.first_token_ms = std::chrono::duration<double, std::milli>(first - t0).count();
    r.prefill_ms = r.first_token_ms;
    r.decode_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - first).count();
    --running_;
    return r;
  }

  void SetReadinessObserver(ReadinessObserver observer) override {
    std::lock_guard<std::mutex> lock(observer_mu_);
    observer_ = std::move(observer);
    if (observer_) observer_(ready_);
  }

  // Test controls.
  // Reports a readiness change, as a worker backend does when its workers die.
  void SetReady(bool ready) {
    std::lock_guard<std::mutex> lock(observer_mu_);
    ready_ = ready;
    if (observer_) observer_(ready_);
  }
  void Hold() { hold_.store(true); }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_.store(false);
    cv_.notify_all();
  }
  // Holds (as Hold()) from the `n`-th evaluation step on, counted over all
  // calls: e.g. 1 = a generation sends its first token, then waits.
  void HoldAfterSteps(int n) { hold_after_steps_.store(n); }
  void set_step_ms(int ms) { step_ms_ = ms; }
  // BackendInfo::max_token_bytes: 0 (the default) = no bound; 1 is the true bound of
  // this one-token-per-byte tokenizer. Set before the backend serves.
  void set_max_token_bytes(int n) { info_.max_token_bytes = n; }
  // Tokenize calls so far (the service's own and the Tokenize RPC's).
  int tokenize_calls() const { return tokenize_calls_.load(); }
  int running() const { return running_.load(); }
  // Waits until `n` evaluation steps (generated tokens) were taken, over all calls.
  bool WaitSteps(int n, int timeout_ms = 5000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (steps_.load() < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  int max_running_seen() const { return max_running_.load(); }
  // Waits until `n` calls are inside the backend.
  bool WaitRunning(int n, int timeout_ms = 5000) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (running_.load() < n) {
      if (std::chrono::steady_clock::now() > end) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  GenerationSpec last_spec() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_spec_;
  }

 private:
  void Enter() {
    const int now = ++running_;
    int seen = max_running_.load();
    while (now > seen && !max_running_.compare_exchange_weak(seen, now)) {
    }
  }
  absl::Status Leave(absl::Status st) {
    --running_;
    return st;
  }
  // One evaluation step; false when cancelled.
  bool Step(const CancelledFn& cancelled) {
    if (const int ms = step_ms_.load(); ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    if (steps_.fetch_add(1) >= hold_after_steps_.load()) hold_.store(true);
    std::unique_lock<std::mutex> lock(mu_);
    while (hold_.load()) {
      if (cancelled && cancelled()) return false;
      cv_.wait_for(lock, std::chrono::milliseconds(2));
    }
    return !(cancelled && cancelled());
  }

  BackendInfo info_;
  std::atomic<bool> hold_{false};
  std::atomic<int> running_{0};
  std::atomic<int> max_running_{0};
  std::atomic<int> steps_{0};
  std::atomic<int> hold_after_steps_{INT_MAX};
  std::atomic<int> step_ms_{0};  // set by the test while server threads read it
  mutable std::atomic<int> tokenize_calls_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  GenerationSpec last_spec_;
  std::mutex observer_mu_;
  ReadinessObserver observer_;
  bool ready_ = true;
};

}  // namespace bitparity::testing

#include "services/native/batch_scheduler.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/model/attention.h"
#include "engine/model/generation.h"

namespace bitparity {

struct BatchScheduler::Request {
  std::unique_ptr<Generation> gen;
  int positions = 0;     // its KV cache's capacity
  int64_t kv_bytes = 0;  // and size
  std::atomic<bool> abandon{false};  // the caller cancelled: end at the next step

  // The loop thread's own (after admission).
  std::unique_ptr<KvCache> cache;
  int n_past = 0;     // positions in the cache
  int prefilled = 0;  // prompt tokens evaluated
  int32_t next = 0;   // the token the next decode step evaluates
  bool over = false;  // ended: leaves the running list

  // Guarded by the scheduler's mu_.
  bool queued = false;
  bool ended = false;
  std::vector<GeneratedToken> outbox;  // sampled, not yet handed to the caller
  absl::Status error;
  GenerateResult result;
  std::condition_variable cv;  // the caller: tokens or the end
};

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

BatchScheduler::BatchScheduler(std::shared_ptr<const Model> model, const BatchOptions& options)
    : model_(std::move(model)),
      options_([&] {
        BatchOptions o = options;
        o.max_batch = std::max(1, o.max_batch);
        o.prefill_chunk = std::max(2, o.prefill_chunk);
        if (o.step_tokens < 0) o.step_tokens = o.max_batch + kStepPromptTokens;
        return o;
      }()),
      cuts_anywhere_(PromptCutsAnywhere(*model_)),
      step_(*model_, options_.max_batch + (cuts_anywhere_ ? options_.prefill_chunk + 1
                                                          : std::max(options_.prefill_chunk, std::min(kMaxChunk, options_.max_context)))) {
  loop_ = std::thread([this] { Loop(); });
}

BatchScheduler::~BatchScheduler() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  loop_.join();
}

int64_t BatchScheduler::KvBytes(int positions) const {
  const ModelConfig& c = model_->config();
  const int64_t capacity = (positions + 255) / 256 * 256;  // KvCache's padding
  return 2 * int64_t{c.n_layer} * c.n_head_kv * capacity * c.head_dim * static_cast<int64_t>(sizeof(uint16_t));
}

int64_t BatchScheduler::kv_bytes_in_use() const {
  std::lock_guard<std::mutex> lock(mu_);
  return kv_in_use_;
}

absl::StatusOr<GenerateResult> BatchScheduler::Generate(absl::Span<const int32_t> prompt,
                                                        const GenerateOptions& options,
                                                        const TokenCallback& on_token,
                                                        const std::function<bool()>& cancelled) {
  auto r = std::make_shared<Request>();
  ASSIGN_OR_RETURN(r->gen, Generation::Start(*model_, prompt, options));
  const ModelConfig& c = model_->config();
  for (size_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i] < 0 || prompt[i] >= c.n_vocab) {
      return absl::InvalidArgumentError(absl::StrCat("token id ", prompt[i], " at index ", i,
                                                     " is outside the vocabulary [0, ", c.n_vocab, ")"));
    }
  }
  const int64_t n = static_cast<int64_t>(prompt.size());
  if (n > options_.max_context) {
    return absl::OutOfRangeError(absl::StrCat("sequence of ", n, " tokens (0 cached + ", n,
                                              " new) exceeds the context of ", options_.max_context));
  }
  r->positions = static_cast<int>(std::min<int64_t>(options_.max_context, n + options.max_new_tokens));
  r->kv_bytes = KvBytes(r->positions);
  const int64_t budget = options_.kv_budget_bytes > 0 ? options_.kv_budget_bytes
                                                      : options_.max_batch * KvBytes(options_.max_context);
  if (r->kv_bytes > budget) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "this request needs a KV cache of ", r->kv_bytes >> 20, " MiB (", r->positions,
        " positions: prompt ", n, " + max_new_tokens ", options.max_new_tokens, "), more than the server's whole KV budget of ",
        budget >> 20, " MiB (--kv-budget-mb)"));
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("the server is shutting down");
    r->queued = true;
    queue_.push_back(r);
  }
  wake_.notify_one();

  // Hand the tokens to the caller as the loop makes them, until the request ends.
  std::vector<GeneratedToken> tokens;
  while (true) {
    if (!r->abandon && cancelled && cancelled()) {
      std::lock_guard<std::mutex> lock(mu_);
      if (r->queued) {  // never admitted: end it here
        queue_.erase(std::find(queue_.begin(), queue_.end(), r));
        r->queued = false;
        r->gen->Cancel();
        r->result = r->gen->Finish();
        r->ended = true;
      } else {
        r->abandon = true;  // the loop ends it at its next step
      }
    }
    bool ended;
    {
      std::unique_lock<std::mutex> lock(mu_);
      r->cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return !r->outbox.empty() || r->ended; });
      tokens.swap(r->outbox);
      ended = r->ended;
    }
    for (const GeneratedToken& t : tokens) {
      if (!on_token) break;
      absl::Status st = on_token(t);
      if (!st.ok()) {
        r->abandon = true;  // the loop drops it at its next step
        return st;
      }
    }
    tokens.clear();
    if (ended) break;
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!r->error.ok()) return r->error;
  return std::move(r->result);
}

void BatchScheduler::End(Request& r, absl::Status error) {
  r.over = true;
  std::lock_guard<std::mutex> lock(mu_);
  kv_in_use_ -= r.kv_bytes;
  if (error.ok()) {
    r.result = r.gen->Finish();
  } else {
    r.error = std::move(error);
  }
  r.ended = true;
  r.cv.notify_all();
}

void BatchScheduler::Loop() {
  std::vector<std::shared_ptr<Request>> running;
  const int64_t budget = options_.kv_budget_bytes > 0 ? options_.kv_budget_bytes
                                                      : options_.max_batch * KvBytes(options_.max_context);
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty() || !running.empty(); });
    if (stop_) break;
    // Admit the oldest queued requests while there is room in the batch and the budget.
    while (!queue_.empty() && static_cast<int>(running.size()) < options_.max_batch &&
           kv_in_use_ + queue_.front()->kv_bytes <= budget) {
      std::shared_ptr<Request> r = std::move(queue_.front());
      queue_.pop_front();
      r->queued = false;
      kv_in_use_ += r->kv_bytes;
      running.push_back(std::move(r));
    }
    const int waiting = static_cast<int>(queue_.size());
    lock.unlock();
    if (!running.empty()) {
      BatchStepReport report;
      report.waiting = waiting;
      const Clock::time_point t0 = Clock::now();
      Step(running, report);
      report.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      running.erase(std::remove_if(running.begin(), running.end(), [](const auto& r) { return r->over; }),
                    running.end());
      report.kv_bytes = kv_bytes_in_use();
      if (on_step && report.sequences > 0) on_step(report);
    }
    lock.lock();
  }
  // Stopping: nothing more will run.
  std::deque<std::shared_ptr<Request>> queued = std::move(queue_);
  queue_.clear();
  lock.unlock();
  const absl::Status down = absl::UnavailableError("the server is shutting down");
  for (auto& r : running) End(*r, down);
  for (auto& r : queued) {
    {
      std::lock_guard<std::mutex> l(mu_);
      kv_in_use_ += r->kv_bytes;  // End gives it back
      r->queued = false;
    }
    End(*r, down);
  }
}

int BatchScheduler::PrefillChunk(int decode_rows) const {
  if (options_.step_tokens <= 0 || decode_rows == 0) return options_.prefill_chunk;
  return std::clamp(options_.step_tokens - decode_rows, kMinStepPrefill, options_.prefill_chunk);
}

void BatchScheduler::Step(std::vector<std::shared_ptr<Request>>& running, BatchStepReport& report) {
  const ModelConfig& c = model_->config();
  for (auto& r : running) {
    if (r->abandon) {
      r->gen->Cancel();
      End(*r, absl::OkStatus());
      continue;
    }
    if (r->cache == nullptr) r->cache = std::make_unique<KvCache>(c, r->positions);
  }

  // This step's sequences: a decode token of every request past its prompt, and one
  // chunk of the oldest request still prefilling, as large as step_tokens leaves.
  int decoding = 0;
  for (const auto& r : running) {
    if (!r->over && r->prefilled == static_cast<int>(r->gen->prompt().size())) ++decoding;
  }
  std::vector<StepSequence> seqs;
  std::vector<Request*> owners;
  std::vector<bool> prefill;
  bool chunk_taken = false;
  for (auto& p : running) {
    Request& r = *p;
    if (r.over) continue;
    const std::vector<int32_t>& prompt = r.gen->prompt();
    const int length = static_cast<int>(prompt.size());
    StepSequence q;
    q.cache = r.cache.get();
    q.pos0 = r.n_past;
    if (r.prefilled == length) {
      q.tokens = absl::MakeConstSpan(&r.next, 1);
      q.one_by_one = true;
      q.want_logits = true;
      ++report.decode_rows;
    } else if (!chunk_taken) {
      chunk_taken = true;
      const bool sequential = r.gen->options().prefill_mode == EvalMode::kSequential;
      const int solo_chunk = std::min(kMaxChunk, options_.max_context);
      const int chunk = PrefillChunk(decoding);
      const int n = sequential ? std::min(chunk, length - r.prefilled)
                               : BatchPrefillChunk(length, r.prefilled, cuts_anywhere_ ? chunk : solo_chunk, solo_chunk);
      q.tokens = absl::MakeConstSpan(prompt).subspan(r.prefilled, n);
      q.one_by_one = sequential || n == 1;
      q.want_logits = r.prefilled + n == length;
      report.prefill_tokens += n;
    } else {
      continue;  // waits for the prefill ahead of it
    }
    if (q.want_logits) {
      const HeadScreen* screen = r.gen->Screen();
      q.screen = screen != nullptr ? &screen->request : nullptr;
    }
    if (q.want_logits || r.prefilled == 0) r.gen->EvalStarting();
    seqs.push_back(q);
    owners.push_back(&r);
    prefill.push_back(r.prefilled < length);
  }
  report.sequences = static_cast<int>(seqs.size());
  if (seqs.empty()) return;

  step_.Run(seqs, [&](int i, absl::Span<const float> logits, const ScreenResult* screened) {
    owners[i]->gen->TakeLogits(logits, screened);
  });

  for (size_t i = 0; i < seqs.size(); ++i) {
    Request& r = *owners[i];
    const int n = static_cast<int>(seqs[i].tokens.size());
    r.n_past += n;
    if (prefill[i]) r.prefilled += n;
    if (!seqs[i].want_logits) continue;
    if (r.gen->done()) {  // max_new_tokens == 0
      End(r, absl::OkStatus());
      continue;
    }
    absl::StatusOr<const GeneratedToken*> t = r.gen->Next(r.n_past, options_.max_context);
    if (!t.ok()) {
      End(r, t.status());
      continue;
    }
    r.next = (*t)->id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      r.outbox.push_back(**t);
    }
    r.cv.notify_all();
    if (r.gen->done()) End(r, absl::OkStatus());
  }
}

}  // namespace bitparity

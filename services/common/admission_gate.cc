#include "services/common/admission_gate.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace bitparity {

namespace {
// How often a waiting request checks for cancellation and deadlines.
constexpr auto kPollInterval = std::chrono::milliseconds(5);
}  // namespace

AdmissionGate::Ticket& AdmissionGate::Ticket::operator=(Ticket&& other) noexcept {
  if (this != &other) {
    Release();
    gate_ = other.gate_;
    queue_ms_ = other.queue_ms_;
    other.gate_ = nullptr;
  }
  return *this;
}

void AdmissionGate::Ticket::Release() {
  if (gate_ != nullptr) {
    gate_->Leave();
    gate_ = nullptr;
  }
}

AdmissionGate::AdmissionGate(int max_running, int max_waiting)
    : max_running_(max_running < 1 ? 1 : max_running),
      max_waiting_(max_waiting < 0 ? 0 : max_waiting) {}

void AdmissionGate::Notify() {
  if (on_change) on_change(running_, static_cast<int>(queue_.size()));
}

absl::StatusOr<AdmissionGate::Ticket> AdmissionGate::Enter(
    const std::function<absl::Status()>& abandoned) {
  const auto t0 = std::chrono::steady_clock::now();
  auto since = [&] {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  };
  std::unique_lock<std::mutex> lock(mu_);
  if (closed_) return absl::UnavailableError("server is shutting down; not accepting new work");
  if (running_ < max_running_ && queue_.empty()) {
    ++running_;
    Notify();
    return Ticket(this, since());
  }
  if (static_cast<int>(queue_.size()) >= max_waiting_) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "server busy: ", running_, " requests running (max_concurrent ", max_running_, ") and ",
        queue_.size(), " waiting (queue limit ", max_waiting_, "); retry later"));
  }
  const uint64_t me = next_id_++;
  auto it = queue_.insert(queue_.end(), me);
  Notify();
  while (true) {
    if (closed_) {
      queue_.erase(it);
      Notify();
      cv_.notify_all();
      return absl::UnavailableError("server is shutting down; request dropped from the queue");
    }
    if (running_ < max_running_ && queue_.front() == me) {
      queue_.erase(it);
      ++running_;
      Notify();
      cv_.notify_all();  // the next in line may also fit
      return Ticket(this, since());
    }
    cv_.wait_for(lock, kPollInterval);
    if (abandoned) {
      // Polled without the lock: it may call into gRPC.
      lock.unlock();
      absl::Status st = abandoned();
      lock.lock();
      if (!st.ok()) {
        queue_.erase(it);
        Notify();
        cv_.notify_all();
        return st;
      }
    }
  }
}

void AdmissionGate::Leave() {
  std::lock_guard<std::mutex> lock(mu_);
  --running_;
  Notify();
  cv_.notify_all();
}

void AdmissionGate::Close() {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

bool AdmissionGate::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

int AdmissionGate::running() const {
  std::lock_guard<std::mutex> lock(mu_);
  return running_;
}

int AdmissionGate::waiting() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(queue_.size());
}

bool AdmissionGate::WaitIdle(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return running_ == 0; });
}

}  // namespace bitparity

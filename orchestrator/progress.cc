#include "orchestrator/progress.h"

#include <unistd.h>

#include <cstdio>

#include "fmt/format.h"

namespace bitparity {

std::string FormatDuration(double s) {
  if (!(s >= 0)) s = 0;
  const long t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

Progress::Progress(bool enabled) : enabled_(enabled) {}

bool Progress::StderrIsTty() { return isatty(STDERR_FILENO) == 1; }

void Progress::Begin(const std::string& phase, int total) {
  std::lock_guard<std::mutex> lock(mu_);
  phase_ = phase;
  total_ = total;
  done_ = 0;
  start_ = std::chrono::steady_clock::now();
  DrawLocked(true);
}

void Progress::Advance(int n) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += n;
  DrawLocked(done_ >= total_);
}

void Progress::End() {
  std::lock_guard<std::mutex> lock(mu_);
  if (enabled_ && drawn_) {
    DrawLocked(true);
    std::fputc('\n', stderr);
    drawn_ = false;
  }
}

void Progress::DrawLocked(bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  constexpr int kWidth = 24;
  const int filled = total_ > 0 ? kWidth * done_ / total_ : 0;
  std::string bar(filled, '#');
  bar.append(kWidth - filled, '-');
  std::string eta = "ETA --:--";
  if (done_ > 0 && total_ > 0) eta = "ETA " + FormatDuration(elapsed / done_ * (total_ - done_));
  std::fprintf(stderr, "\r\033[K[%s] %4d/%-4d %s  %s elapsed, %s", bar.c_str(), done_, total_, phase_.c_str(),
               FormatDuration(elapsed).c_str(), eta.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace bitparity

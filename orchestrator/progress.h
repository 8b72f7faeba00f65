// File: orchestrator/progress.h
//
// A one-line progress bar with ETA on stderr, redrawn at most 10 times a second:
//   [##########----------]  12/47 drift+generation  0:08 elapsed, ETA 0:21
// Drawn only when enabled (by default: stderr is a terminal). Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

namespace bitparity {

class Progress {
 public:
  explicit Progress(bool enabled);
  static bool StderrIsTty();

  // Starts a phase of `total` units (the bar restarts).
  void Begin(const std::string& phase, int total);
  void Advance(int n = 1);
  // Ends the current line (keeps the final state visible).
  void End();

 private:
  void DrawLocked(bool force);

  bool enabled_;
  std::mutex mu_;
  std::string phase_;              // guarded by mu_
  int total_ = 0, done_ = 0;       // guarded by mu_
  bool drawn_ = false;             // guarded by mu_
  std::chrono::steady_clock::time_point start_, last_draw_;  // guarded by mu_
};

// "m:ss" (or "h:mm:ss").
std::string FormatDuration(double seconds);

}  // namespace bitparity

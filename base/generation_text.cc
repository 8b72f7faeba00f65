#include "base/generation_text.h"

#include <algorithm>

#include "base/utf8.h"

namespace bitparity {

GenerationText::GenerationText(std::vector<std::string> stop_sequences)
    : stops_(std::move(stop_sequences)) {
  stops_.erase(std::remove(stops_.begin(), stops_.end(), std::string()), stops_.end());
  for (const std::string& s : stops_) longest_stop_ = std::max(longest_stop_, s.size());
}

GenerationText::Step GenerationText::Push(absl::string_view piece, bool adds_text, bool last) {
  Step step;
  bool finish = !adds_text;
  if (adds_text) {
    utf8_held_.append(piece.data(), piece.size());
    if (IncompleteUtf8Tail(utf8_held_) == 0) {
      pending_ += utf8_held_;
      utf8_held_.clear();
    }
  }
  size_t n_text = pending_.size();
  if (!finish && !stops_.empty()) {
    // Search the text not yet handed out, plus what could straddle its start.
    const size_t tail = std::min(text_.size(), longest_stop_ - 1);
    const std::string window = text_.substr(text_.size() - tail) + pending_;
    const size_t carried = window.size() - pending_.size();
    size_t best = std::string::npos;
    for (const std::string& stop : stops_) {
      const size_t at = window.find(stop);
      if (at != std::string::npos && at + stop.size() > carried) best = std::min(best, at);
    }
    if (best != std::string::npos) {
      finish = true;
      step.stopped = true;
      n_text = best > carried ? best - carried : 0;
      pending_.resize(n_text);
    } else {
      n_text = pending_.size() - HeldBackForStops(pending_, stops_);
    }
  }
  if (finish || last) {
    if (!finish) {
      pending_ += utf8_held_;
      utf8_held_.clear();
    }
    n_text = pending_.size();
  }
  step.text = pending_.substr(0, n_text);
  pending_.erase(0, n_text);
  text_ += step.text;
  return step;
}

size_t HeldBackForStops(absl::string_view text, const std::vector<std::string>& stops) {
  size_t held = 0;
  for (const std::string& stop : stops) {
    if (stop.empty()) continue;
    for (size_t len = std::min(stop.size() - 1, text.size()); len > held; --len) {
      if (text.substr(text.size() - len) == absl::string_view(stop).substr(0, len)) {
        held = len;
        break;
      }
    }
  }
  return held;
}

}  // namespace bitparity

// File: services/common/request_log.h
//
// One JSON object per line on stderr (or another stream): one line per finished
// request (id, rpc, peer, sizes, status, timings) and one per server lifecycle
// event (listening, loaded, draining, stopped). Lines are written whole, under a
// lock, so concurrent requests never interleave.
//
//   {"ts":"2026-03-10T12:00:00.123Z","event":"request","id":"1f3a-7","rpc":"Generate",
//    "code":"OK","prompt_tokens":12,"completion_tokens":64,"queue_ms":0.1,"total_ms":310.4}
//
// Thread safety: Write may be called from any thread.
#pragma once

#include <cstdio>
#include <mutex>

#include "nlohmann/json.hpp"

namespace bitparity {

class RequestLog {
 public:
  explicit RequestLog(std::FILE* out = stderr) : out_(out) {}
  // Adds "ts" (UTC, milliseconds) first and writes `fields` as one line.
  void Write(const nlohmann::ordered_json& fields);

 private:
  std::mutex mu_;
  std::FILE* out_;
};

}  // namespace bitparity

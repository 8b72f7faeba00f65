// File: services/common/process_memory.h
//
// Resident and peak memory of a process, from /proc/<pid>/status (VmRSS, VmHWM),
// so that engine comparisons report the memory a server really uses.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace bitparity {

struct ProcessMemory {
  int64_t resident_bytes = 0;       // VmRSS
  int64_t peak_resident_bytes = 0;  // VmHWM
};

// Parses the text of a /proc/<pid>/status file. DataLoss if VmRSS or VmHWM is
// missing or malformed.
absl::StatusOr<ProcessMemory> ParseProcStatus(absl::string_view text);

// Reads /proc/self/status (or `path`). NotFound / Unavailable when unreadable.
absl::StatusOr<ProcessMemory> ReadProcessMemory(const std::string& path = "/proc/self/status");

}  // namespace bitparity

// File: services/common/process_memory.h
//
// Resident and peak memory of a process, from /proc/<pid>/status (VmRSS, VmHWM),
// so that engine comparisons report the memory a server really uses.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

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

// The PPid line of a /proc/<pid>/status text; DataLoss when missing.
absl::StatusOr<int> ParseParentPid(absl::string_view text);

struct ChildMemory {
  int pid = 0;
  ProcessMemory memory;
};

// /proc/<pid>/status of a live child of this process. NotFound when `pid` is
// gone, a zombie (no VmRSS), or not our child: the parent check keeps a pid the
// kernel already gave to an unrelated process from being counted.
absl::StatusOr<ProcessMemory> ReadChildMemory(int pid);

// ReadChildMemory of each pid, in order, leaving out the ones that are gone.
std::vector<ChildMemory> ReadChildrenMemory(absl::Span<const int> pids);

}  // namespace bitparity

#include "services/common/process_memory.h"

#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace bitparity {
namespace {

// "VmRSS:\t   12345 kB" -> 12345 * 1024.
bool ParseKbLine(absl::string_view line, absl::string_view key, int64_t* bytes) {
  if (!absl::ConsumePrefix(&line, key)) return false;
  if (!absl::ConsumePrefix(&line, ":")) return false;
  line = absl::StripAsciiWhitespace(line);
  if (!absl::ConsumeSuffix(&line, "kB")) return false;
  int64_t kb = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &kb) || kb < 0) return false;
  *bytes = kb * 1024;
  return true;
}

}  // namespace

absl::StatusOr<ProcessMemory> ParseProcStatus(absl::string_view text) {
  ProcessMemory m;
  bool rss = false, hwm = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!rss && ParseKbLine(line, "VmRSS", &m.resident_bytes)) rss = true;
    if (!hwm && ParseKbLine(line, "VmHWM", &m.peak_resident_bytes)) hwm = true;
  }
  if (!rss || !hwm) {
    return absl::DataLossError(absl::StrCat("process status text lacks a well-formed ",
                                            !rss ? "VmRSS" : "VmHWM", " line"));
  }
  return m;
}

namespace {

absl::StatusOr<std::string> ReadStatusText(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

absl::StatusOr<ProcessMemory> ReadProcessMemory(const std::string& path) {
  absl::StatusOr<std::string> text = ReadStatusText(path);
  if (!text.ok()) return text.status();
  return ParseProcStatus(*text);
}

absl::StatusOr<int> ParseParentPid(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    if (!absl::ConsumePrefix(&line, "PPid:")) continue;
    int ppid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line), &ppid)) return ppid;
    break;
  }
  return absl::DataLossError("process status text lacks a well-formed PPid line");
}

absl::StatusOr<ProcessMemory> ReadChildMemory(int pid) {
  if (pid <= 0) return absl::NotFoundError(absl::StrCat("no process ", pid));
  absl::StatusOr<std::string> text = ReadStatusText(absl::StrCat("/proc/", pid, "/status"));
  if (!text.ok()) return text.status();
  absl::StatusOr<int> ppid = ParseParentPid(*text);
  if (!ppid.ok() || *ppid != ::getpid()) {
    return absl::NotFoundError(absl::StrCat("process ", pid, " is not a child of this process"));
  }
  absl::StatusOr<ProcessMemory> m = ParseProcStatus(*text);
  // A zombie has no memory lines: it is gone for our purposes.
  if (!m.ok()) return absl::NotFoundError(absl::StrCat("process ", pid, " has exited"));
  return m;
}

std::vector<ChildMemory> ReadChildrenMemory(absl::Span<const int> pids) {
  std::vector<ChildMemory> out;
  for (int pid : pids) {
    absl::StatusOr<ProcessMemory> m = ReadChildMemory(pid);
    if (m.ok()) out.push_back({pid, *m});
  }
  return out;
}

}  // namespace bitparity

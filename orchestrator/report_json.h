// File: orchestrator/report_json.h
//
// The JSON report: the one source every other output is rendered from (text
// summary, Markdown, JUnit, HTML), so `bitparity report RUN.json` re-renders
// exactly what the run showed. Its structure is versioned ("schema":
// "bitparity.report", "schema_version": 1) and described by
// orchestrator/schema/report.schema.json. Per-position series are stored as
// columns ({"position": [...], "max_abs": [...], ...}).
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "orchestrator/compare.h"

namespace bitparity {

inline constexpr const char* kReportSchema = "bitparity.report";
inline constexpr int kReportSchemaVersion = 1;

// A check status as reports spell it ("pass", "fail", ...), and back: the only
// place where the spellings live. ParseCheckStatus: nullopt for any other string.
const char* CheckStatusName(CheckStatus s);
std::optional<CheckStatus> ParseCheckStatus(std::string_view name);
// A report's "status" value; nullopt when it is not a string or not a status.
std::optional<CheckStatus> ReadCheckStatus(const nlohmann::json& status);

// Everything measured, with provenance and per-check results; no "verdict" yet
// (baseline.h may add a check, then FinalizeVerdict).
nlohmann::json BuildReport(const CompareRun& run, const std::string& command_line);

// The report's "overall" object from its per-prompt results alone (the same
// figures whether the prompts come from one run or from merged shards).
nlohmann::json OverallFromPrompts(const nlohmann::json& prompts, int n_layer);

// The 'checks' summary of a report whose per-prompt results are in place.
nlohmann::json SummarizeChecks(const nlohmann::json& report, const Thresholds& t);

// Protobuf message -> JSON (field names as in the .proto).
nlohmann::json ProtoToJson(const google::protobuf::Message& m);

absl::Status WriteTextFile(const std::string& path, const std::string& content);
absl::StatusOr<nlohmann::json> ReadJsonFile(const std::string& path);
// InvalidArgument unless `j` is a bitparity report of a version this build reads.
absl::Status CheckReportVersion(const nlohmann::json& j, const std::string& source);

}  // namespace bitparity

// File: orchestrator/conformance_report.h
//
// The reports of `bitparity conformance` (conformance.h): one JSON document
// (schema "bitparity.conformance", version 1) and its renderings. Every FAIL
// carries the request, the expected and the observed value.
//   ConformanceJson   {schema, version, address, engine, model, conforms, counts, wall_s,
//                      checks: [{name, group, required, status, catches, note,
//                                request, expected, observed, ms}]}
//   RenderConformanceText   one line per check, FAILs explained (the terminal)
//   RenderConformanceJUnit  one testsuite, one testcase per check (--junit)
//   RenderConformanceHtml   one self-contained page, no scripts (--html)
#pragma once

#include <string>

#include "nlohmann/json.hpp"
#include "orchestrator/conformance.h"

namespace bitparity {

nlohmann::json ConformanceJson(const ConformanceResult& result);
std::string RenderConformanceText(const nlohmann::json& report);
std::string RenderConformanceJUnit(const nlohmann::json& report);
std::string RenderConformanceHtml(const nlohmann::json& report);

}  // namespace bitparity

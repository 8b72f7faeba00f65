// File: tests/orchestrator/json_schema_validator.h
//
// A validator for the subset of JSON Schema (2020-12) that
// orchestrator/schema/report.schema.json uses: type (one or a list), const, enum,
// properties, required, additionalProperties (bool or schema), items, minItems,
// minimum, maximum, minLength, pattern (ECMAScript), anyOf, and $ref to "#/$defs/...".
// Anything else in a schema is an error, so the schema cannot silently use a
// keyword this validator ignores.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace bitparity::testing {

// Returns the violations ("$.prompts[0].drift: missing required 'summary'"); empty = valid.
std::vector<std::string> ValidateJson(const nlohmann::json& instance, const nlohmann::json& schema);

}  // namespace bitparity::testing

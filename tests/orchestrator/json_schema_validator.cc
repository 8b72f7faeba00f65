#include "tests/orchestrator/json_schema_validator.h"

#include <cmath>
#include <regex>
#include <set>

namespace bitparity::testing {
namespace {

using nlohmann::json;

class Validator {
 public:
  explicit Validator(const json& root) : root_(root) {}

  void Check(const json& v, const json& s, const std::string& path) {
    if (s.is_boolean()) {
      if (!s.get<bool>()) Err(path, "no value allowed here");
      return;
    }
    static const std::set<std::string> kKnown = {
        "$schema", "$id", "title", "description", "$defs", "type", "const", "enum", "properties", "required",
        "additionalProperties", "items", "minItems", "minimum", "maximum", "minLength", "pattern", "anyOf", "$ref"};
    for (const auto& [k, _] : s.items()) {
      if (!kKnown.count(k)) Err(path, "schema uses unsupported keyword '" + k + "'");
    }
    if (s.contains("$ref")) {
      const std::string ref = s["$ref"];
      const std::string prefix = "#/$defs/";
      if (ref.rfind(prefix, 0) != 0 || !root_["$defs"].contains(ref.substr(prefix.size()))) {
        Err(path, "unresolvable $ref " + ref);
        return;
      }
      Check(v, root_["$defs"][ref.substr(prefix.size())], path);
    }
    if (s.contains("type")) {
      bool ok = false;
      if (s["type"].is_array()) {
        for (const auto& t : s["type"]) ok = ok || IsType(v, t);
      } else {
        ok = IsType(v, s["type"]);
      }
      if (!ok) {
        Err(path, "expected type " + s["type"].dump() + ", got " + v.type_name());
        return;
      }
    }
    if (s.contains("const") && v != s["const"]) Err(path, "expected " + s["const"].dump() + ", got " + v.dump());
    if (s.contains("enum")) {
      bool found = false;
      for (const auto& e : s["enum"]) found = found || e == v;
      if (!found) Err(path, v.dump() + " is not one of " + s["enum"].dump());
    }
    if (s.contains("anyOf")) {
      bool any = false;
      for (const auto& alt : s["anyOf"]) {
        Validator sub(root_);
        sub.Check(v, alt, path);
        if (sub.errors.empty()) any = true;
      }
      if (!any) Err(path, "matches none of anyOf");
    }
    if (v.is_number()) {
      if (s.contains("minimum") && v.get<double>() < s["minimum"].get<double>()) Err(path, "below minimum");
      if (s.contains("maximum") && v.get<double>() > s["maximum"].get<double>()) Err(path, "above maximum");
    }
    if (v.is_string()) {
      const std::string str = v.get<std::string>();
      if (s.contains("minLength") && str.size() < s["minLength"].get<size_t>()) Err(path, "shorter than minLength");
      if (s.contains("pattern") && !std::regex_search(str, std::regex(s["pattern"].get<std::string>()))) {
        Err(path, "'" + str + "' does not match " + s["pattern"].get<std::string>());
      }
    }
    if (v.is_array()) {
      if (s.contains("minItems") && v.size() < s["minItems"].get<size_t>()) Err(path, "fewer than minItems");
      if (s.contains("items")) {
        for (size_t i = 0; i < v.size(); ++i) Check(v[i], s["items"], path + "[" + std::to_string(i) + "]");
      }
    }
    if (v.is_object()) {
      if (s.contains("required")) {
        for (const auto& r : s["required"]) {
          if (!v.contains(r.get<std::string>())) Err(path, "missing required '" + r.get<std::string>() + "'");
        }
      }
      for (const auto& [k, val] : v.items()) {
        if (s.contains("properties") && s["properties"].contains(k)) {
          Check(val, s["properties"][k], path + "." + k);
        } else if (s.contains("additionalProperties")) {
          Check(val, s["additionalProperties"], path + "." + k);
        }
      }
    }
  }

  std::vector<std::string> errors;

 private:
  static bool IsType(const json& v, const json& t) {
    const std::string n = t.get<std::string>();
    if (n == "object") return v.is_object();
    if (n == "array") return v.is_array();
    if (n == "string") return v.is_string();
    if (n == "boolean") return v.is_boolean();
    if (n == "null") return v.is_null();
    if (n == "number") return v.is_number();
    if (n == "integer") {
      return v.is_number_integer() || (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>());
    }
    return false;
  }
  void Err(const std::string& path, const std::string& what) { errors.push_back(path + ": " + what); }

  const json& root_;
};

}  // namespace

std::vector<std::string> ValidateJson(const json& instance, const json& schema) {
  Validator v(schema);
  v.Check(instance, schema, "$");
  return v.errors;
}

}  // namespace bitparity::testing

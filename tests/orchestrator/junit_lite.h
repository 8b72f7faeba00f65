// File: tests/orchestrator/junit_lite.h
//
// Just enough XML to check that a file is JUnit: elements, attributes and
// nesting, with the five predefined entities. Checks that tags balance and that
// the root is <testsuites> holding <testsuite> elements holding <testcase>
// elements, whose only children are failure, error, skipped, system-out or
// system-err; and that each suite's tests/failures/errors/skipped counts match.
#pragma once

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

namespace bitparity::testing {

struct XmlNode {
  std::string name;
  std::map<std::string, std::string> attrs;
  std::vector<XmlNode> children;
  std::string text;
};

// Returns false with *error set on malformed input.
inline bool ParseXml(const std::string& s, XmlNode* root, std::string* error) {
  size_t i = 0;
  auto skip_ws = [&] { while (i < s.size() && isspace(static_cast<unsigned char>(s[i]))) ++i; };
  if (s.compare(0, 5, "<?xml") == 0) {
    i = s.find("?>");
    if (i == std::string::npos) { *error = "unterminated XML declaration"; return false; }
    i += 2;
  }
  std::vector<XmlNode> stack;
  bool have_root = false;
  while (i < s.size()) {
    if (s[i] != '<') {
      const size_t j = s.find('<', i);
      std::string text = s.substr(i, j == std::string::npos ? std::string::npos : j - i);
      if (!stack.empty()) stack.back().text += text;
      else if (text.find_first_not_of(" \t\r\n") != std::string::npos) { *error = "text outside the root"; return false; }
      if (j == std::string::npos) break;
      i = j;
      continue;
    }
    if (s.compare(i, 2, "</") == 0) {
      const size_t j = s.find('>', i);
      if (j == std::string::npos) { *error = "unterminated end tag"; return false; }
      const std::string name = s.substr(i + 2, j - i - 2);
      if (stack.empty() || stack.back().name != name) { *error = "mismatched </" + name + ">"; return false; }
      XmlNode done = std::move(stack.back());
      stack.pop_back();
      if (stack.empty()) { *root = std::move(done); have_root = true; }
      else stack.back().children.push_back(std::move(done));
      i = j + 1;
      continue;
    }
    ++i;
    XmlNode n;
    while (i < s.size() && !isspace(static_cast<unsigned char>(s[i])) && s[i] != '>' && s[i] != '/') n.name += s[i++];
    if (n.name.empty()) { *error = "empty tag name"; return false; }
    for (;;) {
      skip_ws();
      if (i >= s.size()) { *error = "unterminated tag <" + n.name; return false; }
      if (s[i] == '>' || s.compare(i, 2, "/>") == 0) break;
      std::string key;
      while (i < s.size() && s[i] != '=' && !isspace(static_cast<unsigned char>(s[i]))) key += s[i++];
      skip_ws();
      if (i >= s.size() || s[i] != '=') { *error = "attribute without value in <" + n.name; return false; }
      ++i;
      skip_ws();
      if (i >= s.size() || (s[i] != '"' && s[i] != '\'')) { *error = "unquoted attribute in <" + n.name; return false; }
      const char q = s[i++];
      const size_t j = s.find(q, i);
      if (j == std::string::npos) { *error = "unterminated attribute"; return false; }
      std::string v = s.substr(i, j - i);
      if (v.find('<') != std::string::npos) { *error = "'<' in an attribute"; return false; }
      n.attrs[key] = v;
      i = j + 1;
    }
    if (s[i] == '/') {
      i += 2;
      if (stack.empty()) { *root = std::move(n); have_root = true; }
      else stack.back().children.push_back(std::move(n));
    } else {
      ++i;
      stack.push_back(std::move(n));
    }
  }
  if (!stack.empty()) { *error = "unclosed <" + stack.back().name + ">"; return false; }
  if (!have_root) { *error = "no root element"; return false; }
  return true;
}

struct JUnitSummary {
  int suites = 0, cases = 0, failures = 0, errors = 0, skipped = 0;
  std::vector<std::string> failed_cases;  // "suite/case"
};

inline bool CheckJUnit(const std::string& xml, JUnitSummary* out, std::string* error) {
  XmlNode root;
  if (!ParseXml(xml, &root, error)) return false;
  if (root.name != "testsuites") { *error = "root is <" + root.name + ">, not <testsuites>"; return false; }
  for (const XmlNode& suite : root.children) {
    if (suite.name != "testsuite") { *error = "<testsuites> holds <" + suite.name + ">"; return false; }
    int cases = 0, f = 0, e = 0, sk = 0;
    for (const XmlNode& c : suite.children) {
      if (c.name != "testcase") { *error = "<testsuite> holds <" + c.name + ">"; return false; }
      if (!c.attrs.count("name") || !c.attrs.count("classname")) { *error = "testcase without name/classname"; return false; }
      ++cases;
      for (const XmlNode& k : c.children) {
        if (k.name == "failure") { ++f; out->failed_cases.push_back((suite.attrs.count("name") ? suite.attrs.at("name") : std::string("?")) + "/" + c.attrs.at("name")); }
        else if (k.name == "error") ++e;
        else if (k.name == "skipped") ++sk;
        else if (k.name != "system-out" && k.name != "system-err") { *error = "testcase holds <" + k.name + ">"; return false; }
      }
    }
    auto attr = [&](const char* a) { return suite.attrs.count(a) ? std::atoi(suite.attrs.at(a).c_str()) : -1; };
    if (attr("tests") != cases || attr("failures") != f || attr("errors") != e || attr("skipped") != sk) {
      *error = "counts of suite " + (suite.attrs.count("name") ? suite.attrs.at("name") : std::string("?")) + " do not match its testcases";
      return false;
    }
    out->suites++;
    out->cases += cases;
    out->failures += f;
    out->errors += e;
    out->skipped += sk;
  }
  return true;
}

}  // namespace bitparity::testing

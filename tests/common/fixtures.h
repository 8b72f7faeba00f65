// File: tests/common/fixtures.h
//
// Where the tests find ../shared/fixtures (tokenizer known-answer files, tiny models,
// bitnet.cpp golden logits). The path is baked in at configure time
// (BITPARITY_FIXTURES_DIR) and can be overridden with the environment variable
// BITPARITY_FIXTURES. Tests that need it call REQUIRE_FIXTURES(), which skips the
// test with a message naming the missing folder, so a CI log says what did not run.
#pragma once

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace bitparity::testing {

inline std::string FixturesDir() {
  if (const char* env = std::getenv("BITPARITY_FIXTURES")) return env;
#ifdef BITPARITY_FIXTURES_DIR
  return BITPARITY_FIXTURES_DIR;
#else
  return "";
#endif
}

inline bool PathExists(const std::string& p) {
  struct stat st;
  return !p.empty() && ::stat(p.c_str(), &st) == 0;
}

inline bool HaveFixtures() { return PathExists(FixturesDir() + "/README.md"); }

inline std::string FixturePath(const std::string& rel) { return FixturesDir() + "/" + rel; }

// Every .gguf under fixtures/models, sorted (empty without the fixtures).
inline std::vector<std::string> FixtureModels() {
  std::vector<std::string> out;
  const std::string dir = FixturePath("models");
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.size() > 5 && name.substr(name.size() - 5) == ".gguf") out.push_back(dir + "/" + name);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace bitparity::testing

#define REQUIRE_FIXTURES()                                                            \
  do {                                                                                \
    if (!::bitparity::testing::HaveFixtures()) {                                      \
      GTEST_SKIP() << "shared fixtures not found at '" << ::bitparity::testing::FixturesDir() \
                   << "' (set BITPARITY_FIXTURES); skipping";                         \
    }                                                                                 \
  } while (0)

// File: tests/common/fixtures.h
//
// Where the tests find ../shared/fixtures (tokenizer known-answer files, tiny models,
// bitnet.cpp golden logits). The path is baked in at configure time
// (BITPARITY_FIXTURES_DIR) and can be overridden with the environment variable
// BITPARITY_FIXTURES. Tests that need it call REQUIRE_FIXTURES(), which skips the
// test with a message naming the missing folder, so a CI log says what did not run.
#pragma once

#include <cstdlib>
#include <string>
#include <sys/stat.h>

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

}  // namespace bitparity::testing

#define REQUIRE_FIXTURES()                                                            \
  do {                                                                                \
    if (!::bitparity::testing::HaveFixtures()) {                                      \
      GTEST_SKIP() << "shared fixtures not found at '" << ::bitparity::testing::FixturesDir() \
                   << "' (set BITPARITY_FIXTURES); skipping";                         \
    }                                                                                 \
  } while (0)

#include "base/sha256.h"

#include <cstdio>
#include <string>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(Sha256, KnownAnswerForAbc) {
  const std::string abc = "abc";
  EXPECT_EQ(Sha256Hex({reinterpret_cast<const uint8_t*>(abc.data()), abc.size()}),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256, FileHashEqualsBufferHash) {
  std::string path = ::testing::TempDir() + "/sha256_test.bin";
  std::string data(3 << 20, 'x');  // spans several read chunks
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  auto h = Sha256HexOfFile(path);
  ASSERT_TRUE(h.ok()) << h.status();
  EXPECT_EQ(*h, Sha256Hex({reinterpret_cast<const uint8_t*>(data.data()), data.size()}));
}

TEST(Sha256, MissingFileIsNotFound) {
  EXPECT_EQ(Sha256HexOfFile("/nonexistent/file").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace bitparity

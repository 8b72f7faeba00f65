// engine/quant's I2_S packer (which bitnet-synth writes with) against the fixtures:
// decode every I2_S tensor of the fixture models with a decoder written here from the
// README's description, re-pack, compare bytes.

#include <cstdint>
#include <cstring>
#include <vector>

#include "engine/gguf/gguf_reader.h"
#include "engine/quant/i2s.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/common/fixtures.h"
#include "tests/gguf/gguf_test_util.h"

namespace bitparity {
namespace {

using ::bitparity::testing::FixturePath;
using ::bitparity::testing::IsOk;
using ::bitparity::testing::StatusIs;
using ::testing::HasSubstr;

// Test-local decoder: element i of block b sits in byte b*32 + (i%128)%32 at bit
// position 6 - 2*((i%128)/32); codes 0, 1, 2 are -1, 0, +1.
std::vector<int8_t> DecodeTrits(const uint8_t* data, int64_t n) {
  std::vector<int8_t> out(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = i % 128;
    const int code = (data[(i / 128) * 32 + j % 32] >> (6 - 2 * (j / 32))) & 3;
    EXPECT_NE(code, 3) << "element " << i;
    out[i] = static_cast<int8_t>(code - 1);
  }
  return out;
}

TEST(I2sPackFixtureTest, PacksOneBlockInBitnetX86Layout) {
  int8_t trits[128] = {};
  trits[0] = 1;     // byte 0, bits 7-6
  trits[32] = -1;   // byte 0, bits 5-4
  trits[127] = 1;   // byte 31, bits 1-0
  uint8_t out[32];
  I2sPackBlock(trits, out);
  EXPECT_EQ(out[0], (2 << 6) | (0 << 4) | (1 << 2) | 1);
  EXPECT_EQ(out[31], (1 << 6) | (1 << 4) | (1 << 2) | 2);
  for (int g = 1; g < 31; ++g) EXPECT_EQ(out[g], 0x55) << g;  // all zeros: code 1 everywhere
}

TEST(I2sPackFixtureTest, RepacksEveryFixtureI2sTensorByteForByte) {
  REQUIRE_FIXTURES();
  int checked = 0;
  for (const char* model : {"models/tiny-b158.gguf", "models/tiny-b158-l3.gguf", "models/tiny-bitnet.gguf"}) {
    auto f = GgufFile::Open(FixturePath(model));
    ASSERT_THAT(f, IsOk());
    for (const GgufTensorInfo& t : (*f)->tensors()) {
      if (t.type != GgmlType::kI2_S) continue;
      const uint8_t* data = (*f)->TensorData(t);
      const int64_t n = t.num_elements;
      const std::vector<int8_t> trits = DecodeTrits(data, n);
      float scale;
      std::memcpy(&scale, data + n / 4, sizeof(scale));
      // The fixtures' scale is sqrt(1 / (0.6 K)) in float32, K = the row length.
      EXPECT_EQ(scale, static_cast<float>(std::sqrt(1.0 / (0.6 * t.ne[0])))) << model << " " << t.name;
      std::vector<uint8_t> packed(n / 4 + kI2sTrailerBytes);
      ASSERT_THAT(I2sPack(trits.data(), n, scale, packed.data()), IsOk());
      ASSERT_EQ(packed.size(), t.byte_size);
      EXPECT_EQ(0, std::memcmp(packed.data(), data, packed.size())) << model << " " << t.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 28 + 14 + 21);
}

TEST(I2sPackFixtureTest, RejectsBadInput) {
  std::vector<int8_t> trits(128, 0);
  std::vector<uint8_t> out(64);
  trits[5] = 2;
  EXPECT_THAT(I2sPack(trits.data(), 128, 1.0f, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("index 5 is 2")));
  std::vector<int8_t> odd(100, 0);
  EXPECT_THAT(I2sPack(odd.data(), 100, 1.0f, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 128")));
}

}  // namespace
}  // namespace bitparity

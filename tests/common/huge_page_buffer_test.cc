// engine/common/huge_page_buffer: alignment, rounding, zero fill, ownership moves,
// and the THP mode read from sysfs.
#include "engine/common/huge_page_buffer.h"

#include <cstdint>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace bitparity {
namespace {

TEST(HugePageBufferTest, IsHugePageAlignedRoundedUpAndZeroFilled) {
  auto b = HugePageBuffer::Allocate(3 * HugePageBuffer::kHugePageBytes + 5);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % HugePageBuffer::kHugePageBytes, 0u);
  EXPECT_EQ(b->size(), 4 * HugePageBuffer::kHugePageBytes);
  for (size_t i = 0; i < b->size(); i += 4096) ASSERT_EQ(b->data()[i], 0) << "byte " << i;
  b->data()[b->size() - 1] = 7;  // the whole rounded size is usable
  EXPECT_EQ(b->data()[b->size() - 1], 7);
}

TEST(HugePageBufferTest, ZeroBytesIsAnEmptyBuffer) {
  auto b = HugePageBuffer::Allocate(0);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->data(), nullptr);
  EXPECT_EQ(b->size(), 0u);
}

TEST(HugePageBufferTest, MovesTransferOwnership) {
  auto a = HugePageBuffer::Allocate(100);
  ASSERT_TRUE(a.ok());
  uint8_t* p = a->data();
  p[0] = 42;
  HugePageBuffer b = std::move(*a);
  EXPECT_EQ(a->data(), nullptr);
  EXPECT_EQ(b.data(), p);
  HugePageBuffer c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.data()[0], 42);
}

TEST(HugePageBufferTest, AnAbsurdSizeIsResourceExhausted) {
  auto b = HugePageBuffer::Allocate(size_t{1} << 62);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(HugePageBufferTest, ReportsTheKernelsThpMode) {
  const std::string mode = HugePageBuffer::TransparentHugePageMode();
  EXPECT_TRUE(mode == "always" || mode == "madvise" || mode == "never" || mode == "unknown") << mode;
}

}  // namespace
}  // namespace bitparity

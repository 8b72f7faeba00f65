#include "engine/quant/tensor_type.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace bitparity {
namespace {

struct TypeEntry {
  uint32_t id;
  GgmlTypeTraits traits;
};

// Sizes from ggml's type_traits table (ggml.c), with bitnet.cpp's I2_S.
constexpr TypeEntry kTypes[] = {
    {0, {"f32", 1, 4, true}},         {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, false}},     {3, {"q4_1", 32, 20, false}},
    {6, {"q5_0", 32, 22, false}},     {7, {"q5_1", 32, 24, false}},
    {8, {"q8_0", 32, 34, true}},      {9, {"q8_1", 32, 36, false}},
    {10, {"q2_K", 256, 84, false}},   {11, {"q3_K", 256, 110, false}},
    {12, {"q4_K", 256, 144, false}},  {13, {"q5_K", 256, 176, false}},
    {14, {"q6_K", 256, 210, false}},  {15, {"q8_K", 256, 292, false}},
    {16, {"iq2_xxs", 256, 66, false}}, {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}}, {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, false}},  {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},  {23, {"iq4_xs", 256, 136, false}},
    {24, {"i8", 1, 1, false}},        {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},       {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},       {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},       {34, {"tq1_0", 256, 54, true}},
    {35, {"tq2_0", 256, 66, true}},   {36, {"i2_s", 1, 1, true}},
    {38, {"tl1", 1, 1, false}},       {39, {"tl2", 1, 1, false}},
};

constexpr int64_t kI2sBlock = 128;   // elements per packed I2_S block
constexpr uint64_t kI2sTrailer = 32;  // bytes after the packed data (float32 scale + padding)

}  // namespace

const GgmlTypeTraits* FindGgmlTypeTraits(uint32_t type) {
  for (const TypeEntry& e : kTypes) {
    if (e.id == type) return &e.traits;
  }
  return nullptr;
}

const GgmlTypeTraits& GgmlTypeTraitsOf(GgmlType type) {
  return *FindGgmlTypeTraits(static_cast<uint32_t>(type));
}

std::string GgmlTypeName(uint32_t type) {
  const GgmlTypeTraits* t = FindGgmlTypeTraits(type);
  return t ? std::string(t->name) : absl::StrCat("type(", type, ")");
}

absl::StatusOr<uint64_t> TensorByteSize(GgmlType type, absl::Span<const int64_t> ne) {
  const GgmlTypeTraits& t = GgmlTypeTraitsOf(type);
  if (ne.empty()) return absl::InvalidArgumentError("tensor has no dimensions");
  constexpr uint64_t kMax = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t elements = 1;
  for (int64_t d : ne) {
    if (d <= 0) return absl::InvalidArgumentError(absl::StrCat("dimension ", d, " is not positive"));
    if (elements > kMax / static_cast<uint64_t>(d)) {
      return absl::OutOfRangeError("tensor element count overflows 63 bits");
    }
    elements *= static_cast<uint64_t>(d);
  }
  if (type == GgmlType::kI2_S) {
    if (elements % kI2sBlock != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("I2_S tensor has ", elements, " elements, not a multiple of ", kI2sBlock));
    }
    return elements / 4 + kI2sTrailer;
  }
  if (type == GgmlType::kTL1) return elements / 4 + kI2sTrailer;  // as I2_S in ggml_nbytes
  if (type == GgmlType::kTL2) {
    // ggml_nbytes: 5 bits per 3 weights for the first ne0 - 256 columns, 4 bits per 2
    // for the last 256, padded to 32 bytes, plus 32 bytes of scale.
    if (ne.size() != 2 || ne[0] < 256) {
      return absl::InvalidArgumentError("a TL2 tensor must be 2-D with rows of at least 256 values");
    }
    uint64_t bytes = static_cast<uint64_t>(ne[0] - 256) * ne[1] / 3 * 5 / 8 + 256 * static_cast<uint64_t>(ne[1]) / 2 * 4 / 8;
    if (bytes % 32 != 0) bytes += 32 - bytes % 32;
    return bytes + 32;
  }
  if (ne[0] % t.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("row length ", ne[0], " is not a multiple of the ",
                                                   t.name, " block size ", t.block_size));
  }
  const uint64_t blocks = elements / static_cast<uint64_t>(t.block_size);
  if (blocks > kMax / static_cast<uint64_t>(t.type_size)) {
    return absl::OutOfRangeError("tensor byte size overflows 63 bits");
  }
  return blocks * static_cast<uint64_t>(t.type_size);
}

uint64_t RowByteSize(GgmlType type, int64_t ne0) {
  if (type == GgmlType::kI2_S) return static_cast<uint64_t>(ne0) / 4;
  const GgmlTypeTraits& t = GgmlTypeTraitsOf(type);
  return static_cast<uint64_t>(ne0 / t.block_size * t.type_size);
}

}  // namespace bitparity

#include "base/gpt2_bytes.h"

#include <array>

#include "base/utf8.h"

namespace bitparity {
namespace {

struct ByteTables {
  std::array<uint32_t, 256> to_code_point{};
  std::array<int16_t, 324> to_byte{};  // code points 0..323 cover the whole mapping
};

ByteTables MakeByteTables() {
  ByteTables t;
  t.to_byte.fill(-1);
  auto printable = [](int b) {
    return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  };
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    t.to_code_point[b] = printable(b) ? static_cast<uint32_t>(b) : next++;
    t.to_byte[t.to_code_point[b]] = static_cast<int16_t>(b);
  }
  return t;
}

const ByteTables& Tables() {
  static const ByteTables tables = MakeByteTables();
  return tables;
}

}  // namespace

uint32_t Gpt2ByteToCodePoint(uint8_t byte) { return Tables().to_code_point[byte]; }

int Gpt2CodePointToByte(uint32_t cp) {
  return cp < Tables().to_byte.size() ? Tables().to_byte[cp] : -1;
}

std::string Gpt2ByteSpelling(uint8_t byte) {
  std::string out;
  AppendUtf8(Gpt2ByteToCodePoint(byte), &out);
  return out;
}

}  // namespace bitparity

#include "engine/tools/synth/i2s_pack.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace bitparity::synth {

void PackI2sBlock(const int8_t* trits, uint8_t* out) {
  for (int g = 0; g < 32; ++g) {
    // trit + 1 maps -1, 0, +1 to the codes 0, 1, 2.
    out[g] = static_cast<uint8_t>((trits[g] + 1) << 6 | (trits[32 + g] + 1) << 4 |
                                  (trits[64 + g] + 1) << 2 | (trits[96 + g] + 1));
  }
}

std::array<uint8_t, kI2sTrailerBytes> I2sTrailer(float scale) {
  std::array<uint8_t, kI2sTrailerBytes> t{};
  std::memcpy(t.data(), &scale, sizeof(scale));  // little-endian host, as GGUF
  return t;
}

absl::Status PackI2s(absl::Span<const int8_t> trits, float scale, absl::Span<uint8_t> out) {
  const int64_t n = static_cast<int64_t>(trits.size());
  if (n % kI2sBlockElems != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("I2_S needs a multiple of ", kI2sBlockElems, " elements, got ", n));
  }
  if (static_cast<int64_t>(out.size()) != n / 4 + kI2sTrailerBytes) {
    return absl::InvalidArgumentError(absl::StrCat("I2_S output for ", n, " elements must be ",
                                                   n / 4 + kI2sTrailerBytes, " bytes, got ",
                                                   out.size()));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (trits[i] < -1 || trits[i] > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, " is ", static_cast<int>(trits[i]), ", not a trit"));
    }
  }
  for (int64_t b = 0; b < n / kI2sBlockElems; ++b) {
    PackI2sBlock(trits.data() + b * kI2sBlockElems, out.data() + b * kI2sBlockBytes);
  }
  const auto trailer = I2sTrailer(scale);
  std::memcpy(out.data() + n / 4, trailer.data(), trailer.size());
  return absl::OkStatus();
}

}  // namespace bitparity::synth

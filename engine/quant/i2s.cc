#include "engine/quant/i2s.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace bitparity {

float I2sReadScale(const uint8_t* data, int64_t n) {
  float s;
  std::memcpy(&s, data + n / 4, sizeof(s));
  return s;
}

void I2sDecodeTrits(const uint8_t* data, int64_t n, int8_t* trits) {
  for (int64_t i = 0; i < n; ++i) trits[i] = I2sCodeToTrit(I2sCodeAt(data, i));
}

void I2sDequantize(const uint8_t* data, int64_t n, float scale, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(I2sCodeToTrit(I2sCodeAt(data, i))) * scale;
}

void I2sPackBlock(const int8_t* t, uint8_t* out) {
  for (int g = 0; g < 32; ++g) {
    // trit + 1 is the code; the 4 groups of 32 share one byte, first group highest.
    out[g] = static_cast<uint8_t>((t[g] + 1) << 6 | (t[32 + g] + 1) << 4 | (t[64 + g] + 1) << 2 |
                                  (t[96 + g] + 1));
  }
}

std::array<uint8_t, kI2sTrailerBytes> I2sTrailer(float scale) {
  std::array<uint8_t, kI2sTrailerBytes> t{};
  std::memcpy(t.data(), &scale, sizeof(scale));  // little-endian host, as GGUF
  return t;
}

absl::Status I2sPack(const int8_t* trits, int64_t n, float scale, uint8_t* out) {
  if (n <= 0 || n % kI2sBlockElems != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("I2_S element count ", n, " is not a positive multiple of ", kI2sBlockElems));
  }
  for (int64_t i = 0; i < n; ++i) {
    if (trits[i] < -1 || trits[i] > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("I2_S trit at index ", i, " is ", static_cast<int>(trits[i]), ", not -1, 0 or 1"));
    }
  }
  for (int64_t b = 0; b < n / kI2sBlockElems; ++b) {
    I2sPackBlock(trits + b * kI2sBlockElems, out + b * kI2sBlockBytes);
  }
  const std::array<uint8_t, kI2sTrailerBytes> trailer = I2sTrailer(scale);
  std::memcpy(out + n / 4, trailer.data(), trailer.size());
  return absl::OkStatus();
}

absl::Status CheckI2sCodes(const uint8_t* data, int64_t n) {
  for (int64_t byte = 0; byte < n / 4; ++byte) {
    const uint8_t b = data[byte];
    if ((b & (b >> 1) & 0x55) == 0) continue;  // no pair with both bits set
    for (int64_t i = (byte / 32) * 128; i < (byte / 32 + 1) * 128; ++i) {
      if (I2sCodeAt(data, i) == 3) {
        return absl::DataLossError(absl::StrCat("I2_S code 3 (undefined) at element ", i, " (byte ", byte, ")"));
      }
    }
  }
  return absl::OkStatus();
}

int32_t I2sDotRow(const uint8_t* row, const int8_t* q, int64_t n) {
  // Block by block: byte g of a block holds elements g, 32+g, 64+g, 96+g (high bits first).
  int32_t sum = 0;
  for (int64_t b = 0; b < n / kI2sBlockElems; ++b) {
    const uint8_t* x = row + b * kI2sBlockBytes;
    const int8_t* y = q + b * kI2sBlockElems;
    for (int g = 0; g < 32; ++g) {
      sum += (x[g] >> 6) * y[g] + ((x[g] >> 4) & 3) * y[32 + g] + ((x[g] >> 2) & 3) * y[64 + g] +
             (x[g] & 3) * y[96 + g];
    }
  }
  return sum;
}

void QuantizeRowI8S(const float* x, int64_t n, int8_t* q, float* scale, int32_t* sum) {
  double m = 0.00001;
  for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(x[i])));
  const float s = static_cast<float>(127 / m);
  *scale = s;
  int32_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float p = x[i] * s;  // float product, as in ggml
    int v = NearestInt(p);
    v = std::min(127, std::max(-128, v));
    total += v;
    q[i] = static_cast<int8_t>(v);
  }
  *sum = total;
}

}  // namespace bitparity

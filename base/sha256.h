// File: base/sha256.h
// SHA-256 of a byte range or a file, as lowercase hex (OpenSSL's implementation).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace bitparity {

std::string Sha256Hex(absl::Span<const uint8_t> bytes);

// Streams the file; NotFound if it cannot be opened, DataLoss on a read error.
absl::StatusOr<std::string> Sha256HexOfFile(const std::string& path);

}  // namespace bitparity

// File: benchmarks/end_to_end/decode_bytes.h
//
// Bytes of weights one decode step reads: every tensor of every layer (blk.*), the
// final norm, the whole output head (token_embd when tied, as in 2B-4T), and one
// embedding row when the head is a separate tensor. Counted from the GGUF tensor
// sizes the engine binds (engine/model/weights.h). Not counted: the KV cache (it
// grows with position; at short contexts it is well under 1% of the weights) and
// activations, which stay in cache. This is the numerator of the bandwidth ceiling.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/model/weights.h"

namespace bitparity::bench {

struct DecodeBytes {
  int layer_tensors = 0;      // blk.* tensors
  uint64_t layer_bytes = 0;   // their bytes
  std::string head_tensor;    // name of the output head tensor
  uint64_t head_bytes = 0;
  uint64_t other_bytes = 0;   // output_norm + one embedding row (untied head only)
  uint64_t total() const { return layer_bytes + head_bytes + other_bytes; }
};

// Errors: FailedPrecondition (the head tensor named by `weights` is not in `file`).
absl::StatusOr<DecodeBytes> BytesReadPerDecodedToken(const GgufFile& file, const Weights& weights);

}  // namespace bitparity::bench

#include "benchmarks/end_to_end/decode_bytes.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace bitparity::bench {

absl::StatusOr<DecodeBytes> BytesReadPerDecodedToken(const GgufFile& file, const Weights& weights) {
  DecodeBytes b;
  for (const GgufTensorInfo& t : file.tensors()) {
    if (!absl::StartsWith(t.name, "blk.")) continue;
    ++b.layer_tensors;
    b.layer_bytes += t.byte_size;
  }
  const GgufTensorInfo* head = file.FindTensor(weights.output.name);
  if (head == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("output head tensor '", weights.output.name, "' not found in ", file.path()));
  }
  b.head_tensor = head->name;
  b.head_bytes = head->byte_size;
  if (const GgufTensorInfo* norm = file.FindTensor("output_norm.weight")) b.other_bytes += norm->byte_size;
  // A tied head already streams the whole embedding; an untied one adds the looked-up row.
  if (weights.output.name != weights.token_embd.name) b.other_bytes += weights.token_embd.row_bytes;
  return b;
}

}  // namespace bitparity::bench

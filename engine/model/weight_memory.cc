#include "engine/model/weight_memory.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace bitparity {
namespace {
// Bytes copied (and then released from the mapping) per step: one huge page, so the
// copy and the mapping overlap by at most a huge page per thread in the resident set
// (with 32 MiB steps, tiny-b158's peak RSS rose from 44 to 64 MiB).
constexpr int64_t kCopyChunk = int64_t{2} << 20;

// Every tensor starts on a cache line in the copy. GGUF aligns tensors to 32 bytes, and
// an I2_S tensor ends with its 32-byte scale, so in the file every other ternary matrix
// starts mid-line and each 64-byte load of its rows straddles two lines. Zen 5, one
// thread, kernels_bench BM_I2sGemmDecodeLayers/2/8 (the 30 layers' products for 8
// rows): 53.5-59.9 ms at 64-byte alignment, 70.7-82.6 ms at a 32-byte offset.
constexpr uint64_t kTensorAlignment = 64;

// Bytes [from, from + bytes) of the tensor data section go to `to` in the copy.
struct CopyPiece {
  uint64_t from, to, bytes;
};

// Each tensor's offset in the copy: in file order, each rounded up to kTensorAlignment.
// Sets *total to the copy's size.
std::vector<uint64_t> CopyOffsets(const std::vector<GgufTensorInfo>& tensors, uint64_t* total) {
  std::vector<size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors[a].offset < tensors[b].offset; });
  std::vector<uint64_t> offsets(tensors.size());
  uint64_t end = 0;
  for (size_t i : order) {
    offsets[i] = (end + kTensorAlignment - 1) / kTensorAlignment * kTensorAlignment;
    end = offsets[i] + tensors[i].byte_size;
  }
  *total = end;
  return offsets;
}

// The bytes of [from, end) (section offsets, inside the tensor starting at section
// offset `begin`, copied to `to`) in pieces of at most kCopyChunk.
void AddPieces(uint64_t begin, uint64_t to, uint64_t from, uint64_t end, std::vector<CopyPiece>& pieces) {
  for (uint64_t p = from; p < end; p += kCopyChunk) {
    pieces.push_back({p, to + (p - begin), std::min<uint64_t>(kCopyChunk, end - p)});
  }
}
}  // namespace
absl::StatusOr<WeightMemory> ParseWeightMemory(std::string_view name) {
  if (name == "hugepages") return WeightMemory::kHugePages;
  if (name == "mmap") return WeightMemory::kMmap;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown weight memory '", std::string(name), "' (want hugepages or mmap)"));
}

const char* WeightMemoryName(WeightMemory mode) { return mode == WeightMemory::kMmap ? "mmap" : "hugepages"; }

absl::StatusOr<HugePageBuffer> CopyTensorDataToHugePages(GgufFile& file, ThreadPool& pool, uint64_t skip_begin,
                                                         uint64_t skip_end) {
  const absl::Span<const uint8_t> src = file.tensor_data_section();
  const std::vector<GgufTensorInfo>& tensors = file.tensors();
  uint64_t total = 0;
  std::vector<uint64_t> copy_offsets = CopyOffsets(tensors, &total);
  absl::StatusOr<HugePageBuffer> buf = HugePageBuffer::Allocate(total);
  if (!buf.ok()) {
    return absl::ResourceExhaustedError(
        absl::StrCat(file.path(), ": cannot hold the tensor data in huge pages: ", buf.status().message()));
  }
  uint8_t* dst = buf->data();
  // Every tensor's bytes outside [skip_begin, skip_end) (GgufFile checked that they lie
  // inside the section and do not overlap).
  const uint64_t n = src.size();
  const uint64_t skip_b = std::min(skip_begin, n), skip_e = std::min(std::max(skip_begin, skip_end), n);
  std::vector<CopyPiece> pieces;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const uint64_t b = tensors[i].offset, e = b + tensors[i].byte_size;
    AddPieces(b, copy_offsets[i], b, std::min(e, skip_b), pieces);
    AddPieces(b, copy_offsets[i], std::max(b, skip_e), e, pieces);
  }
  const uint64_t section = file.data_offset();
  pool.ParallelFor(static_cast<int64_t>(pieces.size()), [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const CopyPiece& c = pieces[p];
      std::memcpy(dst + c.to, src.data() + c.from, c.bytes);
      file.ReleaseMappedPages(section + c.from, section + c.from + c.bytes);
    }
  });
  // The pages a piece shared with its neighbour (whole pages only are released).
  file.ReleaseMappedPages(section, section + skip_b);
  file.ReleaseMappedPages(section + skip_e, section + n);
  file.RelocateTensorData(dst, std::move(copy_offsets));
  return buf;
}

}  // namespace bitparity

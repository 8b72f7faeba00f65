// File: engine/gguf/gguf_writer.h
//
// Writes a GGUF v3 file (layout in engine/gguf/gguf_format.h) without holding the
// tensor data in memory: declare metadata and tensors first, then stream each
// tensor's bytes, in declaration order, in as many chunks as convenient.
//
//   GgufWriter w;
//   RETURN_IF_ERROR(w.AddString("general.architecture", "bitnet-b1.58"));
//   RETURN_IF_ERROR(w.AddTensor("token_embd.weight", GgmlType::kF16, {256, 50257}));
//   RETURN_IF_ERROR(w.Open("/tmp/model.gguf"));          // writes header + tensor infos
//   RETURN_IF_ERROR(w.WriteTensorData(bytes));          // any number of chunks per tensor
//   RETURN_IF_ERROR(w.Finish());                        // checks sizes, renames into place
//
// The file is written to "<path>.tmp" and renamed onto `path` by Finish(), so a
// failed or abandoned write never leaves a half-written model under the real name
// (the destructor removes the temporary file).
//
// Errors:
//   InvalidArgument     duplicate key or tensor name, bad shape for the type, tensor
//                       name of 64 bytes or more (ggml's GGML_MAX_NAME), alignment
//                       not a power of two, more bytes than a tensor holds
//   FailedPrecondition  calls in the wrong phase (metadata after Open, data before
//                       Open, alignment after the first tensor, Finish with data missing)
//   other               the errno of a failed open / write / rename
//
// Thread safety: none; one writer per thread.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/quant/tensor_type.h"

namespace bitparity {

class GgufWriter {
 public:
  GgufWriter() = default;
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata, stored in the order added.
  absl::Status AddUint8(absl::string_view key, uint8_t v);
  absl::Status AddInt8(absl::string_view key, int8_t v);
  absl::Status AddUint16(absl::string_view key, uint16_t v);
  absl::Status AddInt16(absl::string_view key, int16_t v);
  absl::Status AddUint32(absl::string_view key, uint32_t v);
  absl::Status AddInt32(absl::string_view key, int32_t v);
  absl::Status AddFloat32(absl::string_view key, float v);
  absl::Status AddBool(absl::string_view key, bool v);
  absl::Status AddString(absl::string_view key, absl::string_view v);
  absl::Status AddUint64(absl::string_view key, uint64_t v);
  absl::Status AddInt64(absl::string_view key, int64_t v);
  absl::Status AddFloat64(absl::string_view key, double v);
  absl::Status AddArray(absl::string_view key, const GgufArray& v);  // may nest
  absl::Status AddStringArray(absl::string_view key, absl::Span<const std::string> v);
  absl::Status AddInt32Array(absl::string_view key, absl::Span<const int32_t> v);
  absl::Status AddFloat32Array(absl::string_view key, absl::Span<const float> v);
  // Any value as the reader returns it (copying metadata from another file).
  absl::Status AddValue(absl::string_view key, const GgufValue& v);

  // Sets the data alignment and records it as `general.alignment` (u32).
  // REQUIRES: before the first AddTensor. Default 32.
  absl::Status SetAlignment(uint32_t alignment);

  // Declares the next tensor; its offset follows the previous one, aligned.
  absl::Status AddTensor(absl::string_view name, GgmlType type, absl::Span<const int64_t> ne);
  absl::Status AddTensor(absl::string_view name, GgmlType type, std::initializer_list<int64_t> ne) {
    return AddTensor(name, type, absl::Span<const int64_t>(ne.begin(), ne.size()));
  }

  // Everything before the tensor data: header, metadata, tensor infos, padding.
  std::string HeaderBytes() const;
  uint64_t data_offset() const;  // == HeaderBytes().size()
  uint64_t file_size() const;    // data_offset() + aligned data section
  uint64_t alignment() const { return alignment_; }

  // Creates "<path>.tmp" and writes HeaderBytes() to it.
  absl::Status Open(const std::string& path);
  // Appends bytes to the current tensor (declaration order); moves on to the next
  // tensor, writing the alignment padding, once the current one is full.
  absl::Status WriteTensorData(absl::Span<const uint8_t> bytes);
  // Like WriteTensorData, but checks that `name` is the current tensor and that
  // `bytes` is all of it.
  absl::Status WriteTensor(absl::string_view name, absl::Span<const uint8_t> bytes);
  // Checks that every tensor was written in full, flushes, closes and renames.
  absl::Status Finish();

 private:
  struct Tensor {
    std::string name;
    GgmlType type;
    std::vector<int64_t> ne;
    uint64_t offset;
    uint64_t byte_size;
  };
  enum class Phase { kDeclaring, kWriting, kFinished };

  absl::Status StartKey(absl::string_view key, GgufValueType type);
  absl::Status WriteRaw(const void* data, size_t n);
  absl::Status WriteZeros(uint64_t n);
  absl::Status IoError(absl::string_view what);

  Phase phase_ = Phase::kDeclaring;
  uint64_t alignment_ = 32;
  std::string kv_bytes_;  // serialized metadata entries
  uint64_t n_kv_ = 0;
  absl::flat_hash_set<std::string> keys_;
  std::vector<Tensor> tensors_;
  absl::flat_hash_set<std::string> tensor_names_;
  uint64_t data_size_ = 0;  // end of the last tensor, relative to the data section

  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  size_t current_ = 0;          // tensor being written
  uint64_t current_written_ = 0;  // bytes of it written so far
};

}  // namespace bitparity

// File: engine/gguf/gguf_reader.h
//
// Reads a GGUF v2/v3 file (the container of llama.cpp / bitnet.cpp models) over a
// read-only mmap: header, metadata of every value type, tensor infos and the
// location of each tensor's bytes. Everything is validated before use; a damaged
// file gives a specific absl::Status, never a crash or a giant allocation.
// The byte layout is documented in engine/gguf/gguf_format.h.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> f, GgufFile::Open("model.gguf"));
//   ASSIGN_OR_RETURN(std::string arch, f->GetString("general.architecture"));
//   const GgufTensorInfo* t = f->FindTensor("token_embd.weight");
//   const uint8_t* bytes = f->TensorData(*t);   // t->byte_size bytes, inside the mmap
//
// Errors (the message names the file, and the key / tensor / byte offset):
//   NotFound         file missing; GetX() of a key that is not present
//   DataLoss         truncated file, bad magic, impossible counts or sizes, tensor data
//                    past the end of the file, overlapping tensors, misaligned offsets,
//                    duplicate keys or tensor names, invalid value types
//   Unimplemented    unsupported GGUF version; unknown tensor type number
//   InvalidArgument  GetX() of a key holding another value type (or a value that does
//                    not fit the result); Open() of something that is not a regular file
//
// Ownership and threads: a GgufFile owns its mapping; every string_view, Span and
// pointer it hands out lives as long as the GgufFile. All const methods are safe to
// call from several threads at once.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "base/metadata_override.h"
#include "engine/quant/tensor_type.h"

namespace bitparity {

// GGUF metadata value types (gguf_type in ggml).
enum class GgufValueType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

const char* GgufValueTypeName(GgufValueType type);

struct GgufArray;

// One metadata value. Strings are views into the mapped file.
using GgufValue = std::variant<uint8_t, int8_t, uint16_t, int16_t, uint32_t, int32_t, float, bool,
                               absl::string_view, uint64_t, int64_t, double, GgufArray>;

// An array value: all elements share element_type. Exactly one of the vectors is
// filled, the one matching element_type (bool arrays use `u8`, nested arrays `arrays`).
struct GgufArray {
  GgufValueType element_type = GgufValueType::kUint8;
  std::vector<uint8_t> u8;  // also kBool, as 0/1
  std::vector<int8_t> i8;
  std::vector<uint16_t> u16;
  std::vector<int16_t> i16;
  std::vector<uint32_t> u32;
  std::vector<int32_t> i32;
  std::vector<float> f32;
  std::vector<uint64_t> u64;
  std::vector<int64_t> i64;
  std::vector<double> f64;
  std::vector<absl::string_view> strings;
  std::vector<GgufArray> arrays;
  size_t size() const;
};

// Same element type and the same elements (strings compared by content).
bool operator==(const GgufArray& a, const GgufArray& b);
inline bool operator!=(const GgufArray& a, const GgufArray& b) { return !(a == b); }

struct GgufMetadataEntry {
  std::string key;
  GgufValueType type;
  GgufValue value;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the contiguous (row) dimension
  GgmlType type;
  uint64_t offset = 0;       // from the start of the tensor data section
  uint64_t byte_size = 0;    // TensorByteSize(type, ne)
  int64_t num_elements = 0;  // product of ne
};

class GgufFile {
 public:
  // Maps and validates the file at `path`.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Validates an in-memory copy (tests and fuzzers); `name` is used in messages.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBytes(std::string bytes,
                                                             std::string name = "<memory>");
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_size() const { return size_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // absolute start of tensor data

  const std::vector<GgufMetadataEntry>& metadata() const { return metadata_; }
  const GgufMetadataEntry* FindKey(absl::string_view key) const;
  bool HasKey(absl::string_view key) const { return FindKey(key) != nullptr; }

  // Typed getters. Integer getters accept any integer type whose value fits the
  // result (a u32 key read with GetInt64 works); floats accept f32 or f64.
  absl::StatusOr<std::string> GetString(absl::string_view key) const;
  absl::StatusOr<uint32_t> GetUint32(absl::string_view key) const;
  absl::StatusOr<int64_t> GetInt64(absl::string_view key) const;
  absl::StatusOr<float> GetFloat32(absl::string_view key) const;
  absl::StatusOr<bool> GetBool(absl::string_view key) const;
  absl::StatusOr<const GgufArray*> GetArray(absl::string_view key) const;
  // Arrays of one element type; InvalidArgument if the element type differs.
  absl::StatusOr<absl::Span<const absl::string_view>> GetStringArray(absl::string_view key) const;
  absl::StatusOr<absl::Span<const float>> GetFloat32Array(absl::string_view key) const;
  absl::StatusOr<absl::Span<const int32_t>> GetInt32Array(absl::string_view key) const;

  // Metadata overrides (llama.cpp's --override-kv; base/metadata_override.h), applied
  // to this file's metadata so that every reader (model config, tokenizer, lint) sees
  // them. A key the file holds keeps its GGUF type and takes the new value; a key it
  // lacks is added (int as i64, float as f64, bool, str), as llama.cpp's get_key then
  // returns the override. Errors, none of which changes anything: InvalidArgument for
  // an override whose TYPE differs from the key's, or that names an array key;
  // OutOfRange for an int that does not fit the key's width (CheckOverrideFitsKey).
  // llama.cpp applies an override only where it reads the key with get_key (hparams,
  // the vocabulary's scalars); here every reader of a scalar key sees it, which is the
  // same for every key the engine reads. Arrays cannot be overridden in either.
  // Call before handing the file to readers; not thread-safe against them.
  absl::Status ApplyOverrides(absl::Span<const MetadataOverride> overrides);
  // The overrides applied so far, in order.
  const std::vector<MetadataOverride>& overrides() const { return overrides_; }

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* FindTensor(absl::string_view name) const;
  // First byte of the tensor's data (byte_size bytes, inside the mapping).
  const uint8_t* TensorData(const GgufTensorInfo& info) const;

  // Whole file bytes (for hashing).
  absl::Span<const uint8_t> bytes() const { return {data_, size_}; }

  // The tensor data section, [data_offset(), file_size()) of the file.
  absl::Span<const uint8_t> tensor_data_section() const { return bytes().subspan(data_offset_); }
  // From now on TensorData() points into `base`, a copy of the tensors' bytes in which
  // tensors()[i] starts at byte copy_offsets[i] (one offset per tensor); the caller
  // keeps the copy alive while this file is used (engine/model/weight_memory.h).
  void RelocateTensorData(const uint8_t* base, std::vector<uint64_t> copy_offsets);
  // Lets the kernel drop this process's resident pages of file bytes [begin, end) (whole
  // pages inside it only). A later read faults them back in from the page cache. No-op
  // for FromBytes() files.
  void ReleaseMappedPages(uint64_t begin, uint64_t end) const;

 private:
  GgufFile() = default;
  absl::Status Parse();
  // Parse's steps that fill members (the byte reading is in gguf_reader.cc).
  // A duplicate key (read at byte offset `entry_at`) is an error.
  absl::Status AddMetadata(GgufMetadataEntry entry, uint64_t entry_at);
  // general.alignment, when present, must be a u32 power of two.
  absl::Status ApplyAlignmentKey();
  // A duplicate tensor name (info at byte offset `info_at`) is an error.
  absl::Status AddTensor(GgufTensorInfo info, uint64_t info_at);
  // Every tensor's bytes lie inside the file's data section, and none overlap.
  absl::Status CheckTensorData() const;

  std::string path_;
  std::string owned_bytes_;      // FromBytes() storage
  void* mapping_ = nullptr;      // Open() storage (munmap on destruction)
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  const uint8_t* tensor_base_ = nullptr;  // a relocated copy, or nullptr: the mapping
  std::vector<uint64_t> copy_offsets_;    // each tensor's offset in that copy
  std::vector<GgufMetadataEntry> metadata_;
  absl::flat_hash_map<std::string, size_t> key_index_;
  std::vector<GgufTensorInfo> tensors_;
  std::vector<MetadataOverride> overrides_;
  std::deque<std::string> override_strings_;  // backs overridden str values (stable addresses)
  absl::flat_hash_map<std::string, size_t> tensor_index_;
};

}  // namespace bitparity

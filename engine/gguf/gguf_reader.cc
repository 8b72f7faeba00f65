#include "engine/gguf/gguf_reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_format.h"

namespace bitparity {
namespace {

namespace fmt = gguf_format;

static_assert(sizeof(float) == 4 && sizeof(double) == 8, "IEEE-754 floats expected");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF is little-endian; this reader assumes a little-endian host"
#endif

// The one way bytes leave the file: every read checks the remaining length first
// and reports the byte offset and what it was reading.
class Cursor {
 public:
  Cursor(const uint8_t* data, uint64_t size, const std::string& file)
      : data_(data), size_(size), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }
  const std::string& file() const { return file_; }

  absl::Status Truncated(absl::string_view what, uint64_t need) const {
    return absl::DataLossError(absl::StrCat(file_, ": truncated at byte offset ", pos_,
                                            " reading ", what, " (need ", need, " bytes, ",
                                            remaining(), " left)"));
  }

  // A count of `count` items of at least `min_item_size` bytes each cannot exceed
  // what is left of the file; checked before anything is allocated.
  absl::Status CheckCount(absl::string_view what, uint64_t count, uint64_t min_item_size) const {
    if (min_item_size != 0 && count > remaining() / min_item_size) {
      return absl::DataLossError(absl::StrCat(file_, ": ", what, " count ", count, " at byte offset ",
                                              pos_, " needs at least ", min_item_size,
                                              " bytes each but only ", remaining(),
                                              " bytes are left"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::StatusOr<T> Read(absl::string_view what) {
    if (remaining() < sizeof(T)) return Truncated(what, sizeof(T));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // Copies `n` fixed-size elements into `out` (count already validated).
  template <typename T>
  absl::Status ReadVector(absl::string_view what, uint64_t n, std::vector<T>* out) {
    if (n > remaining() / sizeof(T)) return Truncated(what, n * sizeof(T));
    out->resize(n);
    if (n != 0) std::memcpy(out->data(), data_ + pos_, n * sizeof(T));
    pos_ += n * sizeof(T);
    return absl::OkStatus();
  }

  absl::StatusOr<absl::string_view> ReadString(absl::string_view what) {
    const uint64_t at = pos_;
    ASSIGN_OR_RETURN(uint64_t len, Read<uint64_t>(absl::StrCat(what, " length")));
    if (len > remaining()) {
      return absl::DataLossError(absl::StrCat(file_, ": ", what, " at byte offset ", at,
                                              " has length ", len, " but only ", remaining(),
                                              " bytes are left"));
    }
    absl::string_view s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }

 private:
  const uint8_t* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
  const std::string& file_;
};

// Minimum encoded size of one element of `type`, for count checks.
uint64_t MinValueSize(uint32_t type) {
  if (type == static_cast<uint32_t>(GgufValueType::kString)) return fmt::kMinStringSize;
  if (type == static_cast<uint32_t>(GgufValueType::kArray)) return fmt::kArrayHeaderSize;
  return fmt::FixedValueSize(type);
}

bool IsValidValueType(uint32_t type) { return type <= fmt::kMaxValueType; }

constexpr uint64_t kMaxReserve = 1 << 16;  // entries reserved ahead of reading them

absl::Status ReadArray(Cursor& c, absl::string_view key, int depth, GgufArray* out);

absl::StatusOr<GgufValue> ReadValue(Cursor& c, absl::string_view key, GgufValueType type,
                                    int depth) {
  switch (type) {
    case GgufValueType::kUint8: { ASSIGN_OR_RETURN(auto v, c.Read<uint8_t>(key)); return GgufValue(v); }
    case GgufValueType::kInt8: { ASSIGN_OR_RETURN(auto v, c.Read<int8_t>(key)); return GgufValue(v); }
    case GgufValueType::kUint16: { ASSIGN_OR_RETURN(auto v, c.Read<uint16_t>(key)); return GgufValue(v); }
    case GgufValueType::kInt16: { ASSIGN_OR_RETURN(auto v, c.Read<int16_t>(key)); return GgufValue(v); }
    case GgufValueType::kUint32: { ASSIGN_OR_RETURN(auto v, c.Read<uint32_t>(key)); return GgufValue(v); }
    case GgufValueType::kInt32: { ASSIGN_OR_RETURN(auto v, c.Read<int32_t>(key)); return GgufValue(v); }
    case GgufValueType::kFloat32: { ASSIGN_OR_RETURN(auto v, c.Read<float>(key)); return GgufValue(v); }
    case GgufValueType::kBool: { ASSIGN_OR_RETURN(auto v, c.Read<uint8_t>(key)); return GgufValue(v != 0); }
    case GgufValueType::kString: { ASSIGN_OR_RETURN(auto v, c.ReadString(key)); return GgufValue(v); }
    case GgufValueType::kUint64: { ASSIGN_OR_RETURN(auto v, c.Read<uint64_t>(key)); return GgufValue(v); }
    case GgufValueType::kInt64: { ASSIGN_OR_RETURN(auto v, c.Read<int64_t>(key)); return GgufValue(v); }
    case GgufValueType::kFloat64: { ASSIGN_OR_RETURN(auto v, c.Read<double>(key)); return GgufValue(v); }
    case GgufValueType::kArray: {
      GgufArray a;
      RETURN_IF_ERROR(ReadArray(c, key, depth + 1, &a));
      return GgufValue(std::move(a));
    }
  }
  return absl::DataLossError(absl::StrCat(c.file(), ": key '", key, "' has invalid value type ",
                                          static_cast<uint32_t>(type)));
}

absl::Status ReadArray(Cursor& c, absl::string_view key, int depth, GgufArray* out) {
  if (depth > fmt::kMaxArrayNesting) {
    return absl::DataLossError(absl::StrCat(c.file(), ": key '", key, "' nests arrays deeper than ",
                                            fmt::kMaxArrayNesting, " at byte offset ", c.pos()));
  }
  const uint64_t type_at = c.pos();
  ASSIGN_OR_RETURN(uint32_t etype, c.Read<uint32_t>(absl::StrCat("array element type of '", key, "'")));
  if (!IsValidValueType(etype)) {
    return absl::DataLossError(absl::StrCat(c.file(), ": key '", key,
                                            "' has invalid array element type ", etype,
                                            " at byte offset ", type_at));
  }
  ASSIGN_OR_RETURN(uint64_t n, c.Read<uint64_t>(absl::StrCat("array count of '", key, "'")));
  RETURN_IF_ERROR(c.CheckCount(absl::StrCat("array '", key, "' element"), n, MinValueSize(etype)));
  out->element_type = static_cast<GgufValueType>(etype);
  switch (out->element_type) {
    case GgufValueType::kUint8:
    case GgufValueType::kBool:
      RETURN_IF_ERROR(c.ReadVector(key, n, &out->u8));
      if (out->element_type == GgufValueType::kBool) {
        for (uint8_t& b : out->u8) b = b != 0;
      }
      return absl::OkStatus();
    case GgufValueType::kInt8: return c.ReadVector(key, n, &out->i8);
    case GgufValueType::kUint16: return c.ReadVector(key, n, &out->u16);
    case GgufValueType::kInt16: return c.ReadVector(key, n, &out->i16);
    case GgufValueType::kUint32: return c.ReadVector(key, n, &out->u32);
    case GgufValueType::kInt32: return c.ReadVector(key, n, &out->i32);
    case GgufValueType::kFloat32: return c.ReadVector(key, n, &out->f32);
    case GgufValueType::kUint64: return c.ReadVector(key, n, &out->u64);
    case GgufValueType::kInt64: return c.ReadVector(key, n, &out->i64);
    case GgufValueType::kFloat64: return c.ReadVector(key, n, &out->f64);
    case GgufValueType::kString:
      out->strings.reserve(n);
      for (uint64_t i = 0; i < n; ++i) {
        ASSIGN_OR_RETURN(absl::string_view s, c.ReadString(absl::StrCat("element ", i, " of '", key, "'")));
        out->strings.push_back(s);
      }
      return absl::OkStatus();
    case GgufValueType::kArray:
      // Grown one element at a time: a GgufArray is ~25x its 12-byte minimum encoding.
      for (uint64_t i = 0; i < n; ++i) {
        out->arrays.emplace_back();
        RETURN_IF_ERROR(ReadArray(c, key, depth + 1, &out->arrays.back()));
      }
      return absl::OkStatus();
  }
  return absl::OkStatus();  // unreachable: etype was validated
}

// Which integer types a getter accepts, and the value as a wide signed/unsigned pair.
struct WideInt {
  bool negative;
  uint64_t magnitude;  // the value if !negative, else -value
};

std::optional<WideInt> AsWideInt(const GgufValue& v) {
  struct Visitor {
    std::optional<WideInt> Signed(int64_t x) const {
      if (x < 0) return WideInt{true, static_cast<uint64_t>(-(x + 1)) + 1};
      return WideInt{false, static_cast<uint64_t>(x)};
    }
    std::optional<WideInt> operator()(uint8_t x) const { return WideInt{false, x}; }
    std::optional<WideInt> operator()(uint16_t x) const { return WideInt{false, x}; }
    std::optional<WideInt> operator()(uint32_t x) const { return WideInt{false, x}; }
    std::optional<WideInt> operator()(uint64_t x) const { return WideInt{false, x}; }
    std::optional<WideInt> operator()(int8_t x) const { return Signed(x); }
    std::optional<WideInt> operator()(int16_t x) const { return Signed(x); }
    std::optional<WideInt> operator()(int32_t x) const { return Signed(x); }
    std::optional<WideInt> operator()(int64_t x) const { return Signed(x); }
    std::optional<WideInt> operator()(float) const { return std::nullopt; }
    std::optional<WideInt> operator()(double) const { return std::nullopt; }
    std::optional<WideInt> operator()(bool) const { return std::nullopt; }
    std::optional<WideInt> operator()(absl::string_view) const { return std::nullopt; }
    std::optional<WideInt> operator()(const GgufArray&) const { return std::nullopt; }
  };
  return std::visit(Visitor{}, v);
}

struct FileHeader {
  uint32_t version = 0;
  uint64_t n_tensors = 0;
  uint64_t n_kv = 0;
};

// Magic, version and the two counts; the metadata count is checked against the
// bytes left (the tensor count only once the metadata is read).
absl::StatusOr<FileHeader> ReadHeader(Cursor& c) {
  FileHeader h;
  ASSIGN_OR_RETURN(uint32_t magic, c.Read<uint32_t>("magic"));
  if (magic != fmt::kMagic) {
    return absl::DataLossError(absl::StrCat(c.file(), ": bad magic 0x",
                                            absl::Hex(magic, absl::kZeroPad8),
                                            " at byte offset 0 (expected \"GGUF\")"));
  }
  ASSIGN_OR_RETURN(h.version, c.Read<uint32_t>("version"));
  if (h.version < fmt::kMinVersion || h.version > fmt::kMaxVersion) {
    const bool big_endian = (h.version & 0xFFFF) == 0 && h.version != 0;
    return absl::UnimplementedError(absl::StrCat(c.file(), ": unsupported GGUF version ", h.version,
                                                 " at byte offset 4 (supported: 2 and 3)",
                                                 big_endian ? "; the file looks big-endian" : ""));
  }
  ASSIGN_OR_RETURN(h.n_tensors, c.Read<uint64_t>("tensor count"));
  ASSIGN_OR_RETURN(h.n_kv, c.Read<uint64_t>("metadata count"));
  RETURN_IF_ERROR(c.CheckCount("metadata", h.n_kv, fmt::kMinKvSize));
  return h;
}

// Metadata entry `i`: key, value type, value.
absl::StatusOr<GgufMetadataEntry> ReadMetadataEntry(Cursor& c, uint64_t i) {
  ASSIGN_OR_RETURN(absl::string_view key, c.ReadString(absl::StrCat("key of metadata entry ", i)));
  const uint64_t type_at = c.pos();
  ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>(absl::StrCat("value type of '", key, "'")));
  if (!IsValidValueType(type)) {
    return absl::DataLossError(absl::StrCat(c.file(), ": key '", key, "' has invalid value type ",
                                            type, " at byte offset ", type_at));
  }
  ASSIGN_OR_RETURN(GgufValue value, ReadValue(c, key, static_cast<GgufValueType>(type), 0));
  return GgufMetadataEntry{std::string(key), static_cast<GgufValueType>(type), std::move(value)};
}

// n_dims and ne[] of tensor `name` into `t`, with num_elements; `where` names it in errors.
absl::Status ReadTensorDims(Cursor& c, absl::string_view name, const std::string& where,
                            GgufTensorInfo& t) {
  ASSIGN_OR_RETURN(uint32_t n_dims, c.Read<uint32_t>(absl::StrCat("n_dims of tensor '", name, "'")));
  if (n_dims < 1 || n_dims > fmt::kMaxDims) {
    return absl::DataLossError(absl::StrCat(where, " has n_dims ", n_dims, ", expected 1..",
                                            fmt::kMaxDims));
  }
  t.ne.resize(n_dims);
  uint64_t elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    ASSIGN_OR_RETURN(int64_t ne, c.Read<int64_t>(absl::StrCat("ne[", d, "] of tensor '", name, "'")));
    if (ne <= 0) {
      return absl::DataLossError(absl::StrCat(where, " has ne[", d, "] = ", ne,
                                              ", dimensions must be positive"));
    }
    if (elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                       static_cast<uint64_t>(ne)) {
      return absl::DataLossError(absl::StrCat(where, " element count overflows 63 bits at ne[",
                                              d, "] = ", ne));
    }
    elements *= static_cast<uint64_t>(ne);
    t.ne[d] = ne;
  }
  t.num_elements = static_cast<int64_t>(elements);
  return absl::OkStatus();
}

// Tensor info `i`: name, shape, type, offset (a multiple of `alignment`), byte size.
absl::StatusOr<GgufTensorInfo> ReadTensorInfo(Cursor& c, uint64_t i, uint64_t alignment) {
  const uint64_t info_at = c.pos();
  ASSIGN_OR_RETURN(absl::string_view name, c.ReadString(absl::StrCat("name of tensor ", i)));
  GgufTensorInfo t;
  t.name = std::string(name);
  const std::string where = absl::StrCat(c.file(), ": tensor '", t.name, "' (info at byte offset ",
                                         info_at, ")");
  RETURN_IF_ERROR(ReadTensorDims(c, name, where, t));
  ASSIGN_OR_RETURN(uint32_t type, c.Read<uint32_t>(absl::StrCat("type of tensor '", name, "'")));
  if (FindGgmlTypeTraits(type) == nullptr) {
    return absl::UnimplementedError(absl::StrCat(where, " has unknown ggml type ", type));
  }
  t.type = static_cast<GgmlType>(type);
  ASSIGN_OR_RETURN(t.offset, c.Read<uint64_t>(absl::StrCat("offset of tensor '", name, "'")));
  if (t.offset % alignment != 0) {
    return absl::DataLossError(absl::StrCat(where, " has offset ", t.offset,
                                            ", not a multiple of the alignment ", alignment));
  }
  absl::StatusOr<uint64_t> bytes = TensorByteSize(t.type, t.ne);
  if (!bytes.ok()) {
    return absl::DataLossError(absl::StrCat(where, " of type ", GgmlTypeName(type),
                                            " has an impossible shape: ", bytes.status().message()));
  }
  t.byte_size = *bytes;
  return t;
}

}  // namespace

const char* GgufValueTypeName(GgufValueType type) {
  switch (type) {
    case GgufValueType::kUint8: return "u8";
    case GgufValueType::kInt8: return "i8";
    case GgufValueType::kUint16: return "u16";
    case GgufValueType::kInt16: return "i16";
    case GgufValueType::kUint32: return "u32";
    case GgufValueType::kInt32: return "i32";
    case GgufValueType::kFloat32: return "f32";
    case GgufValueType::kBool: return "bool";
    case GgufValueType::kString: return "string";
    case GgufValueType::kArray: return "array";
    case GgufValueType::kUint64: return "u64";
    case GgufValueType::kInt64: return "i64";
    case GgufValueType::kFloat64: return "f64";
  }
  return "invalid";
}

size_t GgufArray::size() const {
  switch (element_type) {
    case GgufValueType::kUint8:
    case GgufValueType::kBool: return u8.size();
    case GgufValueType::kInt8: return i8.size();
    case GgufValueType::kUint16: return u16.size();
    case GgufValueType::kInt16: return i16.size();
    case GgufValueType::kUint32: return u32.size();
    case GgufValueType::kInt32: return i32.size();
    case GgufValueType::kFloat32: return f32.size();
    case GgufValueType::kUint64: return u64.size();
    case GgufValueType::kInt64: return i64.size();
    case GgufValueType::kFloat64: return f64.size();
    case GgufValueType::kString: return strings.size();
    case GgufValueType::kArray: return arrays.size();
  }
  return 0;
}

bool operator==(const GgufArray& a, const GgufArray& b) {
  return a.element_type == b.element_type && a.u8 == b.u8 && a.i8 == b.i8 && a.u16 == b.u16 &&
         a.i16 == b.i16 && a.u32 == b.u32 && a.i32 == b.i32 && a.f32 == b.f32 && a.u64 == b.u64 &&
         a.i64 == b.i64 && a.f64 == b.f64 && a.strings == b.strings && a.arrays == b.arrays;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::ErrnoToStatus(err, msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    return absl::ErrnoToStatus(err, absl::StrCat(path, ": cannot stat"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  f->size_ = static_cast<uint64_t>(st.st_size);
  if (f->size_ > 0) {
    void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::ErrnoToStatus(err, absl::StrCat(path, ": cannot mmap ", f->size_, " bytes"));
    }
    f->mapping_ = m;
    f->data_ = static_cast<const uint8_t*>(m);
  }
  ::close(fd);  // the mapping keeps the file alive
  RETURN_IF_ERROR(f->Parse());
  return f;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBytes(std::string bytes, std::string name) {
  std::unique_ptr<GgufFile> f(new GgufFile());
  f->path_ = std::move(name);
  f->owned_bytes_ = std::move(bytes);
  f->data_ = reinterpret_cast<const uint8_t*>(f->owned_bytes_.data());
  f->size_ = f->owned_bytes_.size();
  RETURN_IF_ERROR(f->Parse());
  return f;
}

GgufFile::~GgufFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

absl::Status GgufFile::Parse() {
  Cursor c(data_, size_, path_);
  ASSIGN_OR_RETURN(const FileHeader header, ReadHeader(c));
  version_ = header.version;

  // Entries are much larger in memory than their 13-byte minimum on disk, so the
  // up-front reservation is capped; a real entry count grows the vectors as it is read.
  metadata_.reserve(std::min<uint64_t>(header.n_kv, kMaxReserve));
  key_index_.reserve(std::min<uint64_t>(header.n_kv, kMaxReserve));
  for (uint64_t i = 0; i < header.n_kv; ++i) {
    const uint64_t entry_at = c.pos();
    ASSIGN_OR_RETURN(GgufMetadataEntry entry, ReadMetadataEntry(c, i));
    RETURN_IF_ERROR(AddMetadata(std::move(entry), entry_at));
  }
  RETURN_IF_ERROR(ApplyAlignmentKey());

  RETURN_IF_ERROR(c.CheckCount("tensor", header.n_tensors, fmt::kMinTensorInfoSize));
  tensors_.reserve(std::min<uint64_t>(header.n_tensors, kMaxReserve));
  tensor_index_.reserve(std::min<uint64_t>(header.n_tensors, kMaxReserve));
  for (uint64_t i = 0; i < header.n_tensors; ++i) {
    const uint64_t info_at = c.pos();
    ASSIGN_OR_RETURN(GgufTensorInfo t, ReadTensorInfo(c, i, alignment_));
    RETURN_IF_ERROR(AddTensor(std::move(t), info_at));
  }

  // Tensor data: starts at the aligned end of the infos. A tensor-less file (a
  // vocab-only GGUF) may end before that point.
  data_offset_ = fmt::AlignUp(c.pos(), alignment_);
  return CheckTensorData();
}

absl::Status GgufFile::AddMetadata(GgufMetadataEntry entry, uint64_t entry_at) {
  if (!key_index_.emplace(entry.key, metadata_.size()).second) {
    return absl::DataLossError(absl::StrCat(path_, ": duplicate key '", entry.key,
                                            "' at byte offset ", entry_at));
  }
  metadata_.push_back(std::move(entry));
  return absl::OkStatus();
}

absl::Status GgufFile::ApplyAlignmentKey() {
  const GgufMetadataEntry* e = FindKey(fmt::kAlignmentKey);
  if (e == nullptr) return absl::OkStatus();
  const uint32_t* a = std::get_if<uint32_t>(&e->value);
  if (a == nullptr) {
    return absl::DataLossError(absl::StrCat(path_, ": key '", fmt::kAlignmentKey, "' has type ",
                                            GgufValueTypeName(e->type), ", expected u32"));
  }
  if (!fmt::IsPowerOfTwo(*a)) {
    return absl::DataLossError(absl::StrCat(path_, ": key '", fmt::kAlignmentKey, "' is ", *a,
                                            ", not a nonzero power of two"));
  }
  alignment_ = *a;
  return absl::OkStatus();
}

absl::Status GgufFile::AddTensor(GgufTensorInfo info, uint64_t info_at) {
  if (!tensor_index_.emplace(info.name, tensors_.size()).second) {
    return absl::DataLossError(absl::StrCat(path_, ": duplicate tensor name '", info.name,
                                            "' at byte offset ", info_at));
  }
  tensors_.push_back(std::move(info));
  return absl::OkStatus();
}

absl::Status GgufFile::CheckTensorData() const {
  const uint64_t data_size = size_ >= data_offset_ ? size_ - data_offset_ : 0;
  for (const GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.byte_size > data_size - t.offset) {
      return absl::DataLossError(absl::StrCat(
          path_, ": tensor '", t.name, "' data [", data_offset_ + t.offset, ", +", t.byte_size,
          ") at byte offset ", data_offset_ + t.offset, " runs past the end of the file (",
          size_, " bytes)"));
    }
  }
  std::vector<const GgufTensorInfo*> by_offset;
  by_offset.reserve(tensors_.size());
  for (const GgufTensorInfo& t : tensors_) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& prev = *by_offset[i - 1];
    const GgufTensorInfo& cur = *by_offset[i];
    if (prev.offset + prev.byte_size > cur.offset) {
      return absl::DataLossError(absl::StrCat(
          path_, ": tensors '", prev.name, "' [", prev.offset, ", ", prev.offset + prev.byte_size,
          ") and '", cur.name, "' [", cur.offset, ", ", cur.offset + cur.byte_size,
          ") overlap (offsets relative to the data section at byte offset ", data_offset_, ")"));
    }
  }
  return absl::OkStatus();
}

const GgufMetadataEntry* GgufFile::FindKey(absl::string_view key) const {
  auto it = key_index_.find(key);
  return it == key_index_.end() ? nullptr : &metadata_[it->second];
}

const GgufTensorInfo* GgufFile::FindTensor(absl::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const uint8_t* GgufFile::TensorData(const GgufTensorInfo& info) const {
  if (tensor_base_ != nullptr) {
    auto it = tensor_index_.find(info.name);
    if (it != tensor_index_.end()) return tensor_base_ + copy_offsets_[it->second];
  }
  return data_ + data_offset_ + info.offset;
}

void GgufFile::RelocateTensorData(const uint8_t* base, std::vector<uint64_t> copy_offsets) {
  tensor_base_ = base;
  copy_offsets_ = std::move(copy_offsets);
  copy_offsets_.resize(tensors_.size(), 0);
}

void GgufFile::ReleaseMappedPages(uint64_t begin, uint64_t end) const {
  if (mapping_ == nullptr || begin >= end || end > size_) return;
  const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
  const uint64_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (first >= last) return;
  // Advice on a read-only private file mapping: the pages are still the file's.
  (void)::madvise(static_cast<uint8_t*>(mapping_) + first, last - first, MADV_DONTNEED);
}

namespace {

absl::Status MissingKey(const std::string& path, absl::string_view key) {
  return absl::NotFoundError(absl::StrCat(path, ": key '", key, "' not found"));
}

absl::Status WrongType(const std::string& path, const GgufMetadataEntry& e, absl::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": key '", e.key, "' has type ",
                                                 GgufValueTypeName(e.type), ", expected ", want));
}

absl::Status WrongArrayType(const std::string& path, const GgufMetadataEntry& e,
                            absl::string_view want) {
  const auto& a = std::get<GgufArray>(e.value);
  return absl::InvalidArgumentError(absl::StrCat(path, ": key '", e.key, "' is an array of ",
                                                 GgufValueTypeName(a.element_type),
                                                 ", expected an array of ", want));
}

}  // namespace

absl::StatusOr<std::string> GgufFile::GetString(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  const auto* s = std::get_if<absl::string_view>(&e->value);
  if (s == nullptr) return WrongType(path_, *e, "string");
  return std::string(*s);
}

absl::StatusOr<uint32_t> GgufFile::GetUint32(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  std::optional<WideInt> w = AsWideInt(e->value);
  if (!w) return WrongType(path_, *e, "an integer");
  if (w->negative || w->magnitude > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": key '", key, "' = ",
                                                   w->negative ? "-" : "", w->magnitude,
                                                   " does not fit in u32"));
  }
  return static_cast<uint32_t>(w->magnitude);
}

absl::StatusOr<int64_t> GgufFile::GetInt64(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  std::optional<WideInt> w = AsWideInt(e->value);
  if (!w) return WrongType(path_, *e, "an integer");
  if (!w->negative) {
    if (w->magnitude > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path_, ": key '", key, "' = ", w->magnitude, " does not fit in i64"));
    }
    return static_cast<int64_t>(w->magnitude);
  }
  // Negative values come only from signed types of at most 64 bits, so they fit.
  return -static_cast<int64_t>(w->magnitude - 1) - 1;
}

absl::StatusOr<float> GgufFile::GetFloat32(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  if (const auto* f = std::get_if<float>(&e->value)) return *f;
  if (const auto* d = std::get_if<double>(&e->value)) return static_cast<float>(*d);
  return WrongType(path_, *e, "f32 or f64");
}

absl::StatusOr<bool> GgufFile::GetBool(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  const auto* b = std::get_if<bool>(&e->value);
  if (b == nullptr) return WrongType(path_, *e, "bool");
  return *b;
}

absl::StatusOr<const GgufArray*> GgufFile::GetArray(absl::string_view key) const {
  const GgufMetadataEntry* e = FindKey(key);
  if (e == nullptr) return MissingKey(path_, key);
  const auto* a = std::get_if<GgufArray>(&e->value);
  if (a == nullptr) return WrongType(path_, *e, "array");
  return a;
}

absl::StatusOr<absl::Span<const absl::string_view>> GgufFile::GetStringArray(
    absl::string_view key) const {
  ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (a->element_type != GgufValueType::kString) return WrongArrayType(path_, *FindKey(key), "string");
  return absl::MakeConstSpan(a->strings);
}

absl::StatusOr<absl::Span<const float>> GgufFile::GetFloat32Array(absl::string_view key) const {
  ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (a->element_type != GgufValueType::kFloat32) return WrongArrayType(path_, *FindKey(key), "f32");
  return absl::MakeConstSpan(a->f32);
}

absl::StatusOr<absl::Span<const int32_t>> GgufFile::GetInt32Array(absl::string_view key) const {
  ASSIGN_OR_RETURN(const GgufArray* a, GetArray(key));
  if (a->element_type != GgufValueType::kInt32) return WrongArrayType(path_, *FindKey(key), "i32");
  return absl::MakeConstSpan(a->i32);
}

}  // namespace bitparity

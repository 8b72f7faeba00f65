#include "engine/gguf/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_format.h"

namespace bitparity {
namespace {

namespace fmt = gguf_format;

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "GGUF is little-endian; this writer assumes a little-endian host"
#endif

constexpr size_t kMaxTensorName = 64;  // GGML_MAX_NAME, including the terminator
constexpr size_t kFileBuffer = 4 << 20;

template <typename T>
void Put(std::string* out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

void PutString(std::string* out, absl::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s.data(), s.size());
}

template <typename T>
void PutVector(std::string* out, const std::vector<T>& v) {
  if (!v.empty()) out->append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

absl::Status PutArray(std::string* out, const GgufArray& a, int depth) {
  if (depth > fmt::kMaxArrayNesting) {
    return absl::InvalidArgumentError(
        absl::StrCat("arrays nested deeper than ", fmt::kMaxArrayNesting));
  }
  Put<uint32_t>(out, static_cast<uint32_t>(a.element_type));
  Put<uint64_t>(out, a.size());
  switch (a.element_type) {
    case GgufValueType::kUint8: PutVector(out, a.u8); break;
    case GgufValueType::kBool:
      for (uint8_t b : a.u8) Put<uint8_t>(out, b != 0);
      break;
    case GgufValueType::kInt8: PutVector(out, a.i8); break;
    case GgufValueType::kUint16: PutVector(out, a.u16); break;
    case GgufValueType::kInt16: PutVector(out, a.i16); break;
    case GgufValueType::kUint32: PutVector(out, a.u32); break;
    case GgufValueType::kInt32: PutVector(out, a.i32); break;
    case GgufValueType::kFloat32: PutVector(out, a.f32); break;
    case GgufValueType::kUint64: PutVector(out, a.u64); break;
    case GgufValueType::kInt64: PutVector(out, a.i64); break;
    case GgufValueType::kFloat64: PutVector(out, a.f64); break;
    case GgufValueType::kString:
      for (absl::string_view s : a.strings) PutString(out, s);
      break;
    case GgufValueType::kArray:
      for (const GgufArray& inner : a.arrays) RETURN_IF_ERROR(PutArray(out, inner, depth + 1));
      break;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "invalid array element type ", static_cast<uint32_t>(a.element_type)));
  }
  return absl::OkStatus();
}

}  // namespace

GgufWriter::~GgufWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_path_.c_str());
  }
}

absl::Status GgufWriter::StartKey(absl::string_view key, GgufValueType type) {
  if (phase_ != Phase::kDeclaring) {
    return absl::FailedPreconditionError(
        absl::StrCat("metadata key '", key, "' added after the header was written"));
  }
  if (!keys_.insert(std::string(key)).second) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate metadata key '", key, "'"));
  }
  PutString(&kv_bytes_, key);
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(type));
  ++n_kv_;
  return absl::OkStatus();
}

#define BP_GGUF_SCALAR_ADDER(Name, CType, Enum)                      \
  absl::Status GgufWriter::Name(absl::string_view key, CType v) {    \
    RETURN_IF_ERROR(StartKey(key, GgufValueType::Enum));             \
    Put<CType>(&kv_bytes_, v);                                       \
    return absl::OkStatus();                                         \
  }
BP_GGUF_SCALAR_ADDER(AddUint8, uint8_t, kUint8)
BP_GGUF_SCALAR_ADDER(AddInt8, int8_t, kInt8)
BP_GGUF_SCALAR_ADDER(AddUint16, uint16_t, kUint16)
BP_GGUF_SCALAR_ADDER(AddInt16, int16_t, kInt16)
BP_GGUF_SCALAR_ADDER(AddUint32, uint32_t, kUint32)
BP_GGUF_SCALAR_ADDER(AddInt32, int32_t, kInt32)
BP_GGUF_SCALAR_ADDER(AddFloat32, float, kFloat32)
BP_GGUF_SCALAR_ADDER(AddUint64, uint64_t, kUint64)
BP_GGUF_SCALAR_ADDER(AddInt64, int64_t, kInt64)
BP_GGUF_SCALAR_ADDER(AddFloat64, double, kFloat64)
#undef BP_GGUF_SCALAR_ADDER

absl::Status GgufWriter::AddBool(absl::string_view key, bool v) {
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kBool));
  Put<uint8_t>(&kv_bytes_, v ? 1 : 0);
  return absl::OkStatus();
}

absl::Status GgufWriter::AddString(absl::string_view key, absl::string_view v) {
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kString));
  PutString(&kv_bytes_, v);
  return absl::OkStatus();
}

absl::Status GgufWriter::AddArray(absl::string_view key, const GgufArray& v) {
  // Serialize first so that a bad array leaves no half-written entry behind.
  std::string body;
  RETURN_IF_ERROR(PutArray(&body, v, 1));
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kArray));
  kv_bytes_ += body;
  return absl::OkStatus();
}

absl::Status GgufWriter::AddStringArray(absl::string_view key, absl::Span<const std::string> v) {
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kArray));
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufValueType::kString));
  Put<uint64_t>(&kv_bytes_, v.size());
  for (const std::string& s : v) PutString(&kv_bytes_, s);
  return absl::OkStatus();
}

absl::Status GgufWriter::AddInt32Array(absl::string_view key, absl::Span<const int32_t> v) {
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kArray));
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufValueType::kInt32));
  Put<uint64_t>(&kv_bytes_, v.size());
  if (!v.empty()) kv_bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  return absl::OkStatus();
}

absl::Status GgufWriter::AddFloat32Array(absl::string_view key, absl::Span<const float> v) {
  RETURN_IF_ERROR(StartKey(key, GgufValueType::kArray));
  Put<uint32_t>(&kv_bytes_, static_cast<uint32_t>(GgufValueType::kFloat32));
  Put<uint64_t>(&kv_bytes_, v.size());
  if (!v.empty()) kv_bytes_.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
  return absl::OkStatus();
}

absl::Status GgufWriter::AddValue(absl::string_view key, const GgufValue& v) {
  struct Visitor {
    GgufWriter* w;
    absl::string_view key;
    absl::Status operator()(uint8_t x) const { return w->AddUint8(key, x); }
    absl::Status operator()(int8_t x) const { return w->AddInt8(key, x); }
    absl::Status operator()(uint16_t x) const { return w->AddUint16(key, x); }
    absl::Status operator()(int16_t x) const { return w->AddInt16(key, x); }
    absl::Status operator()(uint32_t x) const { return w->AddUint32(key, x); }
    absl::Status operator()(int32_t x) const { return w->AddInt32(key, x); }
    absl::Status operator()(float x) const { return w->AddFloat32(key, x); }
    absl::Status operator()(bool x) const { return w->AddBool(key, x); }
    absl::Status operator()(absl::string_view x) const { return w->AddString(key, x); }
    absl::Status operator()(uint64_t x) const { return w->AddUint64(key, x); }
    absl::Status operator()(int64_t x) const { return w->AddInt64(key, x); }
    absl::Status operator()(double x) const { return w->AddFloat64(key, x); }
    absl::Status operator()(const GgufArray& x) const { return w->AddArray(key, x); }
  };
  return std::visit(Visitor{this, key}, v);
}

absl::Status GgufWriter::SetAlignment(uint32_t alignment) {
  if (!tensors_.empty()) {
    return absl::FailedPreconditionError("alignment set after the first tensor was declared");
  }
  if (!fmt::IsPowerOfTwo(alignment)) {
    return absl::InvalidArgumentError(
        absl::StrCat("alignment ", alignment, " is not a nonzero power of two"));
  }
  RETURN_IF_ERROR(AddUint32(fmt::kAlignmentKey, alignment));
  alignment_ = alignment;
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensor(absl::string_view name, GgmlType type,
                                   absl::Span<const int64_t> ne) {
  if (phase_ != Phase::kDeclaring) {
    return absl::FailedPreconditionError(
        absl::StrCat("tensor '", name, "' declared after the header was written"));
  }
  if (name.size() >= kMaxTensorName) {
    return absl::InvalidArgumentError(absl::StrCat("tensor name '", name, "' is ", name.size(),
                                                   " bytes; ggml allows at most ",
                                                   kMaxTensorName - 1));
  }
  if (ne.empty() || ne.size() > fmt::kMaxDims) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has ", ne.size(),
                                                   " dimensions, expected 1..", fmt::kMaxDims));
  }
  if (FindGgmlTypeTraits(static_cast<uint32_t>(type)) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' has unknown type ",
                                                   static_cast<uint32_t>(type)));
  }
  absl::StatusOr<uint64_t> size = TensorByteSize(type, ne);
  if (!size.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor '", name, "': ", size.status().message()));
  }
  if (tensor_names_.contains(name)) {
    return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name '", name, "'"));
  }
  tensor_names_.insert(std::string(name));
  const uint64_t offset = fmt::AlignUp(data_size_, alignment_);
  tensors_.push_back({std::string(name), type, std::vector<int64_t>(ne.begin(), ne.end()), offset,
                      *size});
  data_size_ = offset + *size;
  return absl::OkStatus();
}

std::string GgufWriter::HeaderBytes() const {
  std::string out;
  Put<uint32_t>(&out, fmt::kMagic);
  Put<uint32_t>(&out, fmt::kMaxVersion);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, n_kv_);
  out += kv_bytes_;
  for (const Tensor& t : tensors_) {
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.ne.size()));
    for (int64_t d : t.ne) Put<int64_t>(&out, d);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&out, t.offset);
  }
  out.resize(fmt::AlignUp(out.size(), alignment_), '\0');
  return out;
}

uint64_t GgufWriter::data_offset() const {
  uint64_t n = fmt::kHeaderSize + kv_bytes_.size();
  for (const Tensor& t : tensors_) {
    n += fmt::kMinStringSize + t.name.size() + 4 + 8 * t.ne.size() + fmt::kTypeSize + 8;
  }
  return fmt::AlignUp(n, alignment_);
}

uint64_t GgufWriter::file_size() const {
  return data_offset() + fmt::AlignUp(data_size_, alignment_);
}

absl::Status GgufWriter::IoError(absl::string_view what) {
  const int err = errno;
  return absl::ErrnoToStatus(err, absl::StrCat(tmp_path_, ": ", what));
}

absl::Status GgufWriter::WriteRaw(const void* data, size_t n) {
  if (n != 0 && std::fwrite(data, 1, n, file_) != n) return IoError("write failed");
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteZeros(uint64_t n) {
  static const char kZeros[256] = {};
  while (n > 0) {
    const size_t k = n < sizeof(kZeros) ? static_cast<size_t>(n) : sizeof(kZeros);
    RETURN_IF_ERROR(WriteRaw(kZeros, k));
    n -= k;
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Open(const std::string& path) {
  if (phase_ != Phase::kDeclaring) return absl::FailedPreconditionError("writer already opened");
  path_ = path;
  tmp_path_ = path + ".tmp";
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) return IoError("cannot create");
  std::setvbuf(file_, nullptr, _IOFBF, kFileBuffer);
  phase_ = Phase::kWriting;
  const std::string header = HeaderBytes();
  RETURN_IF_ERROR(WriteRaw(header.data(), header.size()));
  current_ = 0;
  current_written_ = 0;
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteTensorData(absl::Span<const uint8_t> bytes) {
  if (phase_ != Phase::kWriting) {
    return absl::FailedPreconditionError("tensor data written before Open() or after Finish()");
  }
  while (!bytes.empty()) {
    if (current_ >= tensors_.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(bytes.size(), " bytes written past the last tensor"));
    }
    const Tensor& t = tensors_[current_];
    const uint64_t room = t.byte_size - current_written_;
    const size_t n = bytes.size() < room ? bytes.size() : static_cast<size_t>(room);
    RETURN_IF_ERROR(WriteRaw(bytes.data(), n));
    bytes.remove_prefix(n);
    current_written_ += n;
    if (current_written_ == t.byte_size) {
      // Pad up to where the next tensor (or the end of the data section) starts.
      const uint64_t end = t.offset + t.byte_size;
      const uint64_t next =
          current_ + 1 < tensors_.size() ? tensors_[current_ + 1].offset : fmt::AlignUp(end, alignment_);
      RETURN_IF_ERROR(WriteZeros(next - end));
      ++current_;
      current_written_ = 0;
    }
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::WriteTensor(absl::string_view name, absl::Span<const uint8_t> bytes) {
  if (phase_ != Phase::kWriting) {
    return absl::FailedPreconditionError("tensor data written before Open() or after Finish()");
  }
  if (current_ >= tensors_.size() || current_written_ != 0 || tensors_[current_].name != name) {
    return absl::FailedPreconditionError(absl::StrCat(
        "tensor '", name, "' written out of order; next is '",
        current_ < tensors_.size() ? tensors_[current_].name : std::string("<none>"), "'"));
  }
  if (bytes.size() != tensors_[current_].byte_size) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", name, "' needs ",
                                                   tensors_[current_].byte_size, " bytes, got ",
                                                   bytes.size()));
  }
  return WriteTensorData(bytes);
}

absl::Status GgufWriter::Finish() {
  if (phase_ != Phase::kWriting) return absl::FailedPreconditionError("Finish() without Open()");
  if (current_ != tensors_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("Finish() with tensor data missing: tensor '", tensors_[current_].name,
                     "' has ", current_written_, " of ", tensors_[current_].byte_size, " bytes"));
  }
  std::FILE* f = file_;
  file_ = nullptr;
  const bool write_ok = std::fflush(f) == 0;
  const int write_errno = errno;
  if (std::fclose(f) != 0 || !write_ok) {
    if (write_ok == false) errno = write_errno;
    absl::Status s = IoError("flush/close failed");
    std::remove(tmp_path_.c_str());
    return s;
  }
  if (std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    absl::Status s = IoError(absl::StrCat("cannot rename to ", path_));
    std::remove(tmp_path_.c_str());
    return s;
  }
  phase_ = Phase::kFinished;
  return absl::OkStatus();
}

}  // namespace bitparity

// File: fuzz/gguf_fuzzer.cc
//
// libFuzzer target for the GGUF reader (engine/gguf): any byte string given to
// GgufFile::FromBytes either fails with a status or yields a file whose every
// metadata value and tensor can be read back through the public getters without
// leaving the buffer (ASan checks the bounds; the asserts below check the
// reader's own promises: tensors inside the data section, aligned, sized as
// their type says).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/gguf/gguf_reader.h"

namespace {

// A broken invariant is a finding, like a sanitizer report.
[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "gguf_fuzzer: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using bitparity::GgufFile;
  auto file = GgufFile::FromBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!file.ok()) {
    if (file.status().message().empty()) Fail("error without a message");
    return 0;
  }
  const GgufFile& f = **file;
  if (f.file_size() != size) Fail("file_size differs from the input size");
  // A tensor-less file may end before the (aligned) data offset; see Parse().
  if (!f.tensors().empty() && f.data_offset() > size) {
    for (const auto& t : f.tensors()) {
      if (t.byte_size > 0) Fail("tensor bytes but the data section starts past the end");
    }
  }
  if (f.alignment() == 0) Fail("zero alignment");

  // Every key through every getter: each either fails with a status or returns a value
  // that points into memory ASan lets us read.
  volatile uint64_t sink = 0;
  for (const auto& e : f.metadata()) {
    if (f.FindKey(e.key) == nullptr) Fail("listed key not found");
    if (auto s = f.GetString(e.key); s.ok()) sink += s->size();
    if (auto v = f.GetUint32(e.key); v.ok()) sink += *v;
    if (auto v = f.GetInt64(e.key); v.ok()) sink += static_cast<uint64_t>(*v);
    if (auto v = f.GetFloat32(e.key); v.ok()) sink += static_cast<uint64_t>(*v != 0.0f);
    if (auto v = f.GetBool(e.key); v.ok()) sink += *v;
    if (auto a = f.GetStringArray(e.key); a.ok()) {
      for (absl::string_view s : *a) sink += s.empty() ? 0 : static_cast<uint8_t>(s.back());
    }
    if (auto a = f.GetFloat32Array(e.key); a.ok()) {
      for (float x : *a) sink += static_cast<uint64_t>(x == x);
    }
    if (auto a = f.GetInt32Array(e.key); a.ok()) {
      for (int32_t x : *a) sink += static_cast<uint32_t>(x);
    }
    (void)f.GetArray(e.key);
  }
  for (const auto& t : f.tensors()) {
    if (f.FindTensor(t.name) == nullptr) Fail("listed tensor not found");
    if (t.offset % f.alignment() != 0) Fail("unaligned tensor offset");
    if (t.byte_size == 0) continue;
    if (t.offset > size - f.data_offset() || t.byte_size > size - f.data_offset() - t.offset) {
      Fail("tensor data outside the file");
    }
    const uint8_t* p = f.TensorData(t);
    sink += p[0] + p[t.byte_size - 1];
  }
  (void)sink;
  return 0;
}

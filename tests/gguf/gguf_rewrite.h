// File: tests/gguf/gguf_rewrite.h
//
// Writes a copy of a GGUF file with deliberate edits, for tests that need one defect
// in an otherwise real model (the lint and override tests): keys dropped or set, and
// tensors retyped or reshaped. Tensors whose type and shape are kept keep their bytes;
// an edited tensor gets zeros of its new size.
//
//   GgufEdits e;
//   e.drop_keys = {"tokenizer.ggml.pre"};
//   ASSERT_OK(RewriteGguf(FixturePath("models/tiny-b158-l3.gguf"), tmp, e));
#pragma once

#include <functional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/gguf/gguf_writer.h"

namespace bitparity::testing {

struct GgufEdits {
  std::set<std::string> drop_keys;
  // Replaces the key's entry (any type) or adds it at the end.
  std::vector<std::pair<std::string, GgufValue>> set_keys;
  // Called for every tensor; may change its type and shape.
  std::function<void(const std::string& name, GgmlType* type, std::vector<int64_t>* ne)> tensor;
};

inline absl::Status RewriteGguf(const std::string& src, const std::string& dst, const GgufEdits& e) {
  ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> in, GgufFile::Open(src));
  GgufWriter w;
  std::set<std::string> set_done;
  RETURN_IF_ERROR(w.SetAlignment(static_cast<uint32_t>(in->alignment())));
  for (const GgufMetadataEntry& m : in->metadata()) {
    if (m.key == "general.alignment" || e.drop_keys.count(m.key) > 0) continue;
    const GgufValue* value = &m.value;
    for (const auto& [k, v] : e.set_keys) {
      if (k == m.key) value = &v;
    }
    if (value != &m.value) set_done.insert(m.key);
    RETURN_IF_ERROR(w.AddValue(m.key, *value));
  }
  for (const auto& [k, v] : e.set_keys) {
    if (set_done.count(k) == 0) RETURN_IF_ERROR(w.AddValue(k, v));
  }
  struct Out {
    const GgufTensorInfo* in;
    bool same;
    uint64_t bytes;
  };
  std::vector<Out> outs;
  for (const GgufTensorInfo& t : in->tensors()) {
    GgmlType type = t.type;
    std::vector<int64_t> ne = t.ne;
    if (e.tensor) e.tensor(t.name, &type, &ne);
    RETURN_IF_ERROR(w.AddTensor(t.name, type, ne));
    ASSIGN_OR_RETURN(uint64_t bytes, TensorByteSize(type, ne));
    outs.push_back({&t, type == t.type && ne == t.ne, bytes});
  }
  RETURN_IF_ERROR(w.Open(dst));
  for (const Out& o : outs) {
    if (o.same) {
      RETURN_IF_ERROR(w.WriteTensor(o.in->name, absl::MakeConstSpan(in->TensorData(*o.in), o.bytes)));
    } else {
      const std::vector<uint8_t> zeros(o.bytes, 0);
      RETURN_IF_ERROR(w.WriteTensor(o.in->name, zeros));
    }
  }
  return w.Finish();
}

}  // namespace bitparity::testing

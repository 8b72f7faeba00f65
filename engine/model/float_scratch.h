// File: engine/model/float_scratch.h
//
// A fixed-size float buffer that is NOT zero-filled. A session sizes its activation
// buffers for a 512-token chunk (~50 MB on the 2B-4T shape); a std::vector would write
// every page at construction and keep them all resident. Here the memory comes from
// malloc uninitialised (large blocks are fresh mmap pages), so a page costs RSS only
// once a forward pass writes it: a decode-only session holds a few rows, not 50 MB.
// Every user writes before it reads (the forward pass overwrites whole rows).
#pragma once

#include <cstddef>
#include <memory>

namespace bitparity {

class FloatScratch {
 public:
  explicit FloatScratch(size_t size) : data_(new float[size]), size_(size) {}  // default-init: untouched

  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  size_t size() const { return size_; }
  float& operator[](size_t i) { return data_[i]; }
  const float& operator[](size_t i) const { return data_[i]; }

 private:
  std::unique_ptr<float[]> data_;
  size_t size_;
};

}  // namespace bitparity

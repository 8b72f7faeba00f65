// File: engine/common/huge_page_buffer.h
//
// Anonymous memory asked for in 2 MiB transparent huge pages (madvise MADV_HUGEPAGE).
// Why: streaming a model's weights out of 4 KiB pages costs a TLB miss every 4 KiB,
// and under a hypervisor's nested paging each miss is a two-level walk. On the 2-vCPU
// Zen 4 VM this was written on, one thread read 512 MiB at 27.5 GB/s from 4 KiB pages
// and 33.5 GB/s from huge pages.
//
//   ASSIGN_OR_RETURN(HugePageBuffer buf, HugePageBuffer::Allocate(n));
//   std::memcpy(buf.data(), src, n);
//
// Whether the kernel really backs the range with huge pages is its choice (THP mode
// "madvise" or "always"; none with "never"): the memory works either way.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace bitparity {

class HugePageBuffer {
 public:
  static constexpr size_t kHugePageBytes = size_t{2} << 20;

  // `bytes` rounded up to whole huge pages, 2 MiB aligned, zero-filled on first touch.
  // ResourceExhausted when the kernel refuses the mapping.
  static absl::StatusOr<HugePageBuffer> Allocate(size_t bytes);

  // The kernel's THP mode from /sys/kernel/mm/transparent_hugepage/enabled
  // ("always", "madvise", "never"), or "unknown" where that file is missing.
  static std::string TransparentHugePageMode();

  HugePageBuffer() = default;
  HugePageBuffer(HugePageBuffer&& other) noexcept;
  HugePageBuffer& operator=(HugePageBuffer&& other) noexcept;
  HugePageBuffer(const HugePageBuffer&) = delete;
  HugePageBuffer& operator=(const HugePageBuffer&) = delete;
  ~HugePageBuffer();

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;  // mapped bytes
};

}  // namespace bitparity

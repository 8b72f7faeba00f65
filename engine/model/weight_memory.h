// File: engine/model/weight_memory.h
//
// Where a loaded model's tensor bytes live while it runs.
//   kHugePages  copied at load into anonymous 2 MiB transparent huge pages (the
//               default). Decode streams every weight once per token; from 4 KiB file
//               pages each 4 KiB costs a TLB miss (a nested walk under a hypervisor).
//               Costs: the copy at load (~0.1 s per GB), and processes that load the
//               same file no longer share its page-cache pages.
//   kMmap       used in place inside the read-only file mapping, shared through the
//               page cache by every process that maps the file.
// kHugePages falls back to kMmap where the kernel's THP mode is "never" (a copy
// would then only cost), and for files not read through a mapping.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/common/huge_page_buffer.h"
#include "engine/gguf/gguf_reader.h"
#include "engine/runtime/thread_pool.h"

namespace bitparity {

enum class WeightMemory { kHugePages, kMmap };

// "hugepages" | "mmap" -> mode; InvalidArgument otherwise.
absl::StatusOr<WeightMemory> ParseWeightMemory(std::string_view name);
const char* WeightMemoryName(WeightMemory mode);

// Copies `file`'s tensors into huge pages on `pool`'s threads, each starting on a
// 64-byte cache line, and points the file's TensorData() at the copy, which the caller
// must keep alive. The mapping's
// pages are released chunk by chunk as they are copied, so peak RSS stays near one
// copy of the model. Bytes [skip_begin, skip_end) of the section are not copied (their
// pages in the copy stay untouched, so never resident): for a tensor the caller keeps
// reading from the mapping. ResourceExhausted if the memory cannot be mapped.
absl::StatusOr<HugePageBuffer> CopyTensorDataToHugePages(GgufFile& file, ThreadPool& pool, uint64_t skip_begin = 0,
                                                         uint64_t skip_end = 0);

}  // namespace bitparity

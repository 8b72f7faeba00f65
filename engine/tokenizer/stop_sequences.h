// File: engine/tokenizer/stop_sequences.h
//
// Text rules for stop sequences in streamed generation, shared by the native
// engine (engine/model/generate.cc) and the bitnet.cpp worker
// (cpp_ref_adapter/generation_text.cc), so both servers hold back and cut text the
// same way.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace bitparity {

// Length of the longest suffix of `text` that is a proper prefix of some stop
// sequence: that much text must be held back, as it may still become a stop.
// Empty stop sequences are ignored.
size_t HeldBackForStops(const std::string& text, const std::vector<std::string>& stops);

}  // namespace bitparity

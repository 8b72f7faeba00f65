// File: engine/gguf/model_header.h
//
// The lint's view of a GGUF file (base/model_lint.h) read through engine/gguf, so the
// native server and bitnet-run lint the metadata the engine runs with: overrides that
// were applied to the GgufFile are in it.
//
//   std::vector<LintFinding> findings = LintModel(ModelHeaderOf(*file));
#pragma once

#include "base/model_lint.h"
#include "engine/gguf/gguf_reader.h"

namespace bitparity {

ModelHeader ModelHeaderOf(const GgufFile& file);

}  // namespace bitparity

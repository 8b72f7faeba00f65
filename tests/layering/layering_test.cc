// The layering of the parts (tests/layering/include_rules.h) over the real tree,
// and a test of the test: a planted tree with one bad include per rule must fail,
// naming file and line, and the same tree without them must pass.
#include "tests/layering/include_rules.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace bitparity::layering {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(Layering, EveryIncludeInTheTreeKeepsTheLayering) {
  const std::vector<IncludeViolation> found = FindLayeringViolations(BITPARITY_SOURCE_DIR);
  for (const IncludeViolation& v : found) ADD_FAILURE() << Describe(v);
  // The check must have read something: the layered folders exist.
  for (const char* part : {"base", "engine", "services/common", "services/native",
                           "cpp_ref_adapter", "orchestrator"}) {
    EXPECT_TRUE(fs::is_directory(fs::path(BITPARITY_SOURCE_DIR) / part)) << part;
  }
}

class PlantedTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("bp_layering_" + std::to_string(getpid()));
    fs::remove_all(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  void Write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }

  fs::path root_;
};

TEST_F(PlantedTree, CleanTreePasses) {
  Write("base/a.h", "#pragma once\n#include <string>\n#include \"absl/strings/str_cat.h\"\n");
  Write("engine/model/m.cc", "#include \"base/a.h\"\n#include \"engine/model/m.h\"\n");
  Write("services/common/s.cc", "#include \"base/a.h\"\n#include \"bitnet/v1/engine.pb.h\"\n");
  Write("services/native/n.cc", "#include \"engine/model/m.h\"\n#include \"services/common/s.h\"\n");
  Write("cpp_ref_adapter/w.cc", "#include \"services/common/engine_backend.h\"\n");
  Write("orchestrator/o.cc", "#include \"bitnet/v1/engine.grpc.pb.h\"\n#include \"base/a.h\"\n");
  EXPECT_THAT(FindLayeringViolations(root_.string()), ::testing::IsEmpty());
}

TEST_F(PlantedTree, EachBadIncludeIsNamedWithFileAndLine) {
  Write("base/a.h", "#pragma once\n\n#include \"engine/quant/fp16.h\"\n");
  Write("engine/gguf/g.cc", "#include <vector>\n#include <grpcpp/grpcpp.h>\n");
  Write("engine/model/m.cc", "#include \"services/common/conversion.h\"\n");
  Write("services/common/s.cc", "// x\n  #  include \"engine/common/status_macros.h\"\n");
  Write("cpp_ref_adapter/w.cc", "#include \"engine/tokenizer/utf8.h\"\n");
  Write("orchestrator/o.cc", "#include \"services/common/conversion.h\"\n");
  const std::vector<IncludeViolation> found = FindLayeringViolations(root_.string());
  ASSERT_EQ(found.size(), 6u);
  EXPECT_EQ(Describe(found[0]).substr(0, 14), "base/a.h:3: in");
  EXPECT_EQ(found[1].file, "engine/gguf/g.cc");
  EXPECT_EQ(found[1].line, 2);
  EXPECT_EQ(found[1].included, "grpcpp/grpcpp.h");
  EXPECT_EQ(found[2].file, "engine/model/m.cc");
  EXPECT_EQ(found[3].file, "services/common/s.cc");
  EXPECT_EQ(found[3].line, 2);
  EXPECT_THAT(found[3].rule, HasSubstr("never uses the engine"));
  EXPECT_EQ(found[4].file, "cpp_ref_adapter/w.cc");
  EXPECT_THAT(found[4].rule, HasSubstr("never borrows our engine"));
  EXPECT_EQ(found[5].file, "orchestrator/o.cc");
  EXPECT_THAT(Describe(found[5]),
              HasSubstr("orchestrator/o.cc:1: includes \"services/common/conversion.h\""));
}

}  // namespace
}  // namespace bitparity::layering

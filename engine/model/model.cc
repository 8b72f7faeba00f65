#include "engine/model/model.h"

#include <cblas.h>

#include <map>

#include "absl/strings/str_cat.h"
#include "base/sha256.h"
#include "base/status_macros.h"

namespace bitparity {

namespace {

// bitnet.cpp's TL1 / TL2 are lookup-table layouts whose kernels are generated per
// model shape; this engine runs I2_S (and TQ1_0 / TQ2_0), so it says so up front
// instead of failing on the first matrix.
absl::Status RefuseLookupTableTypes(const GgufFile& f) {
  for (const GgufTensorInfo& t : f.tensors()) {
    if (t.type != GgmlType::kTL1 && t.type != GgmlType::kTL2) continue;
    const std::string name = t.type == GgmlType::kTL1 ? "TL1" : "TL2";
    return absl::UnimplementedError(absl::StrCat(
        f.path(), ": tensor '", t.name, "' is ", name, " (bitnet.cpp's ggml type ",
        static_cast<uint32_t>(t.type), "), a per-model lookup-table layout that bitparity's engine "
        "does not run; use an I2_S conversion of the model (python setup_env.py -q i2_s)"));
  }
  return absl::OkStatus();
}

}  // namespace

Model::~Model() = default;

absl::StatusOr<std::unique_ptr<Model>> Model::Load(const std::string& path, const ModelOptions& options) {
  std::unique_ptr<Model> m(new Model());
  ASSIGN_OR_RETURN(m->file_, GgufFile::Open(path));
  RETURN_IF_ERROR(m->file_->ApplyOverrides(options.metadata_overrides));
  RETURN_IF_ERROR(RefuseLookupTableTypes(*m->file_));
  ASSIGN_OR_RETURN(m->config_, ModelConfig::FromGguf(*m->file_));
  if (options.kernels && !KernelPathSupported(*options.kernels)) {
    return absl::FailedPreconditionError(absl::StrCat("kernel path '", KernelPathName(*options.kernels),
                                                      "' is not supported by this CPU"));
  }
  m->pool_ = std::make_unique<ThreadPool>(options.threads);
  // Bound in the mapping first: a malformed file or option must not cost a copy.
  ASSIGN_OR_RETURN(Weights in_mapping, Weights::Bind(*m->file_, m->config_));
  if (m->file_->HasKey("tokenizer.ggml.model")) {
    ASSIGN_OR_RETURN(m->tokenizer_, Tokenizer::FromGguf(*m->file_));
    if (m->tokenizer_->n_vocab() != m->config_.n_vocab) {
      return absl::DataLossError(absl::StrCat(path, ": the vocabulary has ", m->tokenizer_->n_vocab(),
                                              " tokens but token_embd has ", m->config_.n_vocab, " rows"));
    }
  }
  if (options.fault.active()) {
    if (options.fault.layer >= m->config_.n_layer) {
      return absl::InvalidArgumentError(absl::StrCat("fault ", options.fault.ToString(), " names layer ",
                                                     options.fault.layer, " but the model has ", m->config_.n_layer));
    }
    if (options.fault.kind == FaultInjection::Kind::kFlipRow) {
      const LayerWeights& l = in_mapping.layers[options.fault.layer];
      const WeightMatrix* target = nullptr;
      for (const WeightMatrix* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.gate, &l.up, &l.down}) {
        if (w->name == absl::StrCat("blk.", options.fault.layer, ".", options.fault.tensor, ".weight")) target = w;
      }
      if (target == nullptr || options.fault.row >= target->rows) {
        return absl::InvalidArgumentError(absl::StrCat("fault ", options.fault.ToString(), ": row ", options.fault.row,
                                                       " is outside ", options.fault.tensor, " (",
                                                       target ? target->rows : 0, " rows)"));
      }
    }
    if (options.fault.kind == FaultInjection::Kind::kSkipSubNorm && !m->config_.has_sub_norms) {
      return absl::InvalidArgumentError("fault skip-sub-norm needs a BitNet model (this one has no sub-norms)");
    }
  }
  m->fault_ = options.fault;
  m->kernels_ = options.kernels ? &KernelsFor(*options.kernels) : &GetKernels();
  // Our pool already splits the work; OpenBLAS threads on top would oversubscribe.
  openblas_set_num_threads(1);
  // The int8 (or screened) head is quantized from the mapping before anything is
  // copied, and the float head stays there (read again only by the embedding lookup,
  // and by the screened head's candidate rows and fallbacks), so its pages and the
  // other weights are never resident at the same time.
  const GgufTensorInfo* head_info = m->file_->FindTensor(in_mapping.output.name);
  if (options.head == HeadMode::kInt8) {
    ASSIGN_OR_RETURN(Int8Head head, Int8Head::Quantize(in_mapping.output, *m->pool_));
    m->int8_head_ = std::make_unique<Int8Head>(std::move(head));
  } else if (options.head == HeadMode::kScreened && in_mapping.output.type == GgmlType::kF16 &&
             in_mapping.output.cols <= 65536) {
    ASSIGN_OR_RETURN(ScreenedHead head, ScreenedHead::Build(in_mapping.output, *m->pool_));
    // Candidate rows by pread: faulting them in through the mapping would make the
    // whole F16 head resident over time (screened_head.h).
    RETURN_IF_ERROR(head.ReadRowsFrom(path, m->file_->data_offset() + head_info->offset));
    m->screened_head_ = std::make_unique<ScreenedHead>(std::move(head));
  }
  const bool head_in_mapping = m->int8_head_ != nullptr || m->screened_head_ != nullptr;
  if (head_in_mapping) {
    const uint64_t begin = m->file_->data_offset() + head_info->offset;
    m->file_->ReleaseMappedPages(begin, begin + head_info->byte_size);
  }
  if (options.weight_memory == WeightMemory::kHugePages && HugePageBuffer::TransparentHugePageMode() != "never") {
    uint64_t skip_begin = 0, skip_end = 0;
    if (head_in_mapping) {
      skip_begin = head_info->offset;
      skip_end = head_info->offset + head_info->byte_size;
    }
    ASSIGN_OR_RETURN(m->weight_buffer_, CopyTensorDataToHugePages(*m->file_, *m->pool_, skip_begin, skip_end));
  }
  ASSIGN_OR_RETURN(m->weights_, Weights::Bind(*m->file_, m->config_));
  if (head_in_mapping) {
    for (WeightMatrix* w : {&m->weights_.output, &m->weights_.token_embd}) {
      if (w->name == in_mapping.output.name) w->data = in_mapping.output.data;
    }
  }
  return m;
}

absl::StatusOr<HeadMode> ParseHeadMode(std::string_view name) {
  if (name == "exact") return HeadMode::kExact;
  if (name == "screened") return HeadMode::kScreened;
  if (name == "int8") return HeadMode::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown output head mode '", std::string(name), "' (want exact, screened or int8)"));
}

const char* HeadModeName(HeadMode mode) {
  switch (mode) {
    case HeadMode::kExact: return "exact";
    case HeadMode::kScreened: return "screened";
    case HeadMode::kInt8: return "int8";
  }
  return "?";
}

int Model::threads() const { return pool_->size(); }

const std::string& Model::Sha256() const {
  std::call_once(sha_once_, [this] {
    // Streamed from the file: hashing through the mapping would leave all of it
    // resident in this process (1.2 GB of RSS on the 2B-4T shape for nothing).
    absl::StatusOr<std::string> streamed = Sha256HexOfFile(file_->path());
    sha256_ = streamed.ok() ? *streamed : Sha256Hex(file_->bytes());
  });
  return sha256_;
}

std::vector<std::pair<std::string, int>> Model::TensorTypeCounts() const {
  std::map<std::string, int> counts;
  for (const GgufTensorInfo& t : file_->tensors()) ++counts[GgmlTypeName(static_cast<uint32_t>(t.type))];
  return {counts.begin(), counts.end()};
}

}  // namespace bitparity

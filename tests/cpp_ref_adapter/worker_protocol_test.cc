// Tests of the worker framing (cpp_ref_adapter/worker_protocol.h) over real
// pipes, and of the message codec: round trips, and damaged input as a case of
// its own (oversized length, truncated header, truncated payload, garbage).
#include "cpp_ref_adapter/worker_protocol.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "gtest/gtest.h"

namespace bitparity::worker {
namespace {

class Pipe {
 public:
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    CloseWrite();
    if (read_fd >= 0) ::close(read_fd);
  }
  void CloseWrite() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
  void WriteRaw(const std::string& bytes) { ASSERT_TRUE(WriteAll(write_fd, bytes).ok()); }
  int read_fd = -1;
  int write_fd = -1;
};

wpb::Request SampleRequest() {
  wpb::Request req;
  req.set_id(42);
  wpb::EvalLogitsRequest* e = req.mutable_eval_logits();
  for (int i = 0; i < 300; ++i) e->add_ids(i * 7);
  e->set_mode(wpb::EVAL_MODE_SEQUENTIAL);
  e->add_rows(0);
  e->add_rows(299);
  return req;
}

TEST(WorkerFrame, HeaderIsLittleEndianPayloadLength) {
  char h[kHeaderSize];
  EncodeFrameHeader(0x01020304u, h);
  EXPECT_EQ(h[0], 0x04);
  EXPECT_EQ(h[1], 0x03);
  EXPECT_EQ(h[2], 0x02);
  EXPECT_EQ(h[3], 0x01);
  auto length = DecodeFrameHeader(h);
  ASSERT_TRUE(length.ok());
  EXPECT_EQ(*length, 0x01020304u);
}

TEST(WorkerFrame, RoundTripsThroughAPipe) {
  Pipe p;
  const wpb::Request sent = SampleRequest();
  ASSERT_TRUE(WriteFrame(p.write_fd, sent).ok());
  wpb::Response hello;
  hello.mutable_hello()->set_protocol_version(kProtocolVersion);
  ASSERT_TRUE(WriteFrame(p.write_fd, hello).ok());
  wpb::Request got;
  ASSERT_TRUE(ReadMessage(p.read_fd, &got).ok());
  EXPECT_EQ(got.SerializeAsString(), sent.SerializeAsString());
  wpb::Response got_hello;
  ASSERT_TRUE(ReadMessage(p.read_fd, &got_hello).ok());
  EXPECT_EQ(got_hello.hello().protocol_version(), kProtocolVersion);
}

TEST(WorkerFrame, EmptyMessageIsAZeroLengthFrame) {
  Pipe p;
  wpb::Request empty;
  auto frame = EncodeFrame(empty);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(*frame, std::string(4, '\0'));
  p.WriteRaw(*frame);
  wpb::Request got;
  EXPECT_TRUE(ReadMessage(p.read_fd, &got).ok());
}

TEST(WorkerFrame, EndOfFileAtFrameBoundaryIsUnavailable) {
  Pipe p;
  p.CloseWrite();
  std::string payload;
  EXPECT_EQ(ReadFrame(p.read_fd, &payload).code(), absl::StatusCode::kUnavailable);
}

TEST(WorkerFrame, RejectsOversizedLengthBeforeAllocating) {
  Pipe p;
  char h[kHeaderSize];
  EncodeFrameHeader(0xFFFFFFF0u, h);  // ~4 GiB: must be refused from the header alone
  p.WriteRaw(std::string(h, kHeaderSize));
  std::string payload;
  absl::Status st = ReadFrame(p.read_fd, &payload);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_NE(st.message().find("4294967280"), std::string::npos) << st;
  EXPECT_EQ(payload.capacity() < 1024, true);
}

TEST(WorkerFrame, RejectsLengthOverACallerLimit) {
  Pipe p;
  char h[kHeaderSize];
  EncodeFrameHeader(101, h);
  p.WriteRaw(std::string(h, kHeaderSize) + std::string(101, 'x'));
  ReadOptions o;
  o.max_payload = 100;
  std::string payload;
  EXPECT_EQ(ReadFrame(p.read_fd, &payload, o).code(), absl::StatusCode::kInvalidArgument);
}

TEST(WorkerFrame, RejectsTruncatedHeader) {
  Pipe p;
  p.WriteRaw(std::string("\x05\x00", 2));
  p.CloseWrite();
  std::string payload;
  absl::Status st = ReadFrame(p.read_fd, &payload);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("2 of 4 header bytes"), std::string::npos) << st;
}

TEST(WorkerFrame, RejectsTruncatedPayload) {
  Pipe p;
  auto frame = EncodeFrame(SampleRequest());
  ASSERT_TRUE(frame.ok());
  p.WriteRaw(frame->substr(0, frame->size() - 10));
  p.CloseWrite();
  wpb::Request got;
  absl::Status st = ReadMessage(p.read_fd, &got);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
  EXPECT_NE(st.message().find("truncated"), std::string::npos) << st;
}

TEST(WorkerFrame, RejectsPayloadThatIsNotTheMessage) {
  Pipe p;
  char h[kHeaderSize];
  EncodeFrameHeader(3, h);
  p.WriteRaw(std::string(h, kHeaderSize) + "\xFF\xFF\xFF");
  wpb::Response got;
  absl::Status st = ReadMessage(p.read_fd, &got);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss) << st;
}

TEST(WorkerFrame, StopAbandonsAWaitingRead) {
  Pipe p;  // nothing is ever written
  int asked = 0;
  ReadOptions o;
  o.poll_ms = 1;
  o.stop = [&] { return ++asked >= 3; };
  std::string payload;
  EXPECT_EQ(ReadFrame(p.read_fd, &payload, o).code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(asked, 3);
}

TEST(WorkerFrame, StopAbandonsAReadEvenWhileFramesKeepArriving) {
  Pipe p;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(WriteFrame(p.write_fd, SampleRequest()).ok());
  ReadOptions o;
  o.stop = [] { return true; };
  std::string payload;
  EXPECT_EQ(ReadFrame(p.read_fd, &payload, o).code(), absl::StatusCode::kCancelled);
}

TEST(WorkerFrame, WriteToAClosedReaderIsUnavailable) {
  ::signal(SIGPIPE, SIG_IGN);
  Pipe p;
  ::close(p.read_fd);
  p.read_fd = -1;
  EXPECT_EQ(WriteFrame(p.write_fd, SampleRequest()).code(), absl::StatusCode::kUnavailable);
}

TEST(WorkerCodec, BackendInfoRoundTrips) {
  BackendInfo in;
  in.engine_name = "bitnet.cpp";
  in.cpu_features = {"AVX2", "FMA"};
  in.build_extra = {{"system_info", "AVX2 = 1"}};
  in.architecture = "bitnet-b1.58";
  in.n_layer = 4;
  in.n_vocab = 50257;
  in.rope_freq_base = 500000.0f;
  in.bos_id = 50256;
  in.add_bos = true;
  in.max_token_bytes = 128;
  in.tensor_types = {{"f16", 1}, {"f32", 17}, {"i2_s", 28}};
  in.threads = 1;
  in.max_context = 512;
  wpb::BackendInfo msg;
  ToProto(in, &msg);
  BackendInfo out = FromProto(msg);
  EXPECT_EQ(out.engine_name, in.engine_name);
  EXPECT_EQ(out.cpu_features, in.cpu_features);
  EXPECT_EQ(out.build_extra, in.build_extra);
  EXPECT_EQ(out.architecture, in.architecture);
  EXPECT_EQ(out.n_vocab, in.n_vocab);
  EXPECT_EQ(out.rope_freq_base, in.rope_freq_base);
  EXPECT_EQ(out.bos_id, in.bos_id);
  EXPECT_EQ(out.add_bos, in.add_bos);
  EXPECT_EQ(out.max_token_bytes, in.max_token_bytes);
  EXPECT_EQ(out.tensor_types, in.tensor_types);
  EXPECT_EQ(out.max_context, in.max_context);
}

TEST(WorkerCodec, GenerationSpecRoundTrips) {
  GenerationSpec in;
  in.max_new_tokens = 33;
  in.sampling.temperature = 0.7f;
  in.sampling.top_k = 40;
  in.sampling.top_p = 0.9f;
  in.sampling.min_p = 0.05f;
  in.sampling.repetition_penalty = 1.1f;
  in.sampling.repetition_window = -1;
  in.sampling.seed = 0x123456789ull;
  in.stop_sequences = {"\n\n", "END"};
  in.stop_token_ids = {2, 3};
  in.ignore_eos = true;
  in.prefill_mode = BackendEvalMode::kSequential;
  in.logprobs_top_n = 5;
  wpb::GenerateRequest msg;
  ToProto(in, &msg);
  GenerationSpec out = FromProto(msg);
  EXPECT_EQ(out.max_new_tokens, 33);
  EXPECT_EQ(out.sampling.temperature, 0.7f);
  EXPECT_EQ(out.sampling.top_k, 40);
  EXPECT_EQ(out.sampling.top_p, 0.9f);
  EXPECT_EQ(out.sampling.min_p, 0.05f);
  EXPECT_EQ(out.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(out.sampling.repetition_window, -1);
  EXPECT_EQ(out.sampling.seed, 0x123456789ull);
  EXPECT_EQ(out.stop_sequences, in.stop_sequences);
  EXPECT_EQ(out.stop_token_ids, in.stop_token_ids);
  EXPECT_TRUE(out.ignore_eos);
  EXPECT_EQ(out.prefill_mode, BackendEvalMode::kSequential);
  EXPECT_EQ(out.logprobs_top_n, 5);
}

TEST(WorkerCodec, ChatTemplateRequestRoundTripsBytes) {
  // Contents are bytes on the pipe: any UTF-8, kept exactly.
  const std::vector<ChatTurn> chat = {{"system", " padded \n"}, {"user", "\xE4\xB8\x96"}};
  wpb::ChatTemplateRequest req;
  ToProto(chat, "llama3", false, &req);
  const std::vector<ChatTurn> back = ChatFromProto(req);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[0].content, " padded \n");
  EXPECT_EQ(back[1].content, "\xE4\xB8\x96");
  EXPECT_EQ(req.chat_template(), "llama3");
  EXPECT_FALSE(req.add_assistant());
}

TEST(WorkerCodec, ChatRenderingKeepsUnrecognisedAndSource) {
  for (ChatTemplateSource source :
       {ChatTemplateSource::kRequest, ChatTemplateSource::kModel, ChatTemplateSource::kDefault}) {
    ChatRendering none;
    none.source = source;
    wpb::ChatTemplateResponse resp;
    ToProto(none, &resp);
    const ChatRendering back = FromProto(resp);
    EXPECT_EQ(back.text, std::nullopt);
    EXPECT_EQ(back.source, source);
  }
  ChatRendering empty;  // recognised, rendered to "" is not "unrecognised"
  empty.text = "";
  wpb::ChatTemplateResponse resp;
  ToProto(empty, &resp);
  EXPECT_EQ(FromProto(resp).text, std::optional<std::string>(""));
}

TEST(WorkerCodec, ErrorFrameKeepsCodeAndMessage) {
  wpb::Error e;
  ToProto(absl::OutOfRangeError("600 tokens do not fit"), &e);
  absl::Status st = FromProto(e);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(st.message(), "600 tokens do not fit");
}

// A worker's error may quote bytes that are not UTF-8 (a path, a vocabulary entry);
// the frame must still parse, with each ill-formed subpart shown as U+FFFD (base/utf8.h).
TEST(WorkerCodec, ErrorFrameWithInvalidUtf8MessageStillParses) {
  wpb::Error e;
  ToProto(absl::DataLossError("bad merge 'a\xff b' in x\xc3"), &e);
  std::string bytes;
  ASSERT_TRUE(e.SerializeToString(&bytes));
  wpb::Error back;
  ASSERT_TRUE(back.ParseFromString(bytes));
  EXPECT_EQ(back.message(), "bad merge 'a\xEF\xBF\xBD b' in x\xEF\xBF\xBD");
  EXPECT_EQ(FromProto(back).code(), absl::StatusCode::kDataLoss);
}

TEST(WorkerCodec, ErrorFrameWithOkOrUnknownCodeIsStillAnError) {
  wpb::Error e;
  e.set_code(0);
  e.set_message("said OK");
  EXPECT_EQ(FromProto(e).code(), absl::StatusCode::kInternal);
  e.set_code(99);
  EXPECT_EQ(FromProto(e).code(), absl::StatusCode::kInternal);
}

TEST(WorkerCodec, OverridesAndLintFindingsRoundTrip) {
  BackendInfo in;
  in.metadata_overrides = {*ParseMetadataOverride("tokenizer.ggml.pre=str:llama-bpe"),
                           *ParseMetadataOverride("llama.rope.freq_base=float:0.1")};
  in.lint_findings = {{LintSeverity::kWarning, "TOKENIZER_PRE_MISSING", "no pre", "--override-kv x"},
                      {LintSeverity::kInfo, "BITNET_CPP_ONLY_TYPE", "i2_s", "none"}};
  wpb::BackendInfo p;
  ToProto(in, &p);
  const BackendInfo out = FromProto(p);
  ASSERT_EQ(out.metadata_overrides.size(), 2u);
  EXPECT_TRUE(out.metadata_overrides[0] == in.metadata_overrides[0]);
  EXPECT_TRUE(out.metadata_overrides[1] == in.metadata_overrides[1]);  // 17 digits: exact
  ASSERT_EQ(out.lint_findings.size(), 2u);
  EXPECT_EQ(out.lint_findings[0].severity, LintSeverity::kWarning);
  EXPECT_EQ(out.lint_findings[1].code, "BITNET_CPP_ONLY_TYPE");
  EXPECT_EQ(out.lint_findings[0].fix, "--override-kv x");
}

TEST(WorkerCodec, FloatsRoundTripBitForBit) {
  const std::vector<float> in = {0.0f, -0.0f, 1.5f, -3.25e-30f, 6.5e30f};
  std::vector<float> out;
  ASSERT_TRUE(BytesToFloats(FloatsToBytes(in), in.size(), &out).ok());
  ASSERT_EQ(out.size(), in.size());
  EXPECT_EQ(std::memcmp(out.data(), in.data(), in.size() * sizeof(float)), 0);
}

TEST(WorkerCodec, RejectsARowOfTheWrongLength) {
  std::vector<float> out;
  EXPECT_EQ(BytesToFloats(std::string(10, '\0'), 3, &out).code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace bitparity::worker

// File: fuzz/worker_frame_fuzzer.cc
//
// libFuzzer target for the worker framing (cpp_ref_adapter/worker_protocol.h): the
// input is a byte stream as it would arrive on a worker's stdin (byte 0 even:
// bitnet.worker.v1.Request frames) or on the supervisor's side of its stdout
// (odd: Response frames). The stream is put in a memfd and read frame by frame
// with ReadMessage until it reports why it stopped. Checked:
//   - the reader ends with Unavailable (clean end at a frame boundary), DataLoss
//     (truncated frame or bad payload) or InvalidArgument (length over the limit),
//     never anything else and never a crash;
//   - it never consumes more frames than the bytes can hold;
//   - every frame it accepts re-encodes (EncodeFrame) to a header DecodeFrameHeader
//     reads back with the payload's length;
//   - the codec turns every accepted Response into engine values without crashing
//     (FromProto on info, errors and tokens; BytesToFloats on logits/residual rows).
// Byte 1 (mod 4) picks the payload limit: 0 -> 1 MiB, else 64 << k bytes, so the
// over-the-limit path is reached with small inputs. (Not kMaxFramePayload: ReadFrame
// sizes the payload buffer from the header before reading, by design, so a header
// near 256 MiB would cost a 256 MiB allocation per input and starve the fuzzer.)
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpp_ref_adapter/worker.pb.h"
#include "cpp_ref_adapter/worker_codec.h"
#include "cpp_ref_adapter/worker_protocol.h"
#include "google/protobuf/stubs/logging.h"

namespace {

namespace wpb = bitnet::worker::v1;
namespace worker = bitparity::worker;

[[noreturn]] void Fail(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "worker_frame_fuzzer: %s %s\n", what, detail.c_str());
  std::abort();
}

constexpr uint32_t kBigLimit = 1u << 20;

void CheckReencodes(const google::protobuf::MessageLite& m) {
  auto frame = worker::EncodeFrame(m);
  if (!frame.ok()) Fail("EncodeFrame of an accepted message failed", frame.status().ToString());
  if (frame->size() < worker::kHeaderSize) Fail("frame shorter than its header");
  auto len = worker::DecodeFrameHeader(frame->data());
  if (!len.ok() || *len != frame->size() - worker::kHeaderSize) Fail("header does not round trip");
}

void UseResponse(const wpb::Response& r) {
  std::vector<float> floats;
  switch (r.kind_case()) {
    case wpb::Response::kInfo:
      (void)bitparity::worker::FromProto(r.info().info());
      break;
    case wpb::Response::kError: {
      absl::Status st = bitparity::worker::FromProto(r.error());
      if (st.ok()) Fail("an Error frame decoded as OK");
      break;
    }
    case wpb::Response::kToken:
      (void)bitparity::worker::FromProto(r.token());
      break;
    case wpb::Response::kLogitsRow: {
      const std::string& b = r.logits_row().logits_f32le();
      (void)bitparity::worker::BytesToFloats(b, b.size() / 4, &floats);
      (void)bitparity::worker::BytesToFloats(b, b.size() / 4 + 1, &floats);
      break;
    }
    case wpb::Response::kResidualRow: {
      const std::string& b = r.residual_row().hidden_f32le();
      (void)bitparity::worker::BytesToFloats(b, 3, &floats);
      break;
    }
    default:
      break;
  }
}

}  // namespace

// Invalid UTF-8 in a string field is a normal parse failure (DataLoss); protobuf also
// logs it, once per input, which would drown the fuzzer's output.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  google::protobuf::SetLogHandler(nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool responses = (data[0] & 1) != 0;
  worker::ReadOptions opts;
  opts.max_payload = (data[1] % 4) == 0 ? kBigLimit : (64u << (data[1] % 4));
  data += 2;
  size -= 2;

  const int fd = memfd_create("worker_frame_fuzzer", MFD_CLOEXEC);
  if (fd < 0) Fail("memfd_create failed");
  size_t written = 0;
  while (written < size) {
    ssize_t n = ::write(fd, data + written, size - written);
    if (n <= 0) Fail("write to memfd failed");
    written += static_cast<size_t>(n);
  }
  if (::lseek(fd, 0, SEEK_SET) != 0) Fail("lseek failed");

  size_t frames = 0;
  absl::Status st;
  for (;;) {
    if (responses) {
      wpb::Response r;
      st = worker::ReadMessage(fd, &r, opts);
      if (!st.ok()) break;
      CheckReencodes(r);
      UseResponse(r);
    } else {
      wpb::Request r;
      st = worker::ReadMessage(fd, &r, opts);
      if (!st.ok()) break;
      CheckReencodes(r);
      if (r.kind_case() == wpb::Request::kGenerate) (void)bitparity::worker::FromProto(r.generate());
    }
    ++frames;
    if (frames * worker::kHeaderSize > size) Fail("more frames than the bytes can hold");
  }
  ::close(fd);
  const auto code = st.code();
  if (code != absl::StatusCode::kUnavailable && code != absl::StatusCode::kDataLoss &&
      code != absl::StatusCode::kInvalidArgument) {
    Fail("unexpected status", st.ToString());
  }
  return 0;
}

// File: cpp_ref_adapter/worker_protocol.h
//
// The byte format between the supervisor and an engine worker process. Messages
// (cpp_ref_adapter/worker.proto, package bitnet.worker.v1) travel as frames:
// requests on the worker's stdin, responses on its stdout. stderr is free text
// (the engine's log), kept by the supervisor for error messages.
//
// One frame:
//
//   +------------------+---------------------------------------+
//   | length (4 bytes) | payload (`length` bytes)              |
//   +------------------+---------------------------------------+
//
//   length   uint32, little-endian: the payload size in bytes, 0..kMaxFramePayload
//   payload  one serialized message: bitnet.worker.v1.Request on stdin,
//            bitnet.worker.v1.Response on stdout
//
// A reader checks `length` against kMaxFramePayload BEFORE allocating, so a
// corrupt or hostile length costs nothing. End of file exactly at a frame
// boundary means the peer closed the pipe (Unavailable); end of file inside a
// frame is a truncated frame (DataLoss). Frames are never padded or checksummed:
// pipes do not reorder or corrupt bytes, and a worker that writes garbage is
// treated like one that crashed.
//
// Why the payload limit is 256 MiB: the largest frame a worker sends is one
// logits row (n_vocab float32: 128256 x 4 = 0.5 MB for LLaMA-3) or one token;
// the largest it receives is a Tokenize text, bounded by the server's largest
// gRPC message (--max-message-mb, default 64).
//
// Thread safety: the functions are reentrant; one fd must be read (or written)
// by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace google::protobuf {
class MessageLite;
}

namespace bitparity::worker {

constexpr size_t kHeaderSize = 4;                     // uint32 little-endian payload length
constexpr uint32_t kMaxFramePayload = 256u << 20;     // 256 MiB
constexpr uint32_t kProtocolVersion = 4;  // Hello.protocol_version (3: chat_template, 4: Cancel)

// Writes the header of a frame with `length` payload bytes into out[0..3].
void EncodeFrameHeader(uint32_t length, char out[kHeaderSize]);

// The payload length in a header; InvalidArgument (naming the size) when it
// exceeds `max_payload`.
absl::StatusOr<uint32_t> DecodeFrameHeader(const char in[kHeaderSize],
                                           uint32_t max_payload = kMaxFramePayload);

// header + serialized `message`, ready to write. InvalidArgument when the
// message is larger than kMaxFramePayload.
absl::StatusOr<std::string> EncodeFrame(const google::protobuf::MessageLite& message);

// Asked before each wait for bytes and about every `poll_ms` while waiting;
// returning true abandons the read (or write) with Cancelled.
using StopFn = std::function<bool()>;

// Writes all of `frame` to `fd` (restarting on EINTR and short writes).
// Unavailable when the reader is gone (EPIPE: the caller must ignore SIGPIPE).
// On a non-blocking `fd` whose pipe is full (the reader is stopped or slow) it
// waits for room, asking `stop` (may be null) every 10 ms: Cancelled when it
// says stop, so that a frame larger than the pipe buffer cannot block a caller
// forever.
absl::Status WriteAll(int fd, absl::string_view frame, const StopFn& stop = nullptr);

// EncodeFrame + WriteAll.
absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message,
                        const StopFn& stop = nullptr);

struct ReadOptions {
  uint32_t max_payload = kMaxFramePayload;
  int poll_ms = 10;         // how often `stop` is asked (only when set)
  StopFn stop = nullptr;    // null: block until the frame or end of file
};

// Reads one frame's payload from `fd` into `payload`.
//   Unavailable  end of file before the first header byte (the peer closed)
//   DataLoss     end of file inside a frame (truncated)
//   InvalidArgument  length over options.max_payload (nothing allocated)
//   Cancelled    options.stop returned true
//   Internal     a read error (errno text)
absl::Status ReadFrame(int fd, std::string* payload, const ReadOptions& options = {});

// ReadFrame + parse. DataLoss when the payload is not a valid `message`.
absl::Status ReadMessage(int fd, google::protobuf::MessageLite* message,
                         const ReadOptions& options = {});

}  // namespace bitparity::worker

#include "cpp_ref_adapter/worker_protocol.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "google/protobuf/message_lite.h"

namespace bitparity::worker {

void EncodeFrameHeader(uint32_t length, char out[kHeaderSize]) {
  for (size_t i = 0; i < kHeaderSize; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
}

absl::StatusOr<uint32_t> DecodeFrameHeader(const char in[kHeaderSize], uint32_t max_payload) {
  uint32_t length = 0;
  for (size_t i = 0; i < kHeaderSize; ++i) {
    length |= static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << (8 * i);
  }
  if (length > max_payload) {
    return absl::InvalidArgumentError(absl::StrCat("worker frame of ", length,
                                                   " bytes exceeds the limit of ", max_payload));
  }
  return length;
}

absl::StatusOr<std::string> EncodeFrame(const google::protobuf::MessageLite& message) {
  const size_t size = message.ByteSizeLong();
  if (size > kMaxFramePayload) {
    return absl::InvalidArgumentError(absl::StrCat("message of ", size,
                                                   " bytes exceeds the frame limit of ",
                                                   kMaxFramePayload));
  }
  std::string frame(kHeaderSize + size, '\0');
  EncodeFrameHeader(static_cast<uint32_t>(size), frame.data());
  if (!message.SerializeToArray(frame.data() + kHeaderSize, static_cast<int>(size))) {
    return absl::InternalError("cannot serialize a worker message");
  }
  return frame;
}

absl::Status WriteAll(int fd, absl::string_view frame, const StopFn& stop) {
  size_t done = 0;
  while (done < frame.size()) {
    const ssize_t n = ::write(fd, frame.data() + done, frame.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Non-blocking and full: wait for room, stoppable.
        if (stop && stop()) return absl::CancelledError("write abandoned");
        pollfd p{fd, POLLOUT, 0};
        const int r = ::poll(&p, 1, stop ? 10 : -1);
        if (r < 0 && errno != EINTR) {
          return absl::InternalError(absl::StrCat("poll on worker pipe: ", std::strerror(errno)));
        }
        continue;
      }
      if (errno == EPIPE) return absl::UnavailableError("the worker's input pipe is closed");
      return absl::InternalError(absl::StrCat("write to worker pipe: ", std::strerror(errno)));
    }
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteFrame(int fd, const google::protobuf::MessageLite& message,
                        const StopFn& stop) {
  absl::StatusOr<std::string> frame = EncodeFrame(message);
  if (!frame.ok()) return frame.status();
  return WriteAll(fd, *frame, stop);
}

namespace {

// Reads exactly `size` bytes into `out`. `*got` says how many arrived before
// end of file or an error.
absl::Status ReadExactly(int fd, char* out, size_t size, size_t* got, const ReadOptions& o) {
  *got = 0;
  while (*got < size) {
    if (o.stop) {
      // Asked before every wait, not only after idle ones: a worker that keeps
      // streaming frames must still be stoppable.
      if (o.stop()) return absl::CancelledError("read abandoned");
      pollfd p{fd, POLLIN, 0};
      const int r = ::poll(&p, 1, o.poll_ms);
      if (r < 0 && errno != EINTR) {
        return absl::InternalError(absl::StrCat("poll on worker pipe: ", std::strerror(errno)));
      }
      if (r <= 0) {
        if (o.stop()) return absl::CancelledError("read abandoned");
        continue;
      }
    }
    const ssize_t n = ::read(fd, out + *got, size - *got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("read from worker pipe: ", std::strerror(errno)));
    }
    if (n == 0) return absl::OkStatus();  // end of file: *got < size tells the caller
    *got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadFrame(int fd, std::string* payload, const ReadOptions& options) {
  char header[kHeaderSize];
  size_t got = 0;
  absl::Status st = ReadExactly(fd, header, kHeaderSize, &got, options);
  if (!st.ok()) return st;
  if (got == 0) return absl::UnavailableError("end of file: the peer closed the pipe");
  if (got < kHeaderSize) {
    return absl::DataLossError(
        absl::StrCat("truncated frame: end of file after ", got, " of 4 header bytes"));
  }
  absl::StatusOr<uint32_t> length = DecodeFrameHeader(header, options.max_payload);
  if (!length.ok()) return length.status();
  payload->resize(*length);  // bounded by max_payload, checked above
  st = ReadExactly(fd, payload->data(), *length, &got, options);
  if (!st.ok()) return st;
  if (got < *length) {
    return absl::DataLossError(absl::StrCat("truncated frame: end of file after ", got, " of ",
                                            *length, " payload bytes"));
  }
  return absl::OkStatus();
}

absl::Status ReadMessage(int fd, google::protobuf::MessageLite* message,
                         const ReadOptions& options) {
  std::string payload;
  absl::Status st = ReadFrame(fd, &payload, options);
  if (!st.ok()) return st;
  if (!message->ParseFromString(payload)) {
    return absl::DataLossError(absl::StrCat("a ", payload.size(), "-byte frame is not a valid ",
                                            message->GetTypeName()));
  }
  return absl::OkStatus();
}

}  // namespace bitparity::worker

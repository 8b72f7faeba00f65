#include "base/utf8.h"

namespace bitparity {
namespace {

constexpr char kReplacement[] = "\xEF\xBF\xBD";  // U+FFFD

// The well-formed sequence that `lead` may start (Unicode Table 3-7): its length
// and the allowed range of its second byte. Length 0: `lead` starts none.
struct LeadRule {
  size_t length = 0;
  uint8_t second_lo = 0x80, second_hi = 0xBF;
};

LeadRule RuleFor(uint8_t lead) {
  if (lead < 0x80) return {1, 0, 0};
  if (lead >= 0xC2 && lead <= 0xDF) return {2};
  if (lead == 0xE0) return {3, 0xA0, 0xBF};  // no overlong forms
  if (lead == 0xED) return {3, 0x80, 0x9F};  // no surrogates
  if (lead >= 0xE1 && lead <= 0xEF) return {3};
  if (lead == 0xF0) return {4, 0x90, 0xBF};  // no overlong forms
  if (lead == 0xF4) return {4, 0x80, 0x8F};  // nothing above U+10FFFF
  if (lead >= 0xF1 && lead <= 0xF3) return {4};
  return {};  // a continuation byte, C0/C1 (overlong) or F5..FF
}

// Bytes from p[0] that belong to the sequence p[0] starts: its whole length when
// well-formed, else the maximal subpart (at least 1). `*ok` says which.
size_t SequenceAt(const uint8_t* p, size_t available, bool* ok) {
  const LeadRule rule = RuleFor(p[0]);
  *ok = false;
  if (rule.length == 0) return 1;
  if (rule.length == 1) {
    *ok = true;
    return 1;
  }
  size_t k = 1;
  for (; k < rule.length && k < available; ++k) {
    const uint8_t lo = k == 1 ? rule.second_lo : 0x80;
    const uint8_t hi = k == 1 ? rule.second_hi : 0xBF;
    if (p[k] < lo || p[k] > hi) return k;
  }
  *ok = k == rule.length;
  return k;
}

}  // namespace

size_t FindInvalidUtf8(absl::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  for (size_t i = 0; i < s.size();) {
    bool ok;
    const size_t len = SequenceAt(p + i, s.size() - i, &ok);
    if (!ok) return i;
    i += len;
  }
  return absl::string_view::npos;
}

std::string ToValidUtf8(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  for (size_t i = 0; i < bytes.size();) {
    bool ok;
    const size_t len = SequenceAt(p + i, bytes.size() - i, &ok);
    if (ok) {
      out.append(bytes.data() + i, len);
    } else {
      out += kReplacement;
    }
    i += len;
  }
  return out;
}

uint32_t DecodeUtf8(absl::string_view s, size_t* pos) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data()) + *pos;
  const uint8_t b = p[0];
  if (b < 0x80) {
    *pos += 1;
    return b;
  }
  if (b < 0xE0) {
    *pos += 2;
    return (uint32_t{b & 0x1Fu} << 6) | (p[1] & 0x3Fu);
  }
  if (b < 0xF0) {
    *pos += 3;
    return (uint32_t{b & 0x0Fu} << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
  }
  *pos += 4;
  return (uint32_t{b & 0x07u} << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) |
         (p[3] & 0x3Fu);
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

size_t IncompleteUtf8Tail(absl::string_view s) {
  for (size_t i = 1; i < 5 && i <= s.size(); ++i) {
    const uint8_t c = static_cast<uint8_t>(s[s.size() - i]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: keep looking for the lead
    size_t need = 1;
    if ((c & 0xE0) == 0xC0) {
      need = 2;
    } else if ((c & 0xF0) == 0xE0) {
      need = 3;
    } else if ((c & 0xF8) == 0xF0) {
      need = 4;
    }
    return i < need ? i : 0;
  }
  return 0;
}

}  // namespace bitparity

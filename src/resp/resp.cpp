// RESP framing. The request side follows Redis' own rules (networking.c) closely enough that a
// client sees the same protocol errors it would see from redis-server; two checks are stricter
// than Redis on purpose: a bulk string must end in CRLF, and a whole request has a size cap.
#include "lockstep/resp/resp.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <limits>

namespace lockstep::resp {
namespace {

// Redis accepts at most this many bytes of a header line before deciding the peer is hostile.
constexpr size_t kMaxHeaderLine = 64 * 1024;
// Before AUTH, Redis allows only small requests (networking.c: authRequired checks).
constexpr int64_t kUnauthMaxArgs = 10;
constexpr int64_t kUnauthMaxBulk = 16384;

bool parse_line_int(const char* begin, const char* end, int64_t& out) {
  return parse_int64(std::string_view(begin, static_cast<size_t>(end - begin)), out);
}

bool is_hex(char c) {
  return std::isxdigit(static_cast<unsigned char>(c)) != 0;
}
int hex_val(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

}  // namespace

bool parse_int64(std::string_view s, int64_t& value) {
  if (s.empty() || s.size() > 20) return false;
  size_t i = 0;
  bool neg = false;
  if (s[0] == '-') {
    neg = true;
    i = 1;
    if (s.size() == 1) return false;
  }
  if (s[i] == '0' && s.size() > i + 1) return false;  // no leading zeros, as string2ll
  uint64_t v = 0;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return false;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (std::numeric_limits<uint64_t>::max() - d) / 10) return false;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) return false;
    value = v == static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1
                ? std::numeric_limits<int64_t>::min()
                : -static_cast<int64_t>(v);
  } else {
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
    value = static_cast<int64_t>(v);
  }
  if (neg && value == 0) return false;  // "-0" is not an integer for Redis
  return true;
}

void RequestParser::reset() {
  pos_ = 0;
  expected_args_ = -1;
  bulk_len_ = -1;
  spans_.clear();
}

RequestParser::Status RequestParser::fail(std::string_view msg) {
  scratch_->error.assign("Protocol error: ");
  scratch_->error.append(msg);
  reset();
  return Status::kError;
}

RequestParser::Status RequestParser::parse(const char* data, size_t size, bool unauthenticated) {
  if (size == 0) return Status::kNeedMore;
  if (data[0] != '*') return parse_inline(data, size, unauthenticated);

  if (expected_args_ < 0) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
    if (nl == nullptr) {
      if (size > kMaxHeaderLine) return fail("too big mbulk count string");
      return Status::kNeedMore;
    }
    if (nl == data || nl[-1] != '\r') return fail("invalid multibulk length");
    int64_t n = 0;
    if (!parse_line_int(data + 1, nl - 1, n) || n > std::numeric_limits<int32_t>::max())
      return fail("invalid multibulk length");
    if (unauthenticated && n > kUnauthMaxArgs) return fail("unauthenticated multibulk length");
    if (n > limits_->max_args) return fail("invalid multibulk length");
    pos_ = static_cast<size_t>(nl - data) + 1;
    if (n <= 0) {  // "*0" and "*-1" are empty requests that Redis silently skips
      scratch_->argv.clear();
      consumed_ = pos_;
      inline_ = false;
      reset();
      return Status::kComplete;
    }
    expected_args_ = n;
    spans_.clear();
  }

  const int64_t max_bulk =
      unauthenticated ? std::min(kUnauthMaxBulk, limits_->max_bulk_bytes) : limits_->max_bulk_bytes;
  while (static_cast<int64_t>(spans_.size()) < expected_args_) {
    if (bulk_len_ < 0) {
      if (pos_ >= size) return Status::kNeedMore;
      if (data[pos_] != '$') return fail(fmt::format("expected '$', got '{}'", data[pos_]));
      const char* nl = static_cast<const char*>(std::memchr(data + pos_, '\n', size - pos_));
      if (nl == nullptr) {
        if (size - pos_ > kMaxHeaderLine) return fail("too big bulk count string");
        return Status::kNeedMore;
      }
      if (nl[-1] != '\r') return fail("invalid bulk length");
      int64_t len = 0;
      if (!parse_line_int(data + pos_ + 1, nl - 1, len) || len < 0 || len > max_bulk)
        return fail(unauthenticated && len > kUnauthMaxBulk ? "unauthenticated bulk length"
                                                            : "invalid bulk length");
      bulk_len_ = len;
      pos_ = static_cast<size_t>(nl - data) + 1;
      if (static_cast<int64_t>(pos_) + len + 2 > limits_->max_request_bytes)
        return fail("request is larger than limits.max_request_bytes");
    }
    const size_t need = static_cast<size_t>(bulk_len_) + 2;
    if (size - pos_ < need) return Status::kNeedMore;
    if (data[pos_ + need - 2] != '\r' || data[pos_ + need - 1] != '\n')
      return fail("bulk string not terminated by CRLF");
    spans_.push_back({pos_, static_cast<size_t>(bulk_len_)});
    pos_ += need;
    bulk_len_ = -1;
  }

  scratch_->argv.clear();
  for (const Span& s : spans_) scratch_->argv.emplace_back(data + s.off, s.len);
  consumed_ = pos_;
  inline_ = false;
  reset();
  return Status::kComplete;
}

// Inline commands split like Redis' sdssplitargs: blanks separate arguments, "double quotes"
// take \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \' only, and a closing quote
// must be followed by a blank or the end of the line.
RequestParser::Status RequestParser::parse_inline(const char* data, size_t size,
                                                  bool /*unauthenticated*/) {
  const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
  if (nl == nullptr) {
    if (size > static_cast<size_t>(limits_->max_inline_bytes))
      return fail("too big inline request");
    return Status::kNeedMore;
  }
  size_t line_len = static_cast<size_t>(nl - data);
  consumed_ = line_len + 1;
  if (line_len > static_cast<size_t>(limits_->max_inline_bytes))
    return fail("too big inline request");
  if (line_len > 0 && data[line_len - 1] == '\r') --line_len;

  scratch_->inline_buf.clear();
  std::vector<std::pair<size_t, size_t>> bounds;  // inline is rare; a small vector is fine
  const char* p = data;
  const char* end = data + line_len;
  while (true) {
    while (p < end && std::isspace(static_cast<unsigned char>(*p))) ++p;
    if (p >= end) break;
    size_t start = scratch_->inline_buf.size();
    bool in_dq = false, in_sq = false;
    while (true) {
      if (in_dq) {
        if (p >= end) return fail("unbalanced quotes in request");
        if (*p == '\\' && p + 3 < end && p[1] == 'x' && is_hex(p[2]) && is_hex(p[3])) {
          scratch_->inline_buf.push_back(static_cast<char>(hex_val(p[2]) * 16 + hex_val(p[3])));
          p += 3;
        } else if (*p == '\\' && p + 1 < end) {
          ++p;
          char c = *p;
          switch (c) {
            case 'n':
              c = '\n';
              break;
            case 'r':
              c = '\r';
              break;
            case 't':
              c = '\t';
              break;
            case 'b':
              c = '\b';
              break;
            case 'a':
              c = '\a';
              break;
            default:
              break;
          }
          scratch_->inline_buf.push_back(c);
        } else if (*p == '"') {
          if (p + 1 < end && !std::isspace(static_cast<unsigned char>(p[1])))
            return fail("unbalanced quotes in request");
          in_dq = false;
          ++p;
          break;
        } else {
          scratch_->inline_buf.push_back(*p);
        }
        ++p;
      } else if (in_sq) {
        if (p >= end) return fail("unbalanced quotes in request");
        if (*p == '\\' && p + 1 < end && p[1] == '\'') {
          scratch_->inline_buf.push_back('\'');
          p += 2;
        } else if (*p == '\'') {
          if (p + 1 < end && !std::isspace(static_cast<unsigned char>(p[1])))
            return fail("unbalanced quotes in request");
          in_sq = false;
          ++p;
          break;
        } else {
          scratch_->inline_buf.push_back(*p++);
        }
      } else {
        if (p >= end || std::isspace(static_cast<unsigned char>(*p))) break;
        if (*p == '"') {
          in_dq = true;
          ++p;
        } else if (*p == '\'') {
          in_sq = true;
          ++p;
        } else {
          scratch_->inline_buf.push_back(*p++);
        }
      }
    }
    bounds.emplace_back(start, scratch_->inline_buf.size() - start);
  }
  if (static_cast<int64_t>(bounds.size()) > limits_->max_args)
    return fail("invalid multibulk length");
  scratch_->argv.clear();
  for (auto [off, len] : bounds)
    scratch_->argv.emplace_back(scratch_->inline_buf.data() + off, len);
  inline_ = true;
  reset();
  return Status::kComplete;
}

int64_t ReplyScanner::scan(const char* data, size_t size) {
  while (true) {
    if (pos_ >= size) return 0;
    const char type = data[pos_];
    const char* nl = static_cast<const char*>(std::memchr(data + pos_, '\n', size - pos_));
    if (nl == nullptr) return 0;
    if (nl == data + pos_ || nl[-1] != '\r') return -1;
    const size_t after = static_cast<size_t>(nl - data) + 1;
    int64_t n = 0;
    bool value_done = false;
    switch (type) {
      case '+':
      case '-':
      case ':':
      case '_':
      case '#':
      case ',':
      case '(':
        pos_ = after;
        value_done = true;
        break;
      case '$':
      case '!':
      case '=':
        if (!parse_line_int(data + pos_ + 1, nl - 1, n) || n < -1) return -1;
        if (n == -1) {
          pos_ = after;
        } else {
          if (size < after + static_cast<size_t>(n) + 2) return 0;  // header is re-read; cheap
          pos_ = after + static_cast<size_t>(n) + 2;
        }
        value_done = true;
        break;
      case '*':
      case '~':
      case '>':
      case '%':
      case '|':
        if (!parse_line_int(data + pos_ + 1, nl - 1, n) || n < -1) return -1;
        pos_ = after;
        if (type == '%') n *= 2;
        if (type == '|') n = n * 2 + 1;  // an attribute map is followed by the value it annotates
        if (n <= 0) {
          value_done = true;
        } else {
          pending_.push_back(n);
        }
        break;
      default:
        return -1;
    }
    if (!value_done) continue;
    while (!pending_.empty()) {
      if (--pending_.back() > 0) break;
      pending_.pop_back();
    }
    if (pending_.empty()) {
      int64_t total = static_cast<int64_t>(pos_);
      pos_ = 0;
      return total;
    }
  }
}

bool split_array(std::string_view reply, std::vector<std::string_view>& elements, int64_t& count) {
  elements.clear();
  count = 0;
  if (reply.size() < 4 || (reply[0] != '*' && reply[0] != '%' && reply[0] != '~')) return false;
  size_t nl = reply.find('\n');
  if (nl == std::string_view::npos || nl < 2) return false;
  if (!parse_int64(reply.substr(1, nl - 2), count)) return false;
  if (reply[0] == '%') count *= 2;  // a RESP3 map: keys and values in turn
  size_t pos = nl + 1;
  ReplyScanner scanner;
  for (int64_t i = 0; i < count; ++i) {
    int64_t len = scanner.scan(reply.data() + pos, reply.size() - pos);
    if (len <= 0) return false;
    elements.push_back(reply.substr(pos, static_cast<size_t>(len)));
    pos += static_cast<size_t>(len);
  }
  return true;
}

bool parse_integer_reply(std::string_view reply, int64_t& value) {
  if (reply.size() < 4 || reply[0] != ':') return false;
  return parse_int64(reply.substr(1, reply.size() - 3), value);
}

void append_simple(std::string& out, std::string_view s) {
  out.push_back('+');
  out.append(s);
  out.append("\r\n");
}

void append_error(std::string& out, std::string_view message) {
  out.push_back('-');
  // A CR or LF inside an error would break the framing; Redis replaces them with spaces too.
  size_t start = out.size();
  out.append(message);
  for (size_t i = start; i < out.size(); ++i)
    if (out[i] == '\r' || out[i] == '\n') out[i] = ' ';
  out.append("\r\n");
}

void append_integer(std::string& out, int64_t v) {
  fmt::format_to(std::back_inserter(out), ":{}\r\n", v);
}

void append_bulk(std::string& out, std::string_view s) {
  fmt::format_to(std::back_inserter(out), "${}\r\n", s.size());
  out.append(s);
  out.append("\r\n");
}

void append_null(std::string& out, int protocol) {
  out.append(protocol >= 3 ? "_\r\n" : "$-1\r\n");
}

void append_array_header(std::string& out, int64_t n) {
  fmt::format_to(std::back_inserter(out), "*{}\r\n", n);
}

void append_verbatim(std::string& out, std::string_view text, int protocol) {
  if (protocol < 3) {
    append_bulk(out, text);
    return;
  }
  fmt::format_to(std::back_inserter(out), "={}\r\ntxt:", text.size() + 4);
  out.append(text);
  out.append("\r\n");
}

void append_map_header(std::string& out, int64_t pairs, int protocol) {
  if (protocol >= 3)
    fmt::format_to(std::back_inserter(out), "%{}\r\n", pairs);
  else
    fmt::format_to(std::back_inserter(out), "*{}\r\n", pairs * 2);
}

void append_command(std::string& out, std::span<const std::string_view> args) {
  append_array_header(out, static_cast<int64_t>(args.size()));
  for (std::string_view a : args) append_bulk(out, a);
}

}  // namespace lockstep::resp

// Recursive-descent parse of one RESP2/RESP3 reply into a Reply tree. Lengths are checked
// against the bytes actually present before anything is copied, so hostile lengths cannot make
// it allocate more than the input size.
#include "lockstep/lock/reply.h"

#include <cstring>

#include "lockstep/resp/resp.h"

namespace lockstep::lock {
namespace {

constexpr int kMaxDepth = 16;

class Parser {
 public:
  explicit Parser(std::string_view in) : in_(in) {}

  bool parse(Reply& out, int depth) {
    if (depth > kMaxDepth || pos_ >= in_.size()) return false;
    const char type = in_[pos_++];
    std::string_view line;
    if (!read_line(line)) return false;
    switch (type) {
      case '+':
        out.type = Reply::Type::kString;
        out.text.assign(line);
        return true;
      case '-':
        out.type = Reply::Type::kError;
        out.text.assign(line);
        return true;
      case ':': {
        out.type = Reply::Type::kInteger;
        return resp::parse_int64(line, out.integer);
      }
      case '_':
        out.type = Reply::Type::kNil;
        return line.empty();
      case '#':
        out.type = Reply::Type::kInteger;  // as Lua sees RESP3 booleans: true 1, false 0
        if (line != "t" && line != "f") return false;
        out.integer = line == "t" ? 1 : 0;
        return true;
      case ',':
      case '(':
        out.type = Reply::Type::kString;
        out.text.assign(line);
        return true;
      case '$':
      case '!':
      case '=': {
        int64_t len = 0;
        if (!resp::parse_int64(line, len) || len < -1) return false;
        if (len == -1) {
          out.type = Reply::Type::kNil;
          return type == '$';
        }
        std::string_view body;
        if (!read_bytes(static_cast<size_t>(len), body)) return false;
        if (type == '=') {  // verbatim: "txt:" then the text
          if (body.size() < 4 || body[3] != ':') return false;
          body.remove_prefix(4);
        }
        out.type = type == '!' ? Reply::Type::kError : Reply::Type::kString;
        out.text.assign(body);
        return true;
      }
      case '*':
      case '~':
      case '>':
      case '%':
      case '|': {
        int64_t n = 0;
        if (!resp::parse_int64(line, n) || n < -1) return false;
        if (n == -1) {
          out.type = Reply::Type::kNil;
          return type == '*';
        }
        if (type == '%' || type == '|') n *= 2;
        // Each element takes at least 3 bytes, so a count beyond that is a lie.
        if (static_cast<size_t>(n) > (in_.size() - pos_) / 3) return false;
        std::vector<Reply> elements(static_cast<size_t>(n));
        for (Reply& e : elements)
          if (!parse(e, depth + 1)) return false;
        if (type == '|') return parse(out, depth);  // attributes annotate the next value
        out.type = Reply::Type::kArray;
        out.elements = std::move(elements);
        return true;
      }
      default:
        return false;
    }
  }

  bool at_end() const { return pos_ == in_.size(); }

 private:
  bool read_line(std::string_view& line) {
    const size_t nl = in_.find("\r\n", pos_);
    if (nl == std::string_view::npos) return false;
    line = in_.substr(pos_, nl - pos_);
    pos_ = nl + 2;
    return true;
  }

  bool read_bytes(size_t len, std::string_view& bytes) {
    if (in_.size() - pos_ < len + 2) return false;
    if (in_[pos_ + len] != '\r' || in_[pos_ + len + 1] != '\n') return false;
    bytes = in_.substr(pos_, len);
    pos_ += len + 2;
    return true;
  }

  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace

Reply Reply::of_integer(int64_t v) {
  Reply r;
  r.type = Type::kInteger;
  r.integer = v;
  return r;
}

Reply Reply::of_string(std::string_view s) {
  Reply r;
  r.type = Type::kString;
  r.text.assign(s);
  return r;
}

Reply Reply::of_error(std::string_view message) {
  Reply r;
  r.type = Type::kError;
  r.text.assign(message);
  return r;
}

Reply Reply::of_array(std::vector<Reply> elements) {
  Reply r;
  r.type = Type::kArray;
  r.elements = std::move(elements);
  return r;
}

std::string_view Reply::error_code() const {
  if (type != Type::kError) return {};
  std::string_view t = text;
  return t.substr(0, t.find(' '));
}

std::optional<int64_t> Reply::as_int() const {
  if (type == Type::kInteger) return integer;
  int64_t v = 0;
  if (type == Type::kString && resp::parse_int64(text, v)) return v;
  return std::nullopt;
}

std::optional<Reply> parse_reply(std::string_view raw) {
  Parser p(raw);
  Reply out;
  if (!p.parse(out, 0) || !p.at_end()) return std::nullopt;
  return out;
}

}  // namespace lockstep::lock

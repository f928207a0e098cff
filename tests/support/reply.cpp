#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "support/harness.h"

namespace lockstep::test {

Reply Reply::strings(const std::vector<std::string>& items) {
  Reply r{Type::kArray, {}, 0, {}};
  for (const auto& s : items) r.elements.push_back(Reply::string(s));
  return r;
}

Reply Reply::from_hiredis(const redisReply* r) {
  if (r == nullptr) return io_error("null reply");
  switch (r->type) {
    case REDIS_REPLY_STATUS:
      return status(std::string(r->str, r->len));
    case REDIS_REPLY_ERROR:
      return error(std::string(r->str, r->len));
    case REDIS_REPLY_INTEGER:
      return integer_(r->integer);
    case REDIS_REPLY_STRING:
      return string(std::string(r->str, r->len));
    case REDIS_REPLY_NIL:
      return nil();
    case REDIS_REPLY_ARRAY: {
      Reply out{Type::kArray, {}, 0, {}};
      out.elements.reserve(r->elements);
      for (size_t i = 0; i < r->elements; ++i) out.elements.push_back(from_hiredis(r->element[i]));
      return out;
    }
    default:
      return io_error("unknown hiredis reply type " + std::to_string(r->type));
  }
}

std::vector<std::string> Reply::as_strings() const {
  std::vector<std::string> out;
  for (const auto& e : elements) {
    if (e.type == Type::kString || e.type == Type::kStatus) {
      out.push_back(e.str);
    } else {
      out.push_back(e.to_string());
    }
  }
  return out;
}

Reply Reply::sorted() const {
  Reply copy = *this;
  std::sort(copy.elements.begin(), copy.elements.end(),
            [](const Reply& a, const Reply& b) { return a.to_string() < b.to_string(); });
  return copy;
}

namespace {

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c >= 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

void render(const Reply& r, std::string& out, size_t budget) {
  if (out.size() > budget) return;
  using T = Reply::Type;
  switch (r.type) {
    case T::kStatus:
      out += "+" + r.str;
      break;
    case T::kError:
      out += "-" + r.str;
      break;
    case T::kInteger:
      out += "(integer) " + std::to_string(r.integer);
      break;
    case T::kString:
      out += quote(r.str);
      break;
    case T::kNil:
      out += "(nil)";
      break;
    case T::kDouble:
      out += "(double) " + r.str;
      break;
    case T::kBool:
      out += r.integer ? "(true)" : "(false)";
      break;
    case T::kBigNumber:
      out += "(big) " + r.str;
      break;
    case T::kVerbatim:
      out += "(verbatim) " + quote(r.str);
      break;
    case T::kIoError:
      out += "(io error: " + r.str + ")";
      break;
    case T::kMap:
    case T::kAttribute: {
      out += r.type == T::kMap ? "{" : "|{";
      for (size_t i = 0; i < r.elements.size(); ++i) {
        if (i) out += (i % 2) ? ": " : ", ";
        render(r.elements[i], out, budget);
        if (out.size() > budget) break;
      }
      out += "}";
      break;
    }
    case T::kArray:
    case T::kSet:
    case T::kPush: {
      out += r.type == T::kArray ? "[" : r.type == T::kSet ? "~[" : ">[";
      for (size_t i = 0; i < r.elements.size(); ++i) {
        if (i) out += ", ";
        render(r.elements[i], out, budget);
        if (out.size() > budget) break;
      }
      out += "]";
      break;
    }
  }
  if (out.size() > budget) out += "...";
}

}  // namespace

std::string Reply::to_string() const {
  std::string out;
  render(*this, out, 2000);
  return out;
}

std::ostream& operator<<(std::ostream& os, const Reply& r) {
  return os << r.to_string();
}

std::string encode_command(const std::vector<std::string>& argv) {
  std::string out = "*" + std::to_string(argv.size()) + "\r\n";
  for (const auto& a : argv) {
    out += "$" + std::to_string(a.size()) + "\r\n";
    out += a;
    out += "\r\n";
  }
  return out;
}

namespace {

// Parses one reply starting at `pos`; advances pos on success.
ParseStatus parse_at(std::string_view buf, size_t& pos, Reply& out, int depth) {
  if (depth > 64) return ParseStatus::kInvalid;
  if (pos >= buf.size()) return ParseStatus::kIncomplete;
  const size_t eol = buf.find("\r\n", pos);
  if (eol == std::string_view::npos) return ParseStatus::kIncomplete;
  const char type = buf[pos];
  const std::string_view line = buf.substr(pos + 1, eol - pos - 1);
  const size_t after_line = eol + 2;
  auto parse_int = [](std::string_view s, long long& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
  };
  using T = Reply::Type;
  switch (type) {
    case '+':
    case '-':
    case ',':
    case '(': {
      out = Reply{};
      out.type = type == '+'   ? T::kStatus
                 : type == '-' ? T::kError
                 : type == ',' ? T::kDouble
                               : T::kBigNumber;
      out.str = std::string(line);
      pos = after_line;
      return ParseStatus::kOk;
    }
    case ':': {
      long long v = 0;
      if (!parse_int(line, v)) return ParseStatus::kInvalid;
      out = Reply::integer_(v);
      pos = after_line;
      return ParseStatus::kOk;
    }
    case '_':
      if (!line.empty()) return ParseStatus::kInvalid;
      out = Reply::nil();
      pos = after_line;
      return ParseStatus::kOk;
    case '#':
      if (line != "t" && line != "f") return ParseStatus::kInvalid;
      out = Reply{T::kBool, {}, line == "t" ? 1 : 0, {}};
      pos = after_line;
      return ParseStatus::kOk;
    case '$':
    case '!':
    case '=': {
      long long len = 0;
      if (!parse_int(line, len) || len < -1) return ParseStatus::kInvalid;
      if (len == -1) {
        out = Reply::nil();
        pos = after_line;
        return ParseStatus::kOk;
      }
      const size_t n = static_cast<size_t>(len);
      if (buf.size() < after_line + n + 2) return ParseStatus::kIncomplete;
      if (buf.substr(after_line + n, 2) != "\r\n") return ParseStatus::kInvalid;
      out = Reply{};
      out.type = type == '$' ? T::kString : type == '!' ? T::kError : T::kVerbatim;
      out.str = std::string(buf.substr(after_line, n));
      pos = after_line + n + 2;
      return ParseStatus::kOk;
    }
    case '*':
    case '~':
    case '>':
    case '%':
    case '|': {
      long long count = 0;
      if (!parse_int(line, count) || count < -1) return ParseStatus::kInvalid;
      size_t p = after_line;
      Reply agg;
      if (count == -1) {
        agg = Reply::nil();
      } else {
        agg.type = type == '*'   ? T::kArray
                   : type == '~' ? T::kSet
                   : type == '>' ? T::kPush
                   : type == '%' ? T::kMap
                                 : T::kAttribute;
        const long long items = (type == '%' || type == '|') ? count * 2 : count;
        for (long long i = 0; i < items; ++i) {
          Reply child;
          ParseStatus st = parse_at(buf, p, child, depth + 1);
          if (st != ParseStatus::kOk) return st;
          agg.elements.push_back(std::move(child));
        }
      }
      if (type == '|') {  // an attribute precedes the actual reply: skip it
        pos = p;
        return parse_at(buf, pos, out, depth + 1);
      }
      out = std::move(agg);
      pos = p;
      return ParseStatus::kOk;
    }
    default:
      return ParseStatus::kInvalid;
  }
}

}  // namespace

ParseStatus parse_reply(std::string_view buf, size_t& consumed, Reply& out) {
  size_t pos = 0;
  ParseStatus st = parse_at(buf, pos, out, 0);
  if (st == ParseStatus::kOk) consumed = pos;
  return st;
}

}  // namespace lockstep::test

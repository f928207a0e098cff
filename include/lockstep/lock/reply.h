// A backend reply as a value, for the lock engine's few small script replies.
//
// The data plane forwards reply bytes untouched (resp::ReplyScanner frames them); the lock
// engine has to look inside its own script replies, which are short arrays of integers and
// strings, so it builds a tree. RESP3 types are folded into the RESP2 shapes a script reply
// would have (map and set and push -> array, boolean -> integer, double and big number ->
// string, verbatim -> its text), so a driver may use RESP2 or RESP3 connections.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::lock {

struct Reply {
  enum class Type { kNil, kInteger, kString, kError, kArray };
  Type type = Type::kNil;
  int64_t integer = 0;
  std::string text;  // kString: the bytes; kError: the message without '-' (code first)
  std::vector<Reply> elements;

  static Reply nil() { return {}; }
  static Reply of_integer(int64_t v);
  static Reply of_string(std::string_view s);
  static Reply of_error(std::string_view message);
  static Reply of_array(std::vector<Reply> elements);

  bool is_error() const { return type == Type::kError; }
  // The error code ("NOSCRIPT", "READONLY", ...), or "" if this is not an error.
  std::string_view error_code() const;
  // An integer reply, or a string holding a decimal integer (what GET returns from a script).
  std::optional<int64_t> as_int() const;
};

// Parses exactly one complete reply; nullopt if `raw` is malformed, incomplete, nested deeper
// than 16 levels, or has bytes after the reply.
std::optional<Reply> parse_reply(std::string_view raw);

}  // namespace lockstep::lock

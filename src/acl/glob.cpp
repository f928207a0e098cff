// Glob matching with the semantics of Redis' stringmatchlen() (util.c), written from its
// documented and observed behaviour: ACL key and channel patterns must select exactly the
// names Redis would select, corner cases included (see acl.h).
#include <cstddef>
#include <string_view>

#include "lockstep/acl/acl.h"

namespace lockstep::acl {
namespace {

// Redis compares pattern and string bytes as plain `char`, which is signed on x86: a range
// such as [a-\xff] therefore covers \xff..a, not a..\xff.
int as_signed(char c) {
  return static_cast<signed char>(c);
}

// Matches the one-character token starting at pattern[pos] (never '*') against `c`. Sets
// `next` to the position after the token. Token boundaries depend only on the pattern, which
// is what lets glob_match() backtrack over '*' iteratively.
bool match_token(std::string_view pattern, size_t pos, char c, size_t& next) {
  const size_t n = pattern.size();
  switch (pattern[pos]) {
    case '?':
      next = pos + 1;
      return true;
    case '\\':
      // An escape needs a character after it; a trailing backslash is a literal one.
      if (pos + 1 < n) {
        next = pos + 2;
        return pattern[pos + 1] == c;
      }
      next = pos + 1;
      return c == '\\';
    case '[': {
      size_t i = pos + 1;
      const bool negate = i < n && pattern[i] == '^';
      if (negate) ++i;
      bool matched = false;
      while (true) {
        if (i < n && pattern[i] == '\\' && n - i >= 2) {
          ++i;  // escaped member
          if (pattern[i] == c) matched = true;
        } else if (i < n && pattern[i] == ']') {
          break;  // i is on the closing bracket; also closes "[]" as an empty class
        } else if (i >= n) {
          // Unterminated class: it ends the pattern, with the members seen so far.
          i = n - 1;
          break;
        } else if (n - i >= 3 && pattern[i + 1] == '-') {
          int lo = as_signed(pattern[i]);
          int hi = as_signed(pattern[i + 2]);
          if (lo > hi) std::swap(lo, hi);
          const int v = as_signed(c);
          if (v >= lo && v <= hi) matched = true;
          i += 2;
        } else if (pattern[i] == c) {
          matched = true;
        }
        ++i;
      }
      next = i + 1;
      return matched != negate;
    }
    default:
      next = pos + 1;
      return pattern[pos] == c;
  }
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  // Redis only looks at the pattern while there is string left, so an empty string matches
  // nothing but the empty pattern (not even "*").
  if (text.empty()) return pattern.empty();

  const size_t n = pattern.size();
  size_t p = 0;
  size_t t = 0;
  // The most recent '*': where the pattern resumes after it, and the next text position it
  // would swallow if what follows fails. Every other token consumes exactly one character, so
  // retrying only the most recent star finds a match whenever one exists.
  size_t star_resume = std::string_view::npos;
  size_t star_text = 0;
  while (t < text.size()) {
    if (p < n && pattern[p] == '*') {
      while (p < n && pattern[p] == '*') ++p;
      if (p == n) return true;  // a trailing star matches whatever is left
      star_resume = p;
      star_text = t;
      continue;
    }
    size_t next = 0;
    if (p < n && match_token(pattern, p, text[t], next)) {
      p = next;
      ++t;
      continue;
    }
    if (star_resume == std::string_view::npos) return false;
    p = star_resume;
    t = ++star_text;
  }
  while (p < n && pattern[p] == '*') ++p;
  return p == n;
}

}  // namespace lockstep::acl

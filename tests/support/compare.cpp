#include "support/compare.h"

#include <sstream>

#include <catch2/catch.hpp>

namespace lockstep::test {

namespace {

// Where two replies first differ, for long texts that Catch2 wraps beyond comparison by eye.
std::string diff_hint(const Reply& a, const Reply& b) {
  if (a.type != b.type) return "reply types differ";
  if (a.str != b.str) {
    size_t i = 0;
    while (i < a.str.size() && i < b.str.size() && a.str[i] == b.str[i]) ++i;
    return "texts differ at byte " + std::to_string(i) + " (lengths " +
           std::to_string(a.str.size()) + " vs " + std::to_string(b.str.size()) + ")";
  }
  if (a.elements.size() != b.elements.size()) {
    return "array sizes differ: " + std::to_string(a.elements.size()) + " vs " +
           std::to_string(b.elements.size());
  }
  for (size_t i = 0; i < a.elements.size(); ++i) {
    if (a.elements[i] != b.elements[i]) {
      return "element " + std::to_string(i) + ": " + diff_hint(a.elements[i], b.elements[i]);
    }
  }
  return a == b ? "equal" : "integers differ";
}

}  // namespace

Reply Compare::run(const std::vector<std::string>& argv, Order order, bool expect_error) {
  Reply expected = reference_.command(argv);
  Reply actual = proxy_.command(argv);
  ++compared_;
  INFO("command: " << show(argv));
  INFO("redis-server: " << expected);
  INFO("lockstep:     " << actual);
  INFO("difference:   " << diff_hint(actual, expected));
  if (expect_error) {
    CHECK(expected.is_error());
  } else {
    CHECK_FALSE(expected.is_error());
  }
  if (order == Order::kUnordered) {
    CHECK(actual.sorted() == expected.sorted());
  } else {
    CHECK(actual == expected);
  }
  return actual;
}

Reply Compare::same(const std::vector<std::string>& argv, Order order) {
  return run(argv, order, false);
}

Reply Compare::same_error(const std::vector<std::string>& argv) {
  return run(argv, Order::kExact, true);
}

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::string show(const std::vector<std::string>& argv) {
  std::string out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (i) out += ' ';
    out += i == 0 ? argv[i] : Reply::string(argv[i]).to_string();
  }
  return out;
}

}  // namespace lockstep::test

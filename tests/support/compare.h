// Differential testing: the same command sent to a reference redis-server and to Lockstep must
// get the same reply. Uses Catch2 assertions (CHECK), so call it from inside a TEST_CASE.
#pragma once

#include <string>
#include <vector>

#include "support/harness.h"

namespace lockstep::test {

class Compare {
 public:
  enum class Order { kExact, kUnordered };  // kUnordered: compare array elements as a multiset

  Compare(Client reference, Client proxy)
      : reference_(std::move(reference)), proxy_(std::move(proxy)) {}

  // Sends argv to both; CHECKs the replies are equal and that the reference did not answer an
  // error (a typo in the test would otherwise pass on both sides). Returns Lockstep's reply.
  Reply same(const std::vector<std::string>& argv, Order order = Order::kExact);
  // As same(), but the reference must answer an error (and Lockstep the same error).
  Reply same_error(const std::vector<std::string>& argv);
  Reply unordered(const std::vector<std::string>& argv) { return same(argv, Order::kUnordered); }

  Client& reference() { return reference_; }
  Client& proxy() { return proxy_; }
  int compared() const { return compared_; }

 private:
  Reply run(const std::vector<std::string>& argv, Order order, bool expect_error);
  Client reference_;
  Client proxy_;
  int compared_ = 0;
};

// "SET k v" -> {"SET", "k", "v"}; for readable tables of commands (no quoting support).
std::vector<std::string> words(const std::string& text);
// Renders argv for messages: SET "k" "v".
std::string show(const std::vector<std::string>& argv);

}  // namespace lockstep::test

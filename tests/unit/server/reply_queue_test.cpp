// Reply ordering: slots complete in any order and leave in request order.
#include "server/net/reply_queue.h"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace lockstep::server {
namespace {

std::vector<std::string> drain(ReplyQueue& q) {
  std::vector<std::string> out;
  q.drain([&](ReplyQueue::Slot& s) { out.push_back(s.data); });
  return out;
}

void fill(ReplyQueue& q, uint64_t seq, std::string reply) {
  q.at(seq).data = std::move(reply);
  q.at(seq).ready = true;
}

TEST_CASE("slots filled out of order leave in request order", "[server][reply_queue]") {
  ReplyQueue q;
  uint64_t a, b, c;
  q.push({}, a);
  q.push({}, b);
  q.push({}, c);
  CHECK(b == a + 1);
  CHECK(c == b + 1);
  fill(q, c, "C");
  fill(q, b, "B");
  CHECK(drain(q).empty());  // the head is not ready: nothing may overtake it
  CHECK(q.size() == 3);
  fill(q, a, "A");
  CHECK(drain(q) == std::vector<std::string>{"A", "B", "C"});
  CHECK(q.empty());
  CHECK(q.head_seq() == c + 1);
}

TEST_CASE("sequence numbers keep naming their slot as the head moves", "[server][reply_queue]") {
  ReplyQueue q;
  uint64_t seqs[100];
  for (auto& s : seqs) q.push({}, s);
  // Complete every even slot, then the odd ones in reverse: only whole prefixes leave.
  for (int i = 0; i < 100; i += 2) fill(q, seqs[i], std::to_string(i));
  CHECK(drain(q) == std::vector<std::string>{"0"});
  for (int i = 99; i >= 1; i -= 2) {
    REQUIRE(q.contains(seqs[i]));
    fill(q, seqs[i], std::to_string(i));
  }
  const auto out = drain(q);
  REQUIRE(out.size() == 99);
  for (int i = 1; i < 100; ++i) CHECK(out[static_cast<size_t>(i - 1)] == std::to_string(i));
  CHECK_FALSE(q.contains(seqs[0]));
}

TEST_CASE("a head that leaves unparked lets the next ones go", "[server][reply_queue]") {
  ReplyQueue q;
  uint64_t a, b;
  RequestMeta meta;
  meta.argc = 2;
  q.push(meta, a);
  q.push({}, b);
  CHECK(q.at(a).meta.argc == 2);
  fill(q, b, "B");
  CHECK(q.is_head(a));
  q.pop_head();  // the client wrote the head's reply straight through
  CHECK(drain(q) == std::vector<std::string>{"B"});
}

}  // namespace
}  // namespace lockstep::server

#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lockstep/resp/resp.h"

using lockstep::resp::ParserLimits;
using lockstep::resp::ReplyScanner;
using lockstep::resp::RequestParser;
using Status = RequestParser::Status;

namespace {

// Feeds `input` one chunk at a time, cutting at `cut`, the way a socket may deliver it, keeping
// the unconsumed tail like the client connection does. Returns every parsed request.
std::vector<std::vector<std::string>> feed(const std::string& input, size_t cut,
                                           const ParserLimits& limits,
                                           std::string* error = nullptr) {
  RequestParser p(&limits);
  std::vector<std::vector<std::string>> out;
  std::string buf;
  size_t fed = 0;
  while (fed < input.size() || !buf.empty()) {
    size_t n = std::min(cut, input.size() - fed);
    buf.append(input, fed, n);
    fed += n;
    size_t off = 0;
    while (off < buf.size()) {
      auto st = p.parse(buf.data() + off, buf.size() - off);
      if (st == Status::kNeedMore) break;
      if (st == Status::kError) {
        if (error) *error = std::string(p.error());
        return out;
      }
      std::vector<std::string> args;
      for (auto a : p.args()) args.emplace_back(a);
      if (!args.empty()) out.push_back(args);
      off += p.consumed();
    }
    buf.erase(0, off);
    if (n == 0 && fed >= input.size()) break;
  }
  return out;
}

}  // namespace

TEST_CASE("requests parse identically at every byte boundary", "[resp]") {
  ParserLimits limits;
  std::string input =
      "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n"  // CRLF inside a bulk is data
      "*1\r\n$4\r\nPING\r\n"
      "*0\r\n"  // empty request, skipped
      "PING inline\r\n"
      "\r\n"                            // empty inline line, skipped
      "*2\r\n$3\r\nGET\r\n$0\r\n\r\n";  // empty argument
  std::vector<std::vector<std::string>> expected = {
      {"SET", "key", "va\r\nl"}, {"PING"}, {"PING", "inline"}, {"GET", ""}};
  for (size_t cut = 1; cut <= input.size(); ++cut) {
    INFO("chunk size " << cut);
    REQUIRE(feed(input, cut, limits) == expected);
  }
}

TEST_CASE("inline commands follow Redis' quoting rules", "[resp]") {
  ParserLimits limits;
  auto one = [&](const std::string& line) {
    auto r = feed(line, line.size(), limits);
    REQUIRE(r.size() == 1);
    return r[0];
  };
  CHECK(one("SET a \"hello world\"\r\n") == std::vector<std::string>{"SET", "a", "hello world"});
  CHECK(one("SET a \"x\\x41\\n\"\n") == std::vector<std::string>{"SET", "a", "xA\n"});
  CHECK(one("SET a 'it\\'s'\r\n") == std::vector<std::string>{"SET", "a", "it's"});
  CHECK(one("  GET   k  \r\n") == std::vector<std::string>{"GET", "k"});
  std::string err;
  feed("SET a \"unterminated\r\n", 100, limits, &err);
  CHECK(err == "Protocol error: unbalanced quotes in request");
  err.clear();
  feed("SET a \"x\"y\r\n", 100, limits, &err);
  CHECK(err == "Protocol error: unbalanced quotes in request");
}

TEST_CASE("malformed requests get Redis' protocol errors", "[resp]") {
  ParserLimits limits;
  limits.max_bulk_bytes = 1024;
  limits.max_args = 100;
  limits.max_inline_bytes = 64;
  auto error_of = [&](const std::string& input) {
    std::string err;
    feed(input, input.size(), limits, &err);
    return err;
  };
  CHECK(error_of("*abc\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*101\r\n") == "Protocol error: invalid multibulk length");
  CHECK(error_of("*1\r\n:1\r\n") == "Protocol error: expected '$', got ':'");
  CHECK(error_of("*1\r\n$-5\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$1025\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$x\r\n") == "Protocol error: invalid bulk length");
  CHECK(error_of("*1\r\n$3\r\nabcXY") == "Protocol error: bulk string not terminated by CRLF");
  CHECK(error_of(std::string(100, 'a')) == "Protocol error: too big inline request");
  CHECK(error_of("*1\n") == "Protocol error: invalid multibulk length");
  // Nesting is not a request.
  CHECK(error_of("*1\r\n*1\r\n$1\r\na\r\n") == "Protocol error: expected '$', got '*'");
}

TEST_CASE("unauthenticated clients get Redis' small limits", "[resp]") {
  ParserLimits limits;
  RequestParser p(&limits);
  std::string big = "*11\r\n";
  CHECK(p.parse(big.data(), big.size(), true) == Status::kError);
  CHECK(p.error() == "Protocol error: unauthenticated multibulk length");
  RequestParser q(&limits);
  std::string bulk = "*2\r\n$4\r\nAUTH\r\n$16385\r\n";
  CHECK(q.parse(bulk.data(), bulk.size(), true) == Status::kError);
  CHECK(q.error() == "Protocol error: unauthenticated bulk length");
  RequestParser r(&limits);
  CHECK(r.parse(bulk.data(), bulk.size(), false) == Status::kNeedMore);
}

TEST_CASE("a large request arriving slowly is scanned once", "[resp]") {
  ParserLimits limits;
  std::string input =
      "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n" + std::string(100000, 'v') + "\r\n";
  RequestParser p(&limits);
  std::string buf;
  Status st = Status::kNeedMore;
  for (size_t i = 0; i < input.size(); i += 1000) {
    buf.append(input, i, 1000);
    st = p.parse(buf.data(), buf.size());
    if (st != Status::kNeedMore) break;
    // Everything up to the value's header is consumed by the scan already.
    if (buf.size() > 30) CHECK(p.scanned() >= 27);
  }
  REQUIRE(st == Status::kComplete);
  CHECK(p.args()[2].size() == 100000);
  CHECK(p.consumed() == input.size());
}

TEST_CASE("reply scanner frames RESP2 and RESP3 replies at every byte boundary", "[resp]") {
  std::vector<std::string> replies = {
      "+OK\r\n",
      "-ERR wrong\r\n",
      ":42\r\n",
      "$5\r\nhe\r\no\r\n",
      "$-1\r\n",
      "*-1\r\n",
      "*0\r\n",
      "*3\r\n$1\r\na\r\n*2\r\n:1\r\n$-1\r\n+x\r\n",
      "%2\r\n+a\r\n:1\r\n+b\r\n*1\r\n_\r\n",
      "~2\r\n#t\r\n,3.14\r\n",
      "(12345678901234567890\r\n",
      "=15\r\ntxt:Some string\r\n",
      "!8\r\nSYNTAX x\r\n",
      ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n",
      "|1\r\n+ttl\r\n:3\r\n$3\r\nval\r\n",  // attribute, then the value it annotates
  };
  std::string all;
  for (auto& r : replies) all += r;
  for (size_t cut = 1; cut <= all.size(); ++cut) {
    INFO("chunk size " << cut);
    ReplyScanner s;
    std::string buf;
    size_t fed = 0, next = 0;
    while (next < replies.size()) {
      int64_t n = s.scan(buf.data(), buf.size());
      REQUIRE(n >= 0);
      if (n == 0) {
        REQUIRE(fed < all.size());
        size_t k = std::min(cut, all.size() - fed);
        buf.append(all, fed, k);
        fed += k;
        continue;
      }
      REQUIRE(buf.substr(0, static_cast<size_t>(n)) == replies[next]);
      buf.erase(0, static_cast<size_t>(n));
      ++next;
    }
  }
}

TEST_CASE("reply scanner rejects garbage", "[resp]") {
  ReplyScanner s;
  std::string bad = "?what\r\n";
  CHECK(s.scan(bad.data(), bad.size()) == -1);
  ReplyScanner t;
  std::string badlen = "$abc\r\n";
  CHECK(t.scan(badlen.data(), badlen.size()) == -1);
}

TEST_CASE("split_array and integers", "[resp]") {
  std::vector<std::string_view> elems;
  int64_t n = 0;
  REQUIRE(lockstep::resp::split_array("*3\r\n$1\r\na\r\n$-1\r\n*1\r\n:2\r\n", elems, n));
  CHECK(n == 3);
  CHECK(elems[0] == "$1\r\na\r\n");
  CHECK(elems[1] == "$-1\r\n");
  CHECK(elems[2] == "*1\r\n:2\r\n");
  CHECK_FALSE(lockstep::resp::split_array("-ERR x\r\n", elems, n));
  int64_t v = 0;
  CHECK(lockstep::resp::parse_integer_reply(":-17\r\n", v));
  CHECK(v == -17);
  CHECK_FALSE(lockstep::resp::parse_int64("007", v));
  CHECK_FALSE(lockstep::resp::parse_int64("-0", v));
  CHECK_FALSE(lockstep::resp::parse_int64("99999999999999999999", v));
  CHECK(lockstep::resp::parse_int64("-9223372036854775808", v));
}

TEST_CASE("writers", "[resp]") {
  std::string out;
  lockstep::resp::append_error(out, "ERR a\r\nb");
  CHECK(out == "-ERR a  b\r\n");
  out.clear();
  std::string_view args[] = {"SET", "k", ""};
  lockstep::resp::append_command(out, args);
  CHECK(out == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
  out.clear();
  lockstep::resp::append_map_header(out, 2, 2);
  lockstep::resp::append_map_header(out, 2, 3);
  lockstep::resp::append_null(out, 2);
  lockstep::resp::append_null(out, 3);
  CHECK(out == "*4\r\n%2\r\n$-1\r\n_\r\n");
}

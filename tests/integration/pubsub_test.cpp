// Pub/sub through Lockstep (issue 3). Where the behaviour is Redis' own (confirmations and their
// counts, error texts, PING in subscribed mode, RESP3 pushes, message frames) the bytes are
// compared with a direct redis-server. Delivery is checked across workers and backends: pattern
// subscribers get each message exactly once, shard channels work, per-channel order holds, a
// message published right after a confirmation is never lost, subscribers that leave (or RESET)
// are unsubscribed, a restarted backend is subscribed again, and 200 subscribers all get
// everything.
//
// Documented restrictions are not asserted against: PUBLISH / PUBSUB NUMSUB count Lockstep's
// subscriber connections (one per worker with subscribers), and messages on different channels
// may arrive in another order than published.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

constexpr Millis kRead = 3s;

// Raw RESP made readable in assertion messages: \r\n and other control bytes escaped.
std::string visible(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (std::isprint(c)) {
      out += static_cast<char>(c);
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  return out;
}

std::string bulk(std::string_view s) {
  return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

// A RESP2 array ('*') or RESP3 push ('>') of bulk strings, ending with `tail` (raw, may be empty).
std::string frame(char type, const std::vector<std::string>& parts, size_t extra = 0,
                  const std::string& tail = {}) {
  std::string out = type + std::to_string(parts.size() + extra) + "\r\n";
  for (const auto& p : parts) out += bulk(p);
  return out + tail;
}

std::string message(std::string_view ch, std::string_view payload, char type = '*') {
  return frame(type, {"message", std::string(ch), std::string(payload)});
}
std::string pmessage(std::string_view pat, std::string_view ch, std::string_view payload,
                     char type = '*') {
  return frame(type, {"pmessage", std::string(pat), std::string(ch), std::string(payload)});
}
std::string smessage(std::string_view ch, std::string_view payload, char type = '*') {
  return frame(type, {"smessage", std::string(ch), std::string(payload)});
}
// "subscribe"/"psubscribe"/... confirmation with its count.
std::string confirmation(std::string_view kind, std::string_view name, long long count) {
  return frame('*', {std::string(kind), std::string(name)}, 1,
               ":" + std::to_string(count) + "\r\n");
}

ClusterOptions two_workers(const std::string& extra = {}) {
  ClusterOptions o;
  o.extra_yaml = "workers: 2\n" + extra;
  return o;
}

// A raw connection for subscribers: replies and messages arrive unasked, so every read has a
// deadline.
class Conn {
 public:
  explicit Conn(uint16_t port) : raw_(port) {}
  void send(const std::vector<std::string>& argv) { REQUIRE(raw_.send(encode_command(argv))); }
  void send_bytes(const std::string& bytes) { REQUIRE(raw_.send(bytes)); }
  // The next reply's raw bytes; "<none>" when none arrived complete in time.
  std::string next(Millis timeout = kRead) { return or_none(raw_.read_raw_reply(timeout)); }
  std::vector<std::string> call(const std::vector<std::string>& argv, size_t replies = 1) {
    send(argv);
    std::vector<std::string> out;
    for (size_t i = 0; i < replies; ++i) out.push_back(next());
    return out;
  }
  RawConn& raw() { return raw_; }

 private:
  RawConn raw_;
};

// The same commands on a connection to a reference redis-server and one to Lockstep.
class Twin {
 public:
  Twin(uint16_t reference_port, uint16_t proxy_port) : ref_(reference_port), px_(proxy_port) {}

  // Sends argv to both, reads `n` replies from each and CHECKs they are byte-identical.
  // Returns Lockstep's replies.
  std::vector<std::string> same(const std::vector<std::string>& argv, size_t n = 1) {
    ref_.send(argv);
    px_.send(argv);
    return read_same(show(argv), n);
  }
  // As same() for a pipeline sent in one write.
  std::vector<std::string> same_pipeline(const std::vector<std::vector<std::string>>& cmds,
                                         size_t n) {
    std::string bytes, what;
    for (const auto& c : cmds) {
      bytes += encode_command(c);
      what += show(c) + "; ";
    }
    ref_.send_bytes(bytes);
    px_.send_bytes(bytes);
    return read_same(what, n);
  }
  std::vector<std::string> read_same(const std::string& what, size_t n) {
    std::vector<std::string> out;
    for (size_t i = 0; i < n; ++i) {
      const std::string r = ref_.next(), p = px_.next();
      INFO(what << " -- reply " << i + 1 << " of " << n);
      CHECK(visible(p) == visible(r));
      out.push_back(p);
    }
    return out;
  }
  // For UNSUBSCRIBE / PUNSUBSCRIBE / SUNSUBSCRIBE without names: Redis walks its dict, so the
  // order of the names is not defined. The frames (without the count) must be the same set, and
  // the counts the same sequence.
  void same_unordered(const std::vector<std::string>& argv, size_t n) {
    ref_.send(argv);
    px_.send(argv);
    std::vector<std::string> rf, pf, rc, pc;
    for (size_t i = 0; i < n; ++i) {
      split(ref_.next(), rf, rc);
      split(px_.next(), pf, pc);
    }
    std::sort(rf.begin(), rf.end());
    std::sort(pf.begin(), pf.end());
    INFO(show(argv) << " (" << n << " replies, any order)");
    CHECK(pf == rf);
    CHECK(pc == rc);
  }
  Conn& ref() { return ref_; }
  Conn& px() { return px_; }

 private:
  static void split(const std::string& raw, std::vector<std::string>& frames,
                    std::vector<std::string>& counts) {
    const size_t colon = raw.rfind(':');
    if (colon == std::string::npos) {
      frames.push_back(visible(raw));
      counts.push_back("?");
      return;
    }
    frames.push_back(visible(raw.substr(0, colon)));
    counts.push_back(visible(raw.substr(colon)));
  }
  Conn ref_, px_;
};

// One pub/sub message, parsed.
struct Msg {
  std::string kind, pattern, channel, payload;
  // "message <ch>", "pmessage <pattern> <ch>", "smessage <ch>": what per-channel order is kept
  // for.
  std::string key() const {
    return kind == "pmessage" ? kind + " " + pattern + " " + channel : kind + " " + channel;
  }
};

std::optional<Msg> parse_message(const std::string& raw) {
  size_t consumed = 0;
  Reply r;
  if (parse_reply(raw, consumed, r) != ParseStatus::kOk) return std::nullopt;
  if (r.type != Reply::Type::kArray && r.type != Reply::Type::kPush) return std::nullopt;
  const auto& e = r.elements;
  for (const auto& x : e)
    if (!x.is_string()) return std::nullopt;
  if (e.size() == 3 && (e[0].str == "message" || e[0].str == "smessage"))
    return Msg{e[0].str, {}, e[1].str, e[2].str};
  if (e.size() == 4 && e[0].str == "pmessage") return Msg{e[0].str, e[1].str, e[2].str, e[3].str};
  return std::nullopt;
}

// What one subscriber connection received: payloads per message key in arrival order, and
// anything that was not a message (raw bytes).
struct Inbox {
  std::map<std::string, std::vector<std::string>> by_key;
  std::vector<std::string> other;
  size_t messages = 0;
};

// Reads frames into `in` until `done(in)` holds or `timeout` passes. True when done.
bool receive(Conn& c, Inbox& in, const std::function<bool(const Inbox&)>& done, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done(in)) {
    const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    auto raw = c.raw().read_raw_reply(left);
    if (!raw) return done(in);
    if (auto m = parse_message(*raw)) {
      in.by_key[m->key()].push_back(m->payload);
      ++in.messages;
    } else {
      in.other.push_back(*raw);
    }
  }
  return true;
}

// Done once every key in `ends` has received its final payload.
std::function<bool(const Inbox&)> ended(const std::map<std::string, std::string>& ends) {
  return [ends](const Inbox& in) {
    for (const auto& [key, last] : ends) {
      auto it = in.by_key.find(key);
      if (it == in.by_key.end() || it->second.empty() || it->second.back() != last) return false;
    }
    return true;
  };
}

std::string show_inbox(const Inbox& in) {
  std::string s;
  for (const auto& [k, v] : in.by_key) {
    s += k + ": [";
    for (size_t i = 0; i < v.size() && i < 12; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 12) s += ", ... (" + std::to_string(v.size()) + ")";
    s += "] ";
  }
  for (const auto& o : in.other) s += "other: " + visible(o) + " ";
  return s;
}

std::vector<std::string> sorted_strings(const Reply& r) {
  auto v = r.as_strings();
  std::sort(v.begin(), v.end());
  return v;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool integer_at_least(const Reply& r, long long n) {
  return r.is_integer() && r.integer >= n;
}

}  // namespace

TEST_CASE("pub/sub confirmations, counts and RESP2 subscribed mode are Redis' own",
          "[integration][issue3][pubsub]") {
  RedisServer reference;
  Cluster cluster;
  Twin t(reference.port(), cluster.port());
  Client ref_pub = reference.client(), px_pub = cluster.client();
  const std::string a = cluster.key_on(0, "ch"), b = cluster.key_on(1, "ch"),
                    c = cluster.key_on(2, "ch"), d = cluster.key_on(1, "ch", 1);
  const std::string s0 = cluster.key_on(0, "sh"), s2 = cluster.key_on(2, "sh");

  // Subscribed to nothing: a nil name and a count of 0.
  CHECK(t.same({"UNSUBSCRIBE"}).at(0) == "*3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n");
  t.same({"PUNSUBSCRIBE"});
  t.same({"SUNSUBSCRIBE"});
  t.same({"UNSUBSCRIBE", "never"});
  t.same({"SUBSCRIBE"});  // arity error
  t.same({"PSUBSCRIBE"});
  t.same({"SSUBSCRIBE"});

  // Several names in one command, re-subscribing, a name twice in one command.
  CHECK(t.same({"SUBSCRIBE", a, b, c}, 3) ==
        std::vector<std::string>{confirmation("subscribe", a, 1), confirmation("subscribe", b, 2),
                                 confirmation("subscribe", c, 3)});
  t.same({"SUBSCRIBE", a});
  t.same({"subscribe", b, d, d}, 3);
  t.same({"PSUBSCRIBE", "pat:*", "pat:?x"}, 2);
  t.same({"PSUBSCRIBE", "pat:*"});
  t.same({"SSUBSCRIBE", s0, s2}, 2);  // shard counts are separate
  t.same({"SSUBSCRIBE", s0});

  // RESP2 subscribed mode: PING answers as a message, other commands are refused.
  CHECK(t.same({"PING"}).at(0) == "*2\r\n$4\r\npong\r\n$0\r\n\r\n");
  t.same({"PING", "hello"});
  t.same({"ping", "a", "b"});  // arity error
  CHECK(t.same({"GET", "k"}).at(0) ==
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context\r\n");
  t.same({"set", "k", "v"});
  t.same({"PUBLISH", a, "x"});
  t.same({"PUBSUB", "CHANNELS"});
  t.same({"CLIENT", "ID"});
  t.same({"ECHO", "x"});
  t.same({"nosuchcommand", "x"});
  t.same_pipeline({{"GET", "k"}, {"PING", "p"}, {"SUBSCRIBE", a}}, 3);

  // Messages: the frames are Redis' own.
  auto publish_both = [&](const std::vector<std::string>& argv) {
    CHECK(integer_at_least(ref_pub.command(argv), 1));
    Reply r = px_pub.command(argv);
    INFO(show(argv) << " through Lockstep: " << r);
    CHECK(integer_at_least(r, 1));
  };
  publish_both({"PUBLISH", a, "hello a"});
  CHECK(t.read_same("message on " + a, 1).at(0) == message(a, "hello a"));
  publish_both({"PUBLISH", d, ""});
  t.read_same("empty message on " + d, 1);
  publish_both({"PUBLISH", "pat:zz", "to the pattern"});
  CHECK(t.read_same("pmessage", 1).at(0) == pmessage("pat:*", "pat:zz", "to the pattern"));
  publish_both({"PUBLISH", "pat:1x", "two patterns"});
  // Both patterns match: two pmessages, in the order Redis sends them (patterns dict order), so
  // compare as a set.
  {
    std::vector<std::string> r{t.ref().next(), t.ref().next()};
    std::vector<std::string> p{t.px().next(), t.px().next()};
    CHECK(sorted(p) == sorted(r));
  }
  publish_both({"SPUBLISH", s2, "shard"});
  CHECK(t.read_same("smessage", 1).at(0) == smessage(s2, "shard"));

  // Unsubscribing names, unknown names, then everything.
  t.same({"UNSUBSCRIBE", a});
  t.same({"UNSUBSCRIBE", "never"});
  t.same({"UNSUBSCRIBE", b, b}, 2);
  t.same_unordered({"UNSUBSCRIBE"}, 2);  // c, d
  t.same({"GET", "k"});                  // patterns and shard channels left: still refused
  t.same({"PUNSUBSCRIBE", "pat:nope"});
  t.same_unordered({"PUNSUBSCRIBE"}, 2);
  t.same({"GET", "k"});  // shard channels left
  t.same({"PING"});
  t.same({"SUNSUBSCRIBE", s0});
  t.same_unordered({"SUNSUBSCRIBE"}, 1);
  t.same({"SUNSUBSCRIBE"});  // nothing left: nil name
  t.same({"UNSUBSCRIBE"});
  t.same({"PUNSUBSCRIBE"});

  // Normal mode again; a message published now is not delivered (the next reply is PONG).
  CHECK(ref_pub.command({"PUBLISH", a, "x"}) == Reply::integer_(0));
  px_pub.command({"PUBLISH", a, "after unsubscribe"});
  CHECK(t.same({"PING"}).at(0) == "+PONG\r\n");
  t.same({"SET", "k", "v"});
  CHECK(t.same({"GET", "k"}).at(0) == "$1\r\nv\r\n");
  t.same({"PING", "x"});

  // Subscribe again after having left subscribed mode, then leave with one UNSUBSCRIBE.
  t.same({"SUBSCRIBE", a, b}, 2);
  t.same({"GET", "k"});
  t.same({"UNSUBSCRIBE", a, b}, 2);
  t.same({"GET", "k"});
  CHECK(cluster.proxy().running());
}

TEST_CASE("pub/sub with binary and empty names, big payloads, 1,000 channels, QUIT",
          "[integration][issue3][pubsub]") {
  RedisServer reference;
  Cluster cluster(two_workers());
  Twin t(reference.port(), cluster.port());
  Client ref_pub = reference.client(), px_pub = cluster.client();
  auto publish_both = [&](const std::vector<std::string>& argv) {
    CHECK(integer_at_least(ref_pub.command(argv), 1));
    Reply r = px_pub.command(argv);
    INFO(show(argv).substr(0, 200) << " through Lockstep: " << r);
    CHECK(integer_at_least(r, 1));
  };
  const std::string bin("b\r\n\0*3\r\n$1 {x}", 14), empty;
  const std::string pay("\0\r\n*1\r\n$-1\r\n>3\r\n", 17);
  t.same({"SUBSCRIBE", bin, empty}, 2);
  t.same({"PSUBSCRIBE", std::string("p\0*", 3)});
  t.same({"SSUBSCRIBE", bin});
  publish_both({"PUBLISH", bin, pay});
  CHECK(t.read_same("binary message", 1).at(0) == message(bin, pay));
  publish_both({"PUBLISH", empty, empty});
  t.read_same("empty channel and payload", 1);
  publish_both({"PUBLISH", std::string("p\0zz", 4), pay});
  t.read_same("binary pmessage", 1);
  publish_both({"SPUBLISH", bin, pay});
  t.read_same("binary smessage", 1);
  // Payloads larger than any socket read: the hub must reassemble the frame.
  const std::string big(1 << 20, 'x'), mid(100'000, 'y');
  publish_both({"PUBLISH", bin, big});
  publish_both({"PUBLISH", bin, mid});
  t.read_same("1 MiB message, then 100 kB message", 2);
  t.same_unordered({"UNSUBSCRIBE"}, 2);
  t.same({"PUNSUBSCRIBE", std::string("p\0*", 3)});
  t.same({"SUNSUBSCRIBE", bin});

  // 1,000 channels (on all backends) in one command, and all of them left at once.
  std::vector<std::string> sub{"SUBSCRIBE"}, names;
  for (int i = 0; i < 1000; ++i) names.push_back("many:" + std::to_string(i));
  sub.insert(sub.end(), names.begin(), names.end());
  auto confirmations = t.same(sub, names.size());
  CHECK(confirmations.back() == confirmation("subscribe", names.back(), 1000));
  CHECK(sorted_strings(px_pub("PUBSUB", "CHANNELS", "many:*")) == sorted(names));
  publish_both({"PUBLISH", "many:500", "m"});
  t.read_same("message on many:500", 1);
  t.same_unordered({"UNSUBSCRIBE"}, names.size());
  CHECK(wait_until([&] { return px_pub("PUBSUB", "CHANNELS") == Reply::array({}); }, 5s));
  CHECK(px_pub("PUBSUB", "CHANNELS") == Reply::array({}));

  // QUIT in subscribed mode: +OK, the connection closes, the subscription goes.
  t.same({"SUBSCRIBE", "quit:ch"});
  CHECK(t.same({"QUIT"}).at(0) == "+OK\r\n");
  CHECK(t.ref().raw().closed_by_peer(kRead));
  CHECK(t.px().raw().closed_by_peer(kRead));
  CHECK(wait_until([&] { return px_pub("PUBSUB", "CHANNELS") == Reply::array({}); }, 5s));
  CHECK(px_pub("PUBSUB", "CHANNELS") == Reply::array({}));
}

TEST_CASE("pub/sub: a PUBLISH on any one backend reaches each pattern subscriber once",
          "[integration][issue3][pubsub]") {
  // Documented: a PUBLISH sent directly to a backend reaches Lockstep's pattern subscribers
  // (patterns are subscribed on every backend), exactly once.
  Cluster cluster(two_workers());
  std::vector<Conn> psubs;
  for (int i = 0; i < 4; ++i) {
    psubs.emplace_back(cluster.port());
    CHECK(psubs.back().call({"PSUBSCRIBE", "direct:*"}).at(0) ==
          confirmation("psubscribe", "direct:*", 1));
  }
  const std::string ch = "direct:x";
  std::map<std::string, std::string> ends;
  std::vector<std::string> want;
  for (size_t b = 0; b < cluster.size(); ++b) {
    Client direct = cluster.direct(b);
    const std::string payload = "via backend " + std::to_string(b);
    CHECK(integer_at_least(direct("PUBLISH", ch, payload), 1));
    // Wait for this backend's message before the next, so the expected order is defined.
    for (size_t i = 0; i < psubs.size(); ++i) {
      CHECK(visible(psubs[i].next()) == visible(pmessage("direct:*", ch, payload)));
    }
  }
  // And nothing more: the next reply to a PING is the pong.
  for (auto& p : psubs)
    CHECK(visible(p.call({"PING"}).at(0)) == visible("*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
}

TEST_CASE("pub/sub in RESP3: confirmations and messages are pushes, other commands allowed",
          "[integration][issue3][pubsub]") {
  RedisServer reference;
  Cluster cluster;
  Twin t(reference.port(), cluster.port());
  Client ref_pub = reference.client(), px_pub = cluster.client();
  const std::string a = cluster.key_on(0, "r3"), b = cluster.key_on(2, "r3");
  const std::string s1 = cluster.key_on(1, "r3s");

  t.ref().send({"HELLO", "3"});
  t.px().send({"HELLO", "3"});
  Reply ref_hello = or_none(t.ref().raw().read_reply(kRead));
  Reply px_hello = or_none(t.px().raw().read_reply(kRead));
  REQUIRE(ref_hello.type == Reply::Type::kMap);
  INFO("HELLO 3 through Lockstep: " << px_hello);
  REQUIRE(px_hello.type == Reply::Type::kMap);

  CHECK(t.same({"UNSUBSCRIBE"}).at(0) == ">3\r\n$11\r\nunsubscribe\r\n_\r\n:0\r\n");
  t.same({"PUNSUBSCRIBE"});
  t.same({"SUNSUBSCRIBE"});
  CHECK(t.same({"SUBSCRIBE", a, b}, 2).at(1) == ">3\r\n$9\r\nsubscribe\r\n" + bulk(b) + ":2\r\n");
  t.same({"SUBSCRIBE", a});
  t.same({"PSUBSCRIBE", "r3:*"});
  t.same({"SSUBSCRIBE", s1});

  // Normal commands while subscribed.
  t.same({"PING"});
  t.same({"PING", "x"});
  t.same({"SET", "k", "v"});
  t.same({"GET", "k"});
  CHECK(t.same({"GET", "missing"}).at(0) == "_\r\n");
  t.same({"HSET", "h", "f", "1"});
  t.same({"HGETALL", "h"});
  t.same({"ECHO", "e"});

  // Messages are pushes, byte for byte as Redis sends them.
  auto publish_both = [&](const std::vector<std::string>& argv) {
    CHECK(integer_at_least(ref_pub.command(argv), 1));
    Reply r = px_pub.command(argv);
    INFO(show(argv) << " through Lockstep: " << r);
    CHECK(integer_at_least(r, 1));
  };
  publish_both({"PUBLISH", a, "m1"});
  // `a` matches r3:* as well: message, then pmessage (both from the backend owning `a`).
  CHECK(t.read_same("message + pmessage on " + a, 2) ==
        std::vector<std::string>{message(a, "m1", '>'), pmessage("r3:*", a, "m1", '>')});
  publish_both({"PUBLISH", "r3:zzz", "m2"});
  CHECK(t.read_same("pmessage", 1).at(0) == pmessage("r3:*", "r3:zzz", "m2", '>'));
  publish_both({"SPUBLISH", s1, "m3"});
  CHECK(t.read_same("smessage", 1).at(0) == smessage(s1, "m3", '>'));

  t.same({"PUNSUBSCRIBE", "r3:*"});
  // A subscriber may publish itself in RESP3. Redis queues the push before the PUBLISH reply;
  // through Lockstep the message comes back from the backend's subscriber connection, so only
  // the set of frames is compared.
  {
    t.ref().send({"PUBLISH", b, "self"});
    t.px().send({"PUBLISH", b, "self"});
    std::vector<std::string> r{t.ref().next(), t.ref().next()};
    std::vector<std::string> p{t.px().next(), t.px().next()};
    INFO("reference: " << visible(r[0]) << " | " << visible(r[1]));
    INFO("lockstep:  " << visible(p[0]) << " | " << visible(p[1]));
    const std::string push = message(b, "self", '>');
    CHECK(std::count(p.begin(), p.end(), push) == 1);
    const auto reply = p[0] == push ? p[1] : p[0];
    CHECK((reply.size() >= 4 && reply[0] == ':' && reply != ":0\r\n"));
  }

  t.same({"UNSUBSCRIBE", a});
  t.same_unordered({"UNSUBSCRIBE"}, 1);
  t.same({"SUNSUBSCRIBE", s1});
  t.same({"GET", "missing"});

  // RESET while subscribed in RESP3: back to RESP2, nothing subscribed.
  t.same({"SUBSCRIBE", a});
  t.same({"PSUBSCRIBE", "r3:*"});
  CHECK(t.same({"RESET"}).at(0) == "+RESET\r\n");
  CHECK(t.same({"GET", "missing"}).at(0) == "$-1\r\n");
  CHECK(t.same({"PING"}).at(0) == "+PONG\r\n");
}

TEST_CASE("pub/sub delivery reaches every subscriber on every worker, patterns exactly once",
          "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  std::vector<std::string> ch, sh;
  for (size_t b = 0; b < cluster.size(); ++b) {
    ch.push_back(cluster.key_on(b, "dlv"));
    sh.push_back(cluster.key_on(b, "dsh"));
  }
  const std::string pat = "dlv:*";
  // Connections are handed to the workers round-robin: six of each kind covers both workers.
  std::vector<Conn> subs, psubs, ssubs;
  for (int i = 0; i < 6; ++i) {
    subs.emplace_back(cluster.port());
    psubs.emplace_back(cluster.port());
    ssubs.emplace_back(cluster.port());
  }
  for (auto& s : subs) {
    CHECK(s.call({"SUBSCRIBE", ch[0], ch[1], ch[2]}, 3) ==
          std::vector<std::string>{confirmation("subscribe", ch[0], 1),
                                   confirmation("subscribe", ch[1], 2),
                                   confirmation("subscribe", ch[2], 3)});
  }
  for (auto& s : psubs)
    CHECK(s.call({"PSUBSCRIBE", pat}).at(0) == confirmation("psubscribe", pat, 1));
  for (auto& s : ssubs) {
    CHECK(s.call({"SSUBSCRIBE", sh[0], sh[1], sh[2]}, 3) ==
          std::vector<std::string>{confirmation("ssubscribe", sh[0], 1),
                                   confirmation("ssubscribe", sh[1], 2),
                                   confirmation("ssubscribe", sh[2], 3)});
  }

  Client pub = cluster.client();
  {
    // One subscriber connection per worker with subscribers (documented): 1 or 2 here.
    Reply n = pub("PUBSUB", "NUMSUB", ch[0]);
    INFO("PUBSUB NUMSUB " << ch[0] << ": " << n);
    REQUIRE(n.elements.size() == 2);
    CHECK(n.elements[1].integer >= 1);
    CHECK(n.elements[1].integer <= 2);
  }

  const int kRounds = 5;
  for (int r = 0; r < kRounds; ++r) {
    for (size_t b = 0; b < 3; ++b) {
      const std::string payload = "m" + std::to_string(r);
      Reply p = pub("PUBLISH", ch[b], payload);
      INFO("PUBLISH " << ch[b] << ": " << p);
      CHECK(integer_at_least(p, 1));
      Reply s = pub("SPUBLISH", sh[b], payload);
      INFO("SPUBLISH " << sh[b] << ": " << s);
      CHECK(integer_at_least(s, 1));
    }
  }
  // A final message on every channel: once it is in, any duplicate of an earlier message (which
  // would come from the same backend, before it) would have arrived too.
  for (size_t b = 0; b < 3; ++b) {
    CHECK(integer_at_least(pub("PUBLISH", ch[b], "end"), 1));
    CHECK(integer_at_least(pub("SPUBLISH", sh[b], "end"), 1));
  }
  std::vector<std::string> expected;
  for (int r = 0; r < kRounds; ++r) expected.push_back("m" + std::to_string(r));
  expected.push_back("end");

  auto check_all = [&](std::vector<Conn>& conns, const std::function<std::string(size_t)>& key) {
    std::map<std::string, std::string> ends;
    std::map<std::string, std::vector<std::string>> want;
    for (size_t b = 0; b < 3; ++b) {
      ends[key(b)] = "end";
      want[key(b)] = expected;
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      Inbox in;
      bool done = receive(conns[i], in, ended(ends), 5s);
      INFO("subscriber " << i << " received: " << show_inbox(in));
      CHECK(done);
      CHECK(in.by_key == want);
      CHECK(in.other.empty());
    }
  };
  check_all(subs, [&](size_t b) { return "message " + ch[b]; });
  check_all(psubs, [&](size_t b) { return "pmessage " + pat + " " + ch[b]; });
  check_all(ssubs, [&](size_t b) { return "smessage " + sh[b]; });
  // Nothing more is pending: a PING on each connection is answered next (no late duplicates).
  for (auto* group : {&subs, &psubs, &ssubs}) {
    for (auto& s : *group) {
      CHECK(visible(s.call({"PING"}).at(0)) == visible("*2\r\n$4\r\npong\r\n$0\r\n\r\n"));
    }
  }
  CHECK(cluster.proxy().running());
}

TEST_CASE("pub/sub keeps per-channel order over 1,000 messages", "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  const std::string a = cluster.key_on(0, "ord"), b = cluster.key_on(2, "ord");
  Conn sub(cluster.port()), psub(cluster.port());
  sub.call({"SUBSCRIBE", a, b}, 2);
  CHECK(psub.call({"PSUBSCRIBE", "ord:*"}).at(0) == confirmation("psubscribe", "ord:*", 1));

  const int kMessages = 1000;
  std::vector<std::vector<std::string>> cmds;
  std::vector<std::string> expected;
  for (int i = 0; i < kMessages; ++i) {
    expected.push_back(std::to_string(i));
    cmds.push_back({"PUBLISH", a, std::to_string(i)});
    cmds.push_back({"PUBLISH", b, std::to_string(i)});
  }
  Client pub = cluster.client();
  auto replies = pub.pipeline(cmds);
  REQUIRE(replies.size() == cmds.size());
  size_t bad = 0;
  for (const auto& r : replies)
    if (!integer_at_least(r, 1)) ++bad;
  CHECK(bad == 0);

  {
    Inbox in;
    bool done = receive(
        sub, in, [&](const Inbox& x) { return x.messages >= 2 * kMessages || !x.other.empty(); },
        10s);
    INFO(show_inbox(in));
    CHECK(done);
    CHECK(in.other.empty());
    CHECK(in.by_key["message " + a] == expected);
    CHECK(in.by_key["message " + b] == expected);
  }
  {
    Inbox in;
    bool done = receive(
        psub, in, [&](const Inbox& x) { return x.messages >= 2 * kMessages || !x.other.empty(); },
        10s);
    INFO(show_inbox(in));
    CHECK(done);
    CHECK(in.other.empty());
    CHECK(in.by_key["pmessage ord:* " + a] == expected);
    CHECK(in.by_key["pmessage ord:* " + b] == expected);
  }
}

TEST_CASE("pub/sub: a message published right after the confirmation is delivered",
          "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  Client pub = cluster.client();
  // Four connections: both workers, and two subscribers of one worker subscribing to the same
  // fresh channel at once (the second waits for the first one's backend confirmation).
  std::vector<Conn> subs;
  for (int i = 0; i < 4; ++i) subs.emplace_back(cluster.port());

  struct Kind {
    const char* sub;
    const char* unsub;
    const char* publish;
    const char* confirm;
    const char* unconfirm;
    const char* message;
  };
  const Kind kinds[] = {
      {"SUBSCRIBE", "UNSUBSCRIBE", "PUBLISH", "subscribe", "unsubscribe", "message"},
      {"SSUBSCRIBE", "SUNSUBSCRIBE", "SPUBLISH", "ssubscribe", "sunsubscribe", "smessage"},
      {"PSUBSCRIBE", "PUNSUBSCRIBE", "PUBLISH", "psubscribe", "punsubscribe", "pmessage"}};
  int lost = 0;
  for (const Kind& k : kinds) {
    const bool pattern = std::string(k.message) == "pmessage";
    for (int i = 0; i < 50; ++i) {
      const std::string base = std::string("first:") + k.confirm + ":" + std::to_string(i);
      const std::string name = pattern ? base + ":*" : base;
      const std::string channel = pattern ? base + ":x" : base;
      const std::string payload = "first " + std::to_string(i);
      // Alone (i even: one subscriber; odd: all four at once).
      const size_t n = i % 2 == 0 ? 1 : subs.size();
      const size_t first = static_cast<size_t>(i / 2) % subs.size();
      std::vector<Conn*> who;
      for (size_t j = 0; j < n; ++j) who.push_back(&subs[(first + j) % subs.size()]);
      for (Conn* s : who) s->send({k.sub, name});
      for (Conn* s : who) {
        const std::string got = s->next();
        INFO(k.sub << " " << name);
        REQUIRE(visible(got) == visible(confirmation(k.confirm, name, 1)));
      }
      Reply r = pub(k.publish, channel, payload);
      INFO(k.publish << " " << channel << ": " << r);
      CHECK(integer_at_least(r, 1));
      const std::string want =
          pattern ? pmessage(name, channel, payload) : frame('*', {k.message, channel, payload});
      for (Conn* s : who) {
        const std::string got = s->next(2s);
        if (got != want) {
          ++lost;
          FAIL_CHECK(k.sub << " " << name << " then " << k.publish << ": expected " << visible(want)
                           << ", got " << visible(got));
        }
        CHECK(visible(s->call({k.unsub, name}).at(0)) ==
              visible(confirmation(k.unconfirm, name, 0)));
      }
      if (lost > 5) FAIL("too many lost messages");
    }
  }
}

TEST_CASE("pub/sub: the first subscription of a fresh Lockstep loses no message",
          "[integration][issue3][pubsub]") {
  // A worker's subscriber connections are opened by its first SUBSCRIBE. The confirmation must
  // wait for the backend's own confirmation, not merely for the request to be queued. To make a
  // premature confirmation visible, the owning backend is stopped (SIGSTOP) while the client
  // subscribes: no confirmation can honestly arrive until it runs again, and a PUBLISH sent
  // after a premature one would reach the stopped backend before the hub's SUBSCRIBE.
  Cluster cluster;
  LockstepOptions lo;
  lo.extra_yaml = "workers: 1\n";
  struct Case {
    const char* sub;
    const char* publish;
    const char* confirm;
  };
  const Case cases[] = {{"SUBSCRIBE", "PUBLISH", "subscribe"},
                        {"PSUBSCRIBE", "PUBLISH", "psubscribe"},
                        {"SSUBSCRIBE", "SPUBLISH", "ssubscribe"},
                        {"SUBSCRIBE", "PUBLISH", "subscribe"}};
  for (size_t i = 0; i < std::size(cases); ++i) {
    const Case& k = cases[i];
    const bool pattern = std::string(k.confirm) == "psubscribe";
    LockstepProcess proxy(cluster.backend_addresses(), lo);
    const size_t owner = i % cluster.size();
    const std::string channel = cluster.key_on(owner, "fresh" + std::to_string(i));
    const std::string name = pattern ? "fresh" + std::to_string(i) + ":*" : channel;
    const std::string want = pattern               ? pmessage(name, channel, "first")
                             : k.confirm[1] == 's' ? smessage(channel, "first")
                                                   : message(channel, "first");
    Conn pub(proxy.port()), sub(proxy.port());
    // The publisher's connection to the owner is up (nobody subscribed yet: 0).
    CHECK(pub.call({k.publish, channel, "warm"}).at(0) == ":0\r\n");

    cluster.backend(owner).pause();
    sub.send({k.sub, name});
    std::optional<std::string> early = sub.raw().read_raw_reply(300ms);
    INFO(k.sub << " " << name << " with backend " << owner << " stopped; confirmation "
               << (early ? "arrived while it was stopped: " + visible(*early) : "waited"));
    if (early) {
      CHECK(visible(*early) == visible(confirmation(k.confirm, name, 1)));
      pub.send({k.publish, channel, "first"});  // published after the confirmation
      cluster.backend(owner).resume();
    } else {
      cluster.backend(owner).resume();
      CHECK(visible(sub.next()) == visible(confirmation(k.confirm, name, 1)));
      pub.send({k.publish, channel, "first"});
    }
    const std::string published = pub.next();
    INFO(k.publish << " " << channel << ": " << visible(published));
    CHECK(visible(sub.next(2s)) == visible(want));
  }
}

TEST_CASE("pub/sub: unsubscribing and subscribing again at once keeps the subscription",
          "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  Client pub = cluster.client();
  Conn sub(cluster.port());
  for (int i = 0; i < 20; ++i) {
    const std::string ch = "again:" + std::to_string(i);
    // Pending subscription undone and redone before the backend confirmed it.
    sub.send_bytes(encode_command({"SUBSCRIBE", ch}) + encode_command({"UNSUBSCRIBE", ch}) +
                   encode_command({"SUBSCRIBE", ch}));
    CHECK(sub.next() == confirmation("subscribe", ch, 1));
    CHECK(sub.next() == confirmation("unsubscribe", ch, 0));
    CHECK(sub.next() == confirmation("subscribe", ch, 1));
    CHECK(integer_at_least(pub("PUBLISH", ch, "one"), 1));
    CHECK(visible(sub.next(2s)) == visible(message(ch, "one")));
    // Live subscription dropped and taken again in one write.
    sub.send_bytes(encode_command({"UNSUBSCRIBE", ch}) + encode_command({"SUBSCRIBE", ch}));
    CHECK(sub.next() == confirmation("unsubscribe", ch, 0));
    CHECK(sub.next() == confirmation("subscribe", ch, 1));
    CHECK(integer_at_least(pub("PUBLISH", ch, "two"), 1));
    CHECK(visible(sub.next(2s)) == visible(message(ch, "two")));
    CHECK(sub.call({"UNSUBSCRIBE", ch}).at(0) == confirmation("unsubscribe", ch, 0));
  }
}

TEST_CASE("PUBSUB CHANNELS / SHARDCHANNELS / NUMPAT / NUMSUB through Lockstep",
          "[integration][issue3][pubsub]") {
  RedisServer reference;
  Cluster cluster(two_workers());
  Compare cmp(reference.client(), cluster.client());
  Client& q = cmp.proxy();
  // Nothing subscribed: the same answers as Redis.
  cmp.unordered({"PUBSUB", "CHANNELS"});
  cmp.unordered({"PUBSUB", "CHANNELS", "*"});
  cmp.unordered({"PUBSUB", "SHARDCHANNELS"});
  cmp.same({"PUBSUB", "NUMPAT"});
  cmp.same({"PUBSUB", "NUMSUB"});
  cmp.same({"PUBSUB", "NUMSUB", "a", "b"});
  cmp.same({"PUBSUB", "SHARDNUMSUB", "a"});
  cmp.same({"PUBLISH", "nobody", "x"});
  cmp.same({"SPUBLISH", "nobody", "x"});
  cmp.same_error({"PUBSUB"});
  cmp.same_error({"PUBSUB", "NOSUCH"});
  cmp.same_error({"PUBLISH", "x"});

  std::vector<std::string> c, s;
  for (size_t b = 0; b < cluster.size(); ++b) {
    c.push_back(cluster.key_on(b, "cnt"));
    s.push_back(cluster.key_on(b, "cnts"));
  }
  Conn s1(cluster.port()), s2(cluster.port());  // one per worker
  s1.call({"SUBSCRIBE", c[0], c[1]}, 2);
  s2.call({"SUBSCRIBE", c[1], c[2]}, 2);
  s1.call({"PSUBSCRIBE", "cnt:*"});
  s2.call({"PSUBSCRIBE", "other:*", "cnt:*"}, 2);
  s1.call({"SSUBSCRIBE", s[0], s[1]}, 2);
  s2.call({"SSUBSCRIBE", s[2]});

  CHECK(sorted_strings(q("PUBSUB", "CHANNELS")) == sorted(c));
  CHECK(sorted_strings(q("PUBSUB", "CHANNELS", "cnt:*")) == sorted(c));
  CHECK(q("PUBSUB", "CHANNELS", "zzz*") == Reply::array({}));
  CHECK(sorted_strings(q("PUBSUB", "SHARDCHANNELS")) == sorted(s));
  CHECK(sorted_strings(q("PUBSUB", "SHARDCHANNELS", "cnts:*")) == sorted(s));
  CHECK(q("PUBSUB", "NUMPAT") == Reply::integer_(2));  // distinct patterns, as Redis counts
  {
    Reply n = q("PUBSUB", "NUMSUB", c[0], c[1], c[2], "cnt:none");
    INFO(n);
    REQUIRE(n.elements.size() == 8);
    for (size_t i = 0; i < 3; ++i) {
      CHECK(n.elements[2 * i] == Reply::string(c[i]));
      CHECK(integer_at_least(n.elements[2 * i + 1], 1));
    }
    CHECK(n.elements[6] == Reply::string("cnt:none"));
    CHECK(n.elements[7] == Reply::integer_(0));
  }
  {
    Reply n = q("PUBSUB", "SHARDNUMSUB", s[2], "cnts:none");
    INFO(n);
    CHECK(n.elements.size() == 4);
    if (n.elements.size() == 4) {
      CHECK(n.elements[0] == Reply::string(s[2]));
      CHECK(integer_at_least(n.elements[1], 1));
      CHECK(n.elements[2] == Reply::string("cnts:none"));
      CHECK(n.elements[3] == Reply::integer_(0));
    }
  }

  // Leaving changes the lists (the backend unsubscription is asynchronous: wait).
  CHECK(s1.call({"UNSUBSCRIBE", c[0]}).at(0) == confirmation("unsubscribe", c[0], 2));
  CHECK(s1.call({"SUNSUBSCRIBE", s[0]}).at(0) == confirmation("sunsubscribe", s[0], 1));
  CHECK(s2.call({"PUNSUBSCRIBE", "other:*"}).at(0) == confirmation("punsubscribe", "other:*", 3));
  const std::vector<std::string> c12{c[1], c[2]}, s12{s[1], s[2]};
  CHECK(wait_until([&] { return sorted_strings(q("PUBSUB", "CHANNELS")) == sorted(c12); }, 5s));
  CHECK(sorted_strings(q("PUBSUB", "CHANNELS")) == sorted(c12));
  CHECK(
      wait_until([&] { return sorted_strings(q("PUBSUB", "SHARDCHANNELS")) == sorted(s12); }, 5s));
  CHECK(sorted_strings(q("PUBSUB", "SHARDCHANNELS")) == sorted(s12));
  CHECK(wait_until([&] { return q("PUBSUB", "NUMPAT") == Reply::integer_(1); }, 5s));
  CHECK(q("PUBSUB", "NUMPAT") == Reply::integer_(1));
  CHECK(wait_until(
      [&] {
        return q("PUBSUB", "NUMSUB", c[0]) ==
               Reply::array({Reply::string(c[0]), Reply::integer_(0)});
      },
      5s));
  CHECK(q("PUBSUB", "NUMSUB", c[0]) == Reply::array({Reply::string(c[0]), Reply::integer_(0)}));
  // c[0] still matches cnt:* (both subscribers): PUBLISH reaches someone.
  CHECK(integer_at_least(q("PUBLISH", c[0], "x"), 1));
  CHECK(integer_at_least(q("PUBLISH", c[1], "x"), 1));
  CHECK(integer_at_least(q("SPUBLISH", s[1], "x"), 1));
  CHECK(q("SPUBLISH", s[0], "x") == Reply::integer_(0));
}

TEST_CASE("pub/sub cleanup: disconnected subscribers and RESET are unsubscribed",
          "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  Client q = cluster.client();
  std::vector<std::string> ch;
  for (size_t b = 0; b < cluster.size(); ++b) ch.push_back(cluster.key_on(b, "gone"));
  const std::string sh = cluster.key_on(1, "gones");
  auto channels = [&] { return sorted_strings(q("PUBSUB", "CHANNELS")); };
  auto nothing_left = [&] {
    return q("PUBSUB", "CHANNELS") == Reply::array({}) &&
           q("PUBSUB", "SHARDCHANNELS") == Reply::array({}) &&
           q("PUBSUB", "NUMPAT") == Reply::integer_(0);
  };

  SECTION("disconnect") {
    std::vector<std::unique_ptr<Conn>> subs;
    for (int i = 0; i < 4; ++i) {
      subs.push_back(std::make_unique<Conn>(cluster.port()));
      subs.back()->call({"SUBSCRIBE", ch[0], ch[1], ch[2]}, 3);
      subs.back()->call({"PSUBSCRIBE", "gone:*"});
      subs.back()->call({"SSUBSCRIBE", sh});
    }
    CHECK(channels() == sorted(ch));
    subs.erase(subs.begin(), subs.begin() + 3);  // three leave; the last one keeps them
    CHECK(integer_at_least(q("PUBLISH", ch[2], "still"), 1));
    Inbox in;
    CHECK(receive(*subs.back(), in,
                  ended({{"message " + ch[2], "still"}, {"pmessage gone:* " + ch[2], "still"}}),
                  3s));
    CHECK(channels() == sorted(ch));
    subs.clear();
    CHECK(wait_until(nothing_left, 5s));
    INFO("CHANNELS " << q("PUBSUB", "CHANNELS") << " SHARDCHANNELS " << q("PUBSUB", "SHARDCHANNELS")
                     << " NUMPAT " << q("PUBSUB", "NUMPAT"));
    CHECK(nothing_left());
    CHECK(q("PUBLISH", ch[0], "x") == Reply::integer_(0));
    CHECK(q("SPUBLISH", sh, "x") == Reply::integer_(0));
  }

  SECTION("disconnect before the subscription is confirmed") {
    for (int i = 0; i < 60; ++i) {
      RawConn c(cluster.port());
      REQUIRE(c.send(encode_command({"SUBSCRIBE", "vanish:" + std::to_string(i), ch[i % 3]}) +
                     encode_command({"PSUBSCRIBE", "vanish:" + std::to_string(i) + ":*"}) +
                     encode_command({"SSUBSCRIBE", sh})));
      c.close();
    }
    CHECK(wait_until(nothing_left, 5s));
    INFO("CHANNELS " << q("PUBSUB", "CHANNELS") << " SHARDCHANNELS " << q("PUBSUB", "SHARDCHANNELS")
                     << " NUMPAT " << q("PUBSUB", "NUMPAT"));
    CHECK(nothing_left());
    CHECK(cluster.proxy().running());
    Conn sub(cluster.port());
    CHECK(sub.call({"SUBSCRIBE", ch[0]}).at(0) == confirmation("subscribe", ch[0], 1));
    CHECK(integer_at_least(q("PUBLISH", ch[0], "alive"), 1));
    CHECK(visible(sub.next()) == visible(message(ch[0], "alive")));
  }

  SECTION("RESET") {
    Conn sub(cluster.port()), other(cluster.port());
    sub.call({"SUBSCRIBE", ch[0], ch[1]}, 2);
    sub.call({"PSUBSCRIBE", "gone:*"});
    sub.call({"SSUBSCRIBE", sh});
    other.call({"SUBSCRIBE", ch[2]});
    CHECK(visible(sub.call({"RESET"}).at(0)) == "+RESET\\r\\n");
    CHECK(visible(sub.call({"GET", "k"}).at(0)) == "$-1\\r\\n");
    CHECK(visible(sub.call({"PING"}).at(0)) == "+PONG\\r\\n");
    const std::vector<std::string> only{ch[2]};
    CHECK(wait_until([&] { return channels() == only; }, 5s));
    CHECK(channels() == only);
    CHECK(wait_until([&] { return q("PUBSUB", "NUMPAT") == Reply::integer_(0); }, 5s));
    CHECK(q("PUBSUB", "SHARDCHANNELS") == Reply::array({}));
    CHECK(q("PUBLISH", ch[0], "x") == Reply::integer_(0));
    // Published before the PING: had it been delivered, it would come before PONG.
    CHECK(visible(sub.call({"PING"}).at(0)) == "+PONG\\r\\n");
    // Subscribe, RESET and a command in one write.
    sub.send_bytes(encode_command({"SUBSCRIBE", ch[0]}) + encode_command({"RESET"}) +
                   encode_command({"GET", "k"}));
    CHECK(visible(sub.next()) == visible(confirmation("subscribe", ch[0], 1)));
    CHECK(visible(sub.next()) == "+RESET\\r\\n");
    CHECK(visible(sub.next()) == "$-1\\r\\n");
    CHECK(wait_until([&] { return channels() == only; }, 5s));
    CHECK(channels() == only);
  }
}

TEST_CASE("pub/sub survives a backend restart: the hub subscribes again",
          "[integration][issue3][pubsub]") {
  Cluster cluster(
      two_workers("timeouts:\n"
                  "  connect_ms: 300\n"
                  "  request_ms: 1000\n"
                  "  backend_retry_max_ms: 300\n"));
  const std::string c1 = cluster.key_on(1, "rs"), c0 = cluster.key_on(0, "rs"),
                    late = cluster.key_on(1, "rs", 1), s1 = cluster.key_on(1, "rss");
  const std::string pat = "rs:*";
  Conn sub_a(cluster.port()), sub_b(cluster.port()), psub(cluster.port()), ssub(cluster.port());
  sub_a.call({"SUBSCRIBE", c1, c0}, 2);
  sub_b.call({"SUBSCRIBE", c1});
  psub.call({"PSUBSCRIBE", pat});
  ssub.call({"SSUBSCRIBE", s1});
  Client pub = cluster.client();

  CHECK(integer_at_least(pub("PUBLISH", c1, "before"), 1));
  CHECK(visible(sub_a.next()) == visible(message(c1, "before")));
  CHECK(visible(sub_b.next()) == visible(message(c1, "before")));
  CHECK(visible(psub.next()) == visible(pmessage(pat, c1, "before")));

  cluster.backend(1).kill9();
  // The other backends' channels keep working.
  CHECK(integer_at_least(pub("PUBLISH", c0, "during"), 1));
  CHECK(visible(sub_a.next()) == visible(message(c0, "during")));
  CHECK(visible(psub.next()) == visible(pmessage(pat, c0, "during")));
  // Subscribing while the owner is down is confirmed and restored later.
  Conn sub_late(cluster.port());
  CHECK(visible(sub_late.call({"SUBSCRIBE", late}).at(0)) ==
        visible(confirmation("subscribe", late, 1)));

  cluster.backend(1).restart();
  // Publish until the subscription is back; then every following message arrives in order.
  auto recovers = [&](Conn& sub, const std::string& cmd, const std::string& channel,
                      const std::string& key) {
    Inbox in;
    bool back = false;
    const auto deadline = Clock::now() + 15s;
    for (int i = 0; Clock::now() < deadline && !back; ++i) {
      pub(cmd, channel, "probe" + std::to_string(i));
      back = receive(
          sub, in, [&](const Inbox& x) { return x.by_key.count(key) > 0; }, 100ms);
    }
    INFO(key << ": " << show_inbox(in));
    CHECK(back);
    CHECK(in.other.empty());
    return back;
  };
  bool ok = recovers(sub_a, "PUBLISH", c1, "message " + c1);
  ok = recovers(sub_b, "PUBLISH", c1, "message " + c1) && ok;
  ok = recovers(psub, "PUBLISH", c1, "pmessage " + pat + " " + c1) && ok;
  ok = recovers(ssub, "SPUBLISH", s1, "smessage " + s1) && ok;
  ok = recovers(sub_late, "PUBLISH", late, "message " + late) && ok;
  REQUIRE(ok);

  std::vector<std::string> finals;
  for (int i = 0; i < 10; ++i) {
    finals.push_back("final" + std::to_string(i));
    CHECK(integer_at_least(pub("PUBLISH", c1, finals.back()), 1));
    CHECK(integer_at_least(pub("PUBLISH", late, finals.back()), 1));
    CHECK(integer_at_least(pub("SPUBLISH", s1, finals.back()), 1));
  }
  auto tail_is_finals = [&](Conn& sub, const std::string& key) {
    Inbox in;
    bool done = receive(sub, in, ended({{key, finals.back()}}), 5s);
    INFO(key << ": " << show_inbox(in));
    CHECK(done);
    auto& got = in.by_key[key];
    // Probes published before recovery completed may precede the finals.
    auto first = std::find(got.begin(), got.end(), finals.front());
    CHECK(std::vector<std::string>(first, got.end()) == finals);
    CHECK(in.other.empty());
  };
  tail_is_finals(sub_a, "message " + c1);
  tail_is_finals(sub_b, "message " + c1);
  tail_is_finals(psub, "pmessage " + pat + " " + c1);
  tail_is_finals(ssub, "smessage " + s1);
  tail_is_finals(sub_late, "message " + late);
  CHECK(cluster.proxy().running());
}

TEST_CASE("pub/sub: 200 subscribers of one channel each get all 100 messages",
          "[integration][issue3][pubsub]") {
  Cluster cluster(two_workers());
  const std::string ch = "many";
  std::vector<Conn> subs;
  subs.reserve(200);
  for (int i = 0; i < 200; ++i) subs.emplace_back(cluster.port());
  for (auto& s : subs) s.send({"SUBSCRIBE", ch});
  std::vector<std::string> failures;
  for (size_t i = 0; i < subs.size(); ++i) {
    const std::string got = subs[i].next();
    if (got != confirmation("subscribe", ch, 1) && failures.size() < 5)
      failures.push_back("subscriber " + std::to_string(i) + " confirmation: " + visible(got));
  }
  REQUIRE(failures.empty());

  Client pub = cluster.client();
  std::vector<std::vector<std::string>> cmds;
  for (int m = 0; m < 100; ++m) cmds.push_back({"PUBLISH", ch, "msg" + std::to_string(m)});
  auto replies = pub.pipeline(cmds);
  REQUIRE(replies.size() == cmds.size());
  for (size_t m = 0; m < replies.size(); ++m) {
    INFO("PUBLISH " << m << ": " << replies[m]);
    CHECK(integer_at_least(replies[m], 1));
  }
  size_t lost = 0;
  for (size_t i = 0; i < subs.size(); ++i) {
    for (int m = 0; m < 100; ++m) {
      const std::string want = message(ch, "msg" + std::to_string(m));
      const std::string got = subs[i].next(lost > 0 ? 200ms : kRead);
      if (got != want) {
        ++lost;
        if (failures.size() < 5)
          failures.push_back("subscriber " + std::to_string(i) + " message " + std::to_string(m) +
                             ": expected " + visible(want) + ", got " + visible(got));
        if (got == "<none>") break;
      }
    }
  }
  for (const auto& f : failures) FAIL_CHECK(f);
  CHECK(lost == 0);
}

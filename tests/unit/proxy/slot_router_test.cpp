#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lockstep/proxy/merge.h"
#include "lockstep/proxy/router.h"
#include "lockstep/proxy/slot_map.h"

using namespace lockstep::proxy;

namespace {
std::vector<std::string_view> argv(std::initializer_list<std::string_view> a) {
  return a;
}

// A key that the even 3-backend map places on backend `b`.
std::string key_on(const SlotMap& map, int b, int n = 0) {
  for (int i = 0;; ++i) {
    std::string k = "k" + std::to_string(i);
    if (map.owner_of_key(k) == b && n-- == 0) return k;
  }
}
}  // namespace

TEST_CASE("CRC16 and hash slots match Redis Cluster", "[proxy][slot]") {
  CHECK(crc16("123456789", 9) == 0x31C3);
  CHECK(key_slot("foo") == 12182);
  CHECK(key_slot("{user1000}.following") == key_slot("{user1000}.followers"));
  CHECK(key_slot("{user1000}.following") == key_slot("user1000"));
  CHECK(key_slot("foo{}{bar}") == key_slot("foo{}{bar}"));  // empty tag: whole key hashed
  CHECK(key_slot("foo{}{bar}") != key_slot("bar"));
  CHECK(key_slot("foo{{bar}}zap") == key_slot("{bar"));  // first '{' to the next '}'
  CHECK(key_slot("foo{bar}{zap}") == key_slot("bar"));
  CHECK(key_slot("") == 0);
}

TEST_CASE("CRC16 matches the bit-by-bit definition on random inputs", "[proxy][slot]") {
  // XMODEM: polynomial 0x1021, initial 0, no reflection, computed one bit at a time.
  auto reference = [](const std::string& s) {
    uint16_t crc = 0;
    for (unsigned char c : s) {
      crc ^= static_cast<uint16_t>(c << 8);
      for (int b = 0; b < 8; ++b)
        crc = (crc & 0x8000) ? static_cast<uint16_t>((crc << 1) ^ 0x1021)
                             : static_cast<uint16_t>(crc << 1);
    }
    return crc;
  };
  uint64_t x = 12345;
  for (int n = 0; n < 2000; ++n) {
    std::string s;
    for (int i = 0; i < n % 40; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      s.push_back(static_cast<char>(x >> 56));
    }
    REQUIRE(crc16(s.data(), s.size()) == reference(s));
  }
}

TEST_CASE("even slot map splits contiguously", "[proxy][slot]") {
  auto m = SlotMap::even(3);
  CHECK(m.owner(0) == 0);
  CHECK(m.owner(5460) == 0);
  CHECK(m.owner(5461) == 1);
  CHECK(m.owner(10922) == 2);
  CHECK(m.owner(16383) == 2);
  auto r = m.ranges();
  REQUIRE(r.size() == 3);
  CHECK(r[1].from == 5461);
  CHECK(r[1].to == 10921);
  std::string err;
  CHECK_FALSE(SlotMap::from_ranges({{0, 100, 0}}, 1, err));
  CHECK(err == "slot 101 is not assigned to any backend");
  CHECK_FALSE(SlotMap::from_ranges({{0, 16383, 0}, {5, 5, 0}}, 1, err));
  auto ok = SlotMap::from_ranges({{0, 99, 1}, {100, 16383, 0}}, 2, err);
  REQUIRE(ok);
  CHECK(ok->owner(50) == 1);
}

TEST_CASE("router: keyed, cross-slot, errors", "[proxy][router]") {
  Router router(CommandTable::builtin());
  auto map = SlotMap::even(3);
  std::string a0 = key_on(map, 0), a1 = key_on(map, 1), b0 = key_on(map, 0, 1);

  auto& p = router.route(argv({"GET", a1}), map);
  CHECK(p.kind == Plan::Kind::kSingle);
  CHECK(p.backend == 1);

  CHECK(router.route(argv({"rename", a0, b0}), map).kind == Plan::Kind::kSingle);
  auto& x = router.route(argv({"RENAME", a0, a1}), map);
  CHECK(x.kind == Plan::Kind::kError);
  CHECK(x.error == "CROSSSLOT Keys in request don't hash to the same slot");
  CHECK(router.route(argv({"SMOVE", a0, a1, "m"}), map).kind == Plan::Kind::kError);
  CHECK(router.route(argv({"LMOVE", "{t}a", "{t}b", "LEFT", "RIGHT"}), map).kind ==
        Plan::Kind::kSingle);

  auto& u = router.route(argv({"nosuch", "a", "b"}), map);
  CHECK(u.error == "ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ");
  auto& ar = router.route(argv({"GET"}), map);
  CHECK(ar.error == "ERR wrong number of arguments for 'get' command");
  auto& sub = router.route(argv({"OBJECT", "nosuch"}), map);
  CHECK(sub.error == "ERR unknown subcommand 'nosuch'. Try OBJECT HELP.");

  // EVAL routes by declared keys; with none it can run anywhere.
  CHECK(router.route(argv({"EVAL", "return 1", "0"}), map).kind == Plan::Kind::kAny);
  CHECK(router.route(argv({"EVAL", "return 1", "2", a0, b0}), map).kind == Plan::Kind::kSingle);
  CHECK(router.route(argv({"EVAL", "return 1", "2", a0, a1}), map).kind == Plan::Kind::kError);
  // Malformed numkeys: Redis itself answers with its own error text.
  CHECK(router.route(argv({"EVAL", "return 1", "5", a0}), map).kind == Plan::Kind::kAny);

  CHECK(router.route(argv({"COPY", a0, b0, "DB", "1"}), map).kind == Plan::Kind::kError);
  CHECK(router.route(argv({"COPY", a0, b0, "REPLACE"}), map).kind == Plan::Kind::kSingle);
  CHECK(router.route(argv({"GET", "__lockstep:lock:x"}), map).error == kReservedKeyError);
  CHECK(router.route(argv({"MGET", a0, "__lockstep:fence:x"}), map).error == kReservedKeyError);
  CHECK(router.route(argv({"EVAL", "s", "1", "__lockstep:x"}), map).error == kReservedKeyError);
  CHECK(router.route(argv({"PING"}), map).kind == Plan::Kind::kLocal);
  CHECK(router.route(argv({"DBSIZE"}), map).kind == Plan::Kind::kFanout);
  CHECK(router.route(argv({"XREAD", "BLOCK", "0", "STREAMS", a0, "$"}), map).blocking);
  CHECK_FALSE(router.route(argv({"XREAD", "COUNT", "1", "STREAMS", a0, "0"}), map).blocking);
  CHECK(router.route(argv({"BLPOP", a0, b0, "0"}), map).blocking);
  CHECK(router.route(argv({"BLPOP", a0, a1, "0"}), map).error == kCrossSlotError);
  CHECK_FALSE(router.route(argv({"LPOP", a0}), map).blocking);
}

TEST_CASE("router: split of multi-key commands", "[proxy][router]") {
  Router router(CommandTable::builtin());
  auto map = SlotMap::even(3);
  std::string a0 = key_on(map, 0), a1 = key_on(map, 1), a2 = key_on(map, 2), b0 = key_on(map, 0, 1);

  auto& p = router.route(argv({"MGET", a0, a1, b0, a2}), map);
  REQUIRE(p.kind == Plan::Kind::kSplit);
  REQUIRE(p.nparts == 3);
  CHECK(p.parts[0].backend == 0);
  CHECK(p.parts[0].keys == std::vector<uint32_t>{1, 3});
  CHECK(p.parts[1].keys == std::vector<uint32_t>{2});
  CHECK(p.parts[2].keys == std::vector<uint32_t>{4});

  auto& m = router.route(argv({"MSET", a0, "1", a1, "2"}), map);
  REQUIRE(m.kind == Plan::Kind::kSplit);
  CHECK(m.parts[0].keys == std::vector<uint32_t>{1});
  CHECK(m.parts[1].keys == std::vector<uint32_t>{3});
  CHECK(router.route(argv({"MSET", a0, "1", a1}), map).error ==
        "ERR wrong number of arguments for 'mset' command");

  // All keys on one backend: forwarded as is.
  CHECK(router.route(argv({"DEL", a0, b0}), map).kind == Plan::Kind::kSingle);
  for (auto name : {"DEL", "UNLINK", "EXISTS", "TOUCH"})
    CHECK(router.route(argv({name, a0, a1}), map).kind == Plan::Kind::kSplit);
}

TEST_CASE("reply merge", "[proxy][merge]") {
  ReplyMerge m;
  m.start(ReplyMerge::Kind::kMget, 2, 3);
  m.positions(0) = {0, 2};
  m.positions(1) = {1};
  m.add(1, "*1\r\n$1\r\nb\r\n");
  CHECK_FALSE(m.complete());
  m.add(0, "*2\r\n$1\r\na\r\n$-1\r\n");
  REQUIRE(m.complete());
  std::string out;
  m.finish(out);
  CHECK(out == "*3\r\n$1\r\na\r\n$1\r\nb\r\n$-1\r\n");

  m.start(ReplyMerge::Kind::kSum, 3);
  m.add(0, ":1\r\n");
  m.add(2, ":2\r\n");
  m.add(1, ":0\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == ":3\r\n");

  m.start(ReplyMerge::Kind::kSum, 2);
  m.add(0, ":1\r\n");
  m.add(1, "-ERR backend b (x) unavailable: down\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "-ERR backend b (x) unavailable: down\r\n");

  m.start(ReplyMerge::Kind::kAllOk, 2);
  m.add(0, "+OK\r\n");
  m.add(1, "+OK\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "+OK\r\n");

  m.start(ReplyMerge::Kind::kAnd, 2);
  m.add(0, "*2\r\n:1\r\n:1\r\n");
  m.add(1, "*2\r\n:1\r\n:0\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "*2\r\n:1\r\n:0\r\n");

  m.start(ReplyMerge::Kind::kUnion, 2);
  m.add(0, "*1\r\n$1\r\na\r\n");
  m.add(1, "*0\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "*1\r\n$1\r\na\r\n");

  m.start(ReplyMerge::Kind::kUnion, 2);  // internal keys never show in KEYS
  m.add(0, "*2\r\n$1\r\na\r\n$17\r\n__lockstep:lock:x\r\n");
  m.add(1, "*0\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "*1\r\n$1\r\na\r\n");

  m.start(ReplyMerge::Kind::kSame, 2);
  m.add(0, "$2\r\nab\r\n");
  m.add(1, "$2\r\nab\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "$2\r\nab\r\n");

  m.start(ReplyMerge::Kind::kRandom, 3, 0, 7);
  m.add(0, "$-1\r\n");
  m.add(1, "$1\r\nx\r\n");
  m.add(2, "$-1\r\n");
  out.clear();
  m.finish(out);
  CHECK(out == "$1\r\nx\r\n");
}

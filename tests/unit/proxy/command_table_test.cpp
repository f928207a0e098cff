// Tests of the command table: generated Redis data, lookups, key extraction and routing
// policy. Expected key positions were checked against `COMMAND GETKEYS` on redis-server
// 7.0.15; where Lockstep deliberately differs (it reports kMalformed for arguments the command
// itself would reject), the test says so.

#include "lockstep/proxy/command_table.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

namespace lockstep::proxy {
namespace detail {
// Lockstep's explicit routing decisions and command traits (src/proxy/command_routes.cpp).
std::span<const CommandInfo> route_policy();
std::span<const CommandInfo> trait_policy();
}  // namespace detail

namespace {

const CommandTable& table() {
  return CommandTable::builtin();
}

const CommandInfo& cmd(std::string_view name) {
  const CommandInfo* c = table().find(name);
  REQUIRE(c != nullptr);
  return *c;
}

// "parent|sub" or a plain name.
const CommandInfo* lookup(std::string_view name) {
  const size_t bar = name.find('|');
  const CommandInfo* c = table().find(name.substr(0, bar));
  if (c == nullptr || bar == std::string_view::npos) return c;
  return CommandTable::find_sub(*c, name.substr(bar + 1));
}

// Key positions of a request as text ("1 3"), resolving a container's subcommand like the
// proxy does; "malformed" when extract_keys says kMalformed.
std::string keys(std::vector<std::string_view> args) {
  const CommandInfo* c = table().find(args.at(0));
  REQUIRE(c != nullptr);
  if (!c->subcommands.empty() && args.size() > 1) {
    if (const CommandInfo* sub = CommandTable::find_sub(*c, args[1])) c = sub;
  }
  REQUIRE(arity_ok(*c, args.size()));
  KeyPositions out;
  if (extract_keys(*c, args, out) == KeyExtract::kMalformed) return "malformed";
  std::string text;
  for (size_t i = 0; i < out.size(); ++i) {
    if (i > 0) text += ' ';
    text += std::to_string(out[i]);
  }
  return text;
}

bool has_keys(const CommandInfo& c) {
  return c.first_key > 0 || !c.key_specs.empty();
}

}  // namespace

TEST_CASE("the table holds every Redis 7.0.15 command, sorted", "[command_table]") {
  // COMMAND COUNT on redis-server 7.0.15, as seen by scripts/gen-command-table, plus
  // Lockstep's own five LOCK.* commands.
  CHECK(table().all().size() == 240 + 6);  // + LOCK.* and LOCKSTEP
  for (auto n : {"lock.acquire", "lock.release", "lock.extend", "lock.status", "lock.guard"})
    CHECK(table().find(n) != nullptr);
  size_t subs = 0;
  for (const CommandInfo& c : table().all()) subs += c.subcommands.size();
  CHECK(subs == 126);

  auto all = table().all();
  for (size_t i = 1; i < all.size(); ++i) CHECK(all[i - 1].name < all[i].name);
  for (const CommandInfo& c : all) {
    for (size_t i = 1; i < c.subcommands.size(); ++i) {
      CHECK(c.subcommands[i - 1].name < c.subcommands[i].name);
    }
    for (const CommandInfo& s : c.subcommands) {
      CHECK(s.name.substr(0, c.name.size() + 1) == std::string(c.name) + "|");
      CHECK(s.subcommands.empty());
    }
  }
}

TEST_CASE("find is case-insensitive and exact", "[command_table]") {
  for (std::string_view n : {"get", "GET", "GeT", "gET"}) {
    const CommandInfo* c = table().find(n);
    REQUIRE(c != nullptr);
    CHECK(c->name == "get");
  }
  CHECK(table().find("ZUNIONSTORE")->name == "zunionstore");
  CHECK(table().find("restore-asking") != nullptr);
  CHECK(table().find("EVAL_RO")->name == "eval_ro");
  CHECK(table().find("acl") != nullptr);
  CHECK(table().find("zunionstore") != nullptr);
  // First and last entries, so the binary search reaches both ends.
  CHECK(table().find(table().all().front().name) == &table().all().front());
  CHECK(table().find(table().all().back().name) == &table().all().back());

  CHECK(table().find("") == nullptr);
  CHECK(table().find("ge") == nullptr);
  CHECK(table().find("gets") == nullptr);
  CHECK(table().find("nosuchcommand") == nullptr);
  CHECK(table().find("object|encoding") == nullptr);  // subcommands via find_sub only
  CHECK(table().find(std::string_view("get\0", 4)) == nullptr);
}

TEST_CASE("find_sub finds subcommands case-insensitively", "[command_table]") {
  const CommandInfo& object = cmd("object");
  const CommandInfo* enc = CommandTable::find_sub(object, "ENCODING");
  REQUIRE(enc != nullptr);
  CHECK(enc->name == "object|encoding");
  CHECK(CommandTable::find_sub(object, "encoding") == enc);
  CHECK(CommandTable::find_sub(object, "nope") == nullptr);
  CHECK(CommandTable::find_sub(object, "") == nullptr);

  const CommandInfo* noevict = CommandTable::find_sub(cmd("client"), "No-Evict");
  REQUIRE(noevict != nullptr);
  CHECK(noevict->name == "client|no-evict");
  CHECK(CommandTable::find_sub(cmd("config"), "GET")->name == "config|get");
  CHECK(CommandTable::find_sub(cmd("command"), "getkeysandflags")->name ==
        "command|getkeysandflags");
  CHECK(CommandTable::find_sub(cmd("get"), "x") == nullptr);  // no subcommands at all
}

TEST_CASE("arity matches Redis", "[command_table]") {
  CHECK(cmd("get").arity == 2);
  CHECK(cmd("set").arity == -3);
  CHECK(cmd("mset").arity == -3);
  CHECK(cmd("ping").arity == -1);
  CHECK(cmd("command").arity == -1);
  CHECK(cmd("xread").arity == -4);
  CHECK(lookup("object|encoding")->arity == 3);
  CHECK(lookup("client|setname")->arity == 3);

  CHECK(arity_ok(cmd("get"), 2));
  CHECK_FALSE(arity_ok(cmd("get"), 1));
  CHECK_FALSE(arity_ok(cmd("get"), 3));
  CHECK(arity_ok(cmd("set"), 3));
  CHECK(arity_ok(cmd("set"), 7));
  CHECK_FALSE(arity_ok(cmd("set"), 2));
  CHECK(arity_ok(cmd("ping"), 1));
  CHECK(arity_ok(*lookup("object|encoding"), 3));
  CHECK_FALSE(arity_ok(*lookup("object|encoding"), 4));
}

TEST_CASE("flags, ACL categories and legacy key positions match Redis", "[command_table]") {
  const CommandInfo& get = cmd("get");
  CHECK(get.flags == (kFlagReadonly | kFlagFast));
  CHECK(get.acl == (kAclRead | kAclString | kAclFast));
  CHECK(get.first_key == 1);
  CHECK(get.last_key == 1);
  CHECK(get.key_step == 1);

  const CommandInfo& set = cmd("set");
  CHECK(set.flags == (kFlagWrite | kFlagDenyOom));
  CHECK(set.acl == (kAclWrite | kAclString | kAclSlow));

  const CommandInfo& eval = cmd("eval");
  CHECK((eval.flags & kFlagNoMandatoryKeys));
  CHECK((eval.flags & kFlagMovableKeys));
  CHECK((eval.flags & kFlagNoscript));
  CHECK(eval.acl == (kAclSlow | kAclScripting));
  CHECK(eval.first_key == 0);  // legacy range cannot express numkeys; the key spec does

  const CommandInfo& blpop = cmd("blpop");
  CHECK((blpop.flags & kFlagBlocking));
  CHECK((blpop.acl & kAclBlocking));
  CHECK(blpop.last_key == -2);

  CHECK(cmd("flushall").acl == (kAclKeyspace | kAclWrite | kAclSlow | kAclDangerous));
  CHECK(cmd("ping").flags == kFlagFast);
  CHECK((cmd("spublish").flags & kFlagPubsub));
  CHECK((cmd("auth").flags & kFlagNoAuth));

  // Key specs.
  const CommandInfo& xread = cmd("xread");
  REQUIRE(xread.key_specs.size() == 1);
  CHECK(xread.key_specs[0].begin == KeySpec::Begin::kKeyword);
  CHECK(xread.key_specs[0].keyword == "STREAMS");
  CHECK(xread.key_specs[0].keyword_startfrom == 1);
  CHECK(xread.key_specs[0].find == KeySpec::Find::kRange);
  CHECK(xread.key_specs[0].range_lastkey == -1);
  CHECK(xread.key_specs[0].range_limit == 2);
  CHECK(xread.key_specs[0].flags == (kKeyRO | kKeyAccess));

  const CommandInfo& zu = cmd("zunionstore");
  REQUIRE(zu.key_specs.size() == 2);
  CHECK(zu.key_specs[1].find == KeySpec::Find::kKeynum);
  CHECK(zu.key_specs[1].begin_index == 2);
  CHECK(zu.key_specs[1].keynum_idx == 0);
  CHECK(zu.key_specs[1].keynum_firstkey == 1);

  REQUIRE(cmd("spublish").key_specs.size() == 1);
  CHECK(cmd("spublish").key_specs[0].flags == kKeyNotKey);
  CHECK((cmd("migrate").key_specs[1].flags & kKeyIncomplete));
  CHECK(cmd("sort").key_specs[2].begin == KeySpec::Begin::kUnknown);
}

TEST_CASE("extract_keys: fixed positions", "[command_table][keys]") {
  CHECK(keys({"GET", "k"}) == "1");
  CHECK(keys({"set", "k", "v", "GET", "EX", "10"}) == "1");
  CHECK(keys({"LCS", "k1", "k2", "LEN"}) == "1 2");
  CHECK(keys({"COPY", "s", "d", "REPLACE"}) == "1 2");
  CHECK(keys({"RENAME", "s", "d"}) == "1 2");
  CHECK(keys({"SMOVE", "s", "d", "m"}) == "1 2");
  CHECK(keys({"BITOP", "AND", "d", "k1", "k2"}) == "2 3 4");
  CHECK(keys({"BITOP", "NOT", "d", "k1"}) == "2 3");
  // The shard channel is flagged NOT_KEY (COMMAND GETKEYS leaves it out) but the proxy
  // hashes it like a key.
  CHECK(keys({"SPUBLISH", "ch", "msg"}) == "1");
  CHECK(keys({"PING"}) == "");
}

TEST_CASE("extract_keys: ranges", "[command_table][keys]") {
  CHECK(keys({"MSET", "k1", "v1", "k2", "v2"}) == "1 3");
  CHECK(keys({"MSETNX", "k1", "v1", "k2", "v2", "k3", "v3"}) == "1 3 5");
  // A dangling key without value: Redis's GETKEYS still says 1 3, but MSET rejects it and
  // splitting it over backends would half-apply it, so Lockstep calls it malformed.
  CHECK(keys({"MSET", "k1", "v1", "k2"}) == "malformed");
  CHECK(keys({"MGET", "k1", "k2", "k3"}) == "1 2 3");
  CHECK(keys({"DEL", "k1", "k2"}) == "1 2");
  CHECK(keys({"EXISTS", "k1"}) == "1");
  CHECK(keys({"BLPOP", "k1", "k2", "0"}) == "1 2");  // lastkey -2: not the timeout
}

TEST_CASE("extract_keys: numkeys", "[command_table][keys]") {
  CHECK(keys({"EVAL", "return 1", "0"}) == "");
  CHECK(keys({"EVAL", "return 1", "0", "arg"}) == "");
  CHECK(keys({"EVAL", "s", "2", "k1", "k2", "a1"}) == "3 4");
  CHECK(keys({"EVALSHA", "sha", "1", "k1"}) == "3");
  CHECK(keys({"FCALL", "f", "1", "k1", "a"}) == "3");
  CHECK(keys({"FCALL_RO", "f", "0"}) == "");
  // Bad numkeys: EVAL itself rejects these (COMMAND GETKEYS falls back to a lenient parser
  // and answers an empty list, or even 3 4 for "02").
  CHECK(keys({"EVAL", "s", "x", "k1"}) == "malformed");
  CHECK(keys({"EVAL", "s", "-1", "k1"}) == "malformed");
  CHECK(keys({"EVAL", "s", "3", "k1", "k2"}) == "malformed");
  CHECK(keys({"EVAL", "s", "02", "k1", "k2"}) == "malformed");
  CHECK(keys({"EVAL", "s", "99999999999999999999999", "k1"}) == "malformed");

  CHECK(keys({"ZUNIONSTORE", "d", "2", "k1", "k2", "WEIGHTS", "1", "2"}) == "1 3 4");
  CHECK(keys({"ZDIFFSTORE", "d", "2", "k1", "k2"}) == "1 3 4");
  // Zero keys is an error outside EVAL/FCALL (GETKEYS: "Invalid arguments").
  CHECK(keys({"ZUNIONSTORE", "d", "0", "k1"}) == "malformed");
  CHECK(keys({"ZUNIONSTORE", "d", "3", "k1", "k2"}) == "malformed");
  CHECK(keys({"ZINTER", "2", "k1", "k2", "WITHSCORES"}) == "2 3");
  CHECK(keys({"ZINTERCARD", "2", "k1", "k2", "LIMIT", "1"}) == "2 3");

  CHECK(keys({"LMPOP", "2", "k1", "k2", "LEFT"}) == "2 3");
  CHECK(keys({"LMPOP", "0", "k1", "LEFT"}) == "malformed");
  CHECK(keys({"BLMPOP", "0", "2", "k1", "k2", "LEFT", "COUNT", "2"}) == "3 4");
  CHECK(keys({"ZMPOP", "1", "k1", "MIN"}) == "2");
  CHECK(keys({"BZMPOP", "1", "2", "k1", "k2", "MAX"}) == "3 4");

  CHECK(keys({"SINTERCARD", "2", "k1", "k2"}) == "2 3");
  CHECK(keys({"SINTERCARD", "2", "k1", "k2", "LIMIT", "3"}) == "2 3");
  CHECK(keys({"SINTERCARD", "x", "k1"}) == "malformed");
}

TEST_CASE("extract_keys: keywords", "[command_table][keys]") {
  CHECK(keys({"XREAD", "STREAMS", "k1", "k2", "id1", "id2"}) == "2 3");
  CHECK(keys({"xread", "COUNT", "2", "BLOCK", "0", "streams", "k1", "id1"}) == "6");
  CHECK(keys({"XREADGROUP", "GROUP", "g", "c", "STREAMS", "k1", "k2", "id1", "id2"}) == "5 6");
  CHECK(keys({"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "NOACK", "STREAMS", "k1", "id1"}) ==
        "8");
  // Unbalanced key/ID list: XREAD rejects it (GETKEYS would still say 2).
  CHECK(keys({"XREAD", "STREAMS", "k1", "k2", "id1"}) == "malformed");
  // STREAMS last, so no key at all: malformed, as for GETKEYS.
  CHECK(keys({"XREAD", "COUNT", "1", "STREAMS"}) == "malformed");

  CHECK(keys({"GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d"}) == "1 7");
  CHECK(keys({"GEORADIUS", "k", "0", "0", "1", "km", "STOREDIST", "d"}) == "1 7");
  CHECK(keys({"GEORADIUS", "k", "0", "0", "1", "km", "WITHDIST"}) == "1");
  CHECK(keys({"GEORADIUS", "k", "0", "0", "1", "km", "STORE", "d1", "STOREDIST", "d2"}) == "1 7 9");
  CHECK(keys({"GEORADIUSBYMEMBER", "k", "m", "1", "km", "STORE", "d"}) == "1 6");
}

TEST_CASE("extract_keys: SORT and MIGRATE (unknown and incomplete specs)",
          "[command_table][keys]") {
  CHECK(keys({"SORT", "k"}) == "1");
  CHECK(keys({"SORT", "k", "STORE", "d"}) == "1 3");
  CHECK(keys({"SORT", "k", "BY", "w_*", "GET", "o_*", "STORE", "d", "LIMIT", "0", "10"}) == "1 7");
  CHECK(keys({"SORT", "k", "LIMIT", "0", "1", "store", "d", "ALPHA"}) == "1 6");
  CHECK(keys({"SORT", "k", "STORE", "d1", "STORE", "d2"}) == "1 5");  // last one wins
  CHECK(keys({"SORT", "k", "GET", "store"}) == "1");  // a GET pattern, not the option
  CHECK(keys({"SORT_RO", "k", "BY", "w_*"}) == "1");

  CHECK(keys({"MIGRATE", "h", "6379", "k", "0", "5000"}) == "3");
  CHECK(keys({"MIGRATE", "h", "6379", "k", "0", "5000", "COPY", "REPLACE"}) == "3");
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "k1", "k2"}) == "7 8");
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "AUTH", "keys", "KEYS", "k1", "k2"}) ==
        "9 10");
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "KEYS", "k1", "keys", "k2"}) == "7 8 9");
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "AUTH2", "u", "p", "KEYS", "k1"}) == "10");
  // KEYS form with a non-empty key argument, or with no keys: MIGRATE rejects it.
  CHECK(keys({"MIGRATE", "h", "6379", "k", "0", "5000", "KEYS", "k1"}) == "malformed");
  CHECK(keys({"MIGRATE", "h", "6379", "", "0", "5000", "KEYS"}) == "malformed");
}

TEST_CASE("extract_keys: subcommands use absolute positions", "[command_table][keys]") {
  CHECK(keys({"OBJECT", "ENCODING", "k"}) == "2");
  CHECK(keys({"object", "freq", "k"}) == "2");
  CHECK(keys({"MEMORY", "USAGE", "k"}) == "2");
  CHECK(keys({"MEMORY", "USAGE", "k", "SAMPLES", "5"}) == "2");
  CHECK(keys({"XINFO", "STREAM", "k"}) == "2");
  CHECK(keys({"XINFO", "STREAM", "k", "FULL"}) == "2");
  CHECK(keys({"XGROUP", "CREATE", "k", "g", "$"}) == "2");
  CHECK(keys({"CLIENT", "SETNAME", "x"}) == "");
}

TEST_CASE("KeyPositions spills past its inline capacity", "[command_table][keys]") {
  std::vector<std::string> names;
  for (int i = 0; i < 40; ++i) names.push_back("k" + std::to_string(i));
  std::vector<std::string_view> args{"MGET"};
  for (const std::string& n : names) args.push_back(n);

  const CommandInfo& mget = cmd("mget");
  KeyPositions out;
  REQUIRE(extract_keys(mget, args, out) == KeyExtract::kOk);
  REQUIRE(out.size() == 40);
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == i + 1);

  // Reuse: extract_keys starts from a clean list.
  std::vector<std::string_view> get{"GET", "k"};
  REQUIRE(extract_keys(cmd("get"), get, out) == KeyExtract::kOk);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == 1);

  out.clear();
  for (uint32_t i = 0; i < 100; ++i) out.push(i * 3);
  REQUIRE(out.size() == 100);
  CHECK(out[15] == 45);
  CHECK(out[16] == 48);
  CHECK(out[99] == 297);
}

TEST_CASE("every command has a sane route", "[command_table][routes]") {
  auto check = [](const CommandInfo& c) {
    INFO(c.name);
    CHECK(static_cast<int>(c.route) <= static_cast<int>(Route::kRefused));
    if (c.route == Route::kRefused) {
      CHECK_FALSE(c.refuse_reason.empty());
      // Sent as "-ERR <reason>\r\n": one line, and not "ERR ERR ...".
      CHECK(c.refuse_reason.find_first_of("\r\n") == std::string_view::npos);
      CHECK(c.refuse_reason.substr(0, 3) != "ERR");
      // Undecided keyless commands get a generic refusal: there must be none.
      CHECK(c.refuse_reason.find("no routing decision") == std::string_view::npos);
    } else {
      CHECK(c.refuse_reason.empty());
    }
    if (c.route == Route::kContainer) CHECK_FALSE(c.subcommands.empty());
    // Routes that need keys only make sense for commands that have them.
    const bool keyed_route = c.route == Route::kKeyed || c.route == Route::kSplitMget ||
                             c.route == Route::kSplitMset || c.route == Route::kSplitSum;
    if (keyed_route) CHECK(has_keys(c));
  };
  for (const CommandInfo& c : table().all()) {
    check(c);
    if (c.name == "command" || c.name == "client") {
      CHECK(c.route == Route::kLocal);
      CHECK_FALSE(c.subcommands.empty());
    } else if (!c.subcommands.empty()) {
      INFO(c.name);
      CHECK(c.route == Route::kContainer);
    }
    for (const CommandInfo& s : c.subcommands) check(s);
  }
}

TEST_CASE("every command trait names a command, once, and lands on it", "[command_table][routes]") {
  std::vector<std::string_view> seen;
  for (const CommandInfo& p : detail::trait_policy()) {
    INFO(p.name);
    const CommandInfo* c = lookup(p.name);
    REQUIRE(c != nullptr);
    CHECK(p.traits != 0);
    CHECK((c->traits & p.traits) == p.traits);
    CHECK(std::find(seen.begin(), seen.end(), p.name) == seen.end());
    seen.push_back(p.name);
  }
  // The traits the connection layer relies on, by the commands Redis documents them for.
  CHECK((cmd("wait").traits & kTraitExclusive) != 0);
  CHECK((cmd("eval").traits & kTraitUndeclaredWrite) != 0);
  CHECK((cmd("eval_ro").traits & kTraitUndeclaredWrite) == 0);
  CHECK((cmd("eval_ro").traits & kTraitScript) != 0);
  CHECK((cmd("get").traits) == 0);
}

TEST_CASE("the routing policy is complete, current and minimal", "[command_table][routes]") {
  // Every policy entry names a command this Redis has, once, and differs from the default.
  std::vector<std::string_view> seen;
  for (const CommandInfo& p : detail::route_policy()) {
    INFO(p.name);
    const CommandInfo* c = lookup(p.name);
    REQUIRE(c != nullptr);
    CHECK(std::find(seen.begin(), seen.end(), p.name) == seen.end());
    seen.push_back(p.name);
    const bool restates_default = (p.route == Route::kKeyed && has_keys(*c)) ||
                                  (p.route == Route::kContainer && !c->subcommands.empty());
    CHECK_FALSE(restates_default);
  }
  // Every keyless command (not a container) is decided explicitly.
  auto decided = [&](std::string_view name) {
    return std::find(seen.begin(), seen.end(), name) != seen.end();
  };
  for (const CommandInfo& c : table().all()) {
    if (c.subcommands.empty() && !has_keys(c)) {
      INFO(c.name);
      CHECK(decided(c.name));
    }
    for (const CommandInfo& s : c.subcommands) {
      if (!has_keys(s)) {
        INFO(s.name);
        CHECK(decided(s.name));
      }
    }
  }
}

TEST_CASE("notable routing decisions", "[command_table][routes]") {
  auto route = [](std::string_view name) {
    const CommandInfo* c = lookup(name);
    REQUIRE(c != nullptr);
    return c->route;
  };
  CHECK(route("get") == Route::kKeyed);
  CHECK(route("copy") == Route::kKeyed);
  CHECK(route("eval") == Route::kKeyed);
  CHECK(route("fcall_ro") == Route::kKeyed);
  CHECK(route("xread") == Route::kKeyed);
  CHECK(route("xreadgroup") == Route::kKeyed);
  CHECK(route("msetnx") == Route::kSplitMsetnx);  // a transaction over several backends
  CHECK(route("object|encoding") == Route::kKeyed);
  CHECK(route("mget") == Route::kSplitMget);
  CHECK(route("mset") == Route::kSplitMset);
  for (auto n : {"del", "unlink", "exists", "touch"}) CHECK(route(n) == Route::kSplitSum);
  for (auto n : {"ping",
                 "echo",
                 "quit",
                 "select",
                 "auth",
                 "hello",
                 "info",
                 "readonly",
                 "readwrite",
                 "time",
                 "reset",
                 "command",
                 "command|count",
                 "command|info",
                 "command|docs",
                 "command|list",
                 "command|getkeys",
                 "command|getkeysandflags",
                 "client|setname",
                 "client|list",
                 "client|kill"}) {
    INFO(n);
    CHECK(route(n) == Route::kLocal);
  }
  // CLIENT subcommands are Lockstep's, except client-side caching and UNBLOCK (refused).
  for (const CommandInfo& s : cmd("client").subcommands) {
    INFO(s.name);
    const bool refused = s.name == "client|caching" || s.name == "client|getredir" ||
                         s.name == "client|tracking" || s.name == "client|trackinginfo" ||
                         s.name == "client|unblock";
    CHECK(s.route == (refused ? Route::kRefused : Route::kLocal));
  }
  CHECK(route("client") == Route::kLocal);  // so CLIENT SETINFO (Redis 7.2) reaches Lockstep
  CHECK(route("lolwut") == Route::kAnyBackend);
  CHECK(route("function|list") == Route::kAnyBackend);
  CHECK(route("dbsize") == Route::kFanoutSum);
  for (auto n : {"flushdb", "flushall", "script|flush", "function|flush", "config|resetstat"}) {
    INFO(n);
    CHECK(route(n) == Route::kFanoutAllOk);
  }
  for (auto n : {"script|load", "function|load", "function|delete", "function|restore"}) {
    INFO(n);
    CHECK(route(n) == Route::kFanoutSame);
  }
  CHECK(route("script|exists") == Route::kFanoutAnd);
  CHECK(route("keys") == Route::kFanoutUnion);
  CHECK(route("randomkey") == Route::kRandomKey);

  auto reason = [](std::string_view name) {
    const CommandInfo* c = lookup(name);
    REQUIRE(c != nullptr);
    REQUIRE(c->route == Route::kRefused);
    return std::string(c->refuse_reason);
  };
  CHECK(reason("shutdown") ==
        "'shutdown' is refused by Lockstep: it would stop one backend behind the proxy");
  // Pub/sub is served by each worker's subscriber hub; PUBSUB is merged over backends.
  for (auto n : {"subscribe", "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
                 "sunsubscribe", "publish"}) {
    INFO(n);
    CHECK(route(n) == Route::kLocal);
  }
  CHECK(route("spublish") == Route::kKeyed);
  CHECK(route("pubsub|channels") == Route::kFanoutUnionDistinct);
  CHECK(route("pubsub|numsub") == Route::kFanoutSumPairs);
  CHECK(route("slowlog|get") == Route::kLocal);
  CHECK(route("latency|histogram") == Route::kLocal);
  CHECK(route("scan") == Route::kLocal);
  CHECK(route("config|get") == Route::kAnyBackend);  // walks the backends with its own cursor
  // Blocking commands are keyed (served on a connection of their own); WAIT is local.
  for (auto n :
       {"blpop", "brpop", "brpoplpush", "blmove", "blmpop", "bzpopmin", "bzpopmax", "bzmpop"}) {
    INFO(n);
    CHECK(route(n) == Route::kKeyed);
  }
  CHECK(route("wait") == Route::kLocal);
  // Transactions queue in the proxy and commit over the backends (client_txn.cpp).
  for (auto n : {"multi", "exec", "discard", "watch", "unwatch"}) {
    INFO(n);
    CHECK(route(n) == Route::kLocal);
  }
  for (const CommandInfo& s : cmd("acl").subcommands) {
    INFO(s.name);
    if (s.name == "acl|whoami")
      CHECK(s.route == Route::kLocal);  // the connection's configured user
    else
      CHECK(reason(s.name) == "ACL is managed in Lockstep's configuration");
  }
  for (auto n :
       {"replicaof",    "slaveof",       "sync",          "psync",          "failover",
        "migrate",      "asking",        "cluster|nodes", "cluster|slots",  "save",
        "bgsave",       "bgrewriteaof",  "swapdb",        "move",           "debug",
        "cluster|info", "lastsave",      "memory|stats",  "latency|doctor", "latency|graph",
        "config|set",   "config|rewrite"}) {
    INFO(n);
    CHECK_FALSE(reason(n).empty());
  }
}

}  // namespace lockstep::proxy

// LOCK.* argument parsing (distinct, named errors) and reply encoding.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "lockstep/lock/command.h"

using namespace lockstep::lock;

namespace {

template <class T>
std::string error_of(const std::variant<T, ArgError>& v) {
  const auto* e = std::get_if<ArgError>(&v);
  return e ? e->text : "";
}

using Argv = std::vector<std::string_view>;

}  // namespace

TEST_CASE("LOCK.ACQUIRE arguments", "[lock][command]") {
  LockSettings s;
  auto ok = parse_acquire(Argv{"LOCK.ACQUIRE", "job", "5000"}, s);
  REQUIRE(std::holds_alternative<AcquireArgs>(ok));
  CHECK(std::get<AcquireArgs>(ok).ttl_ms == 5000);
  CHECK_FALSE(std::get<AcquireArgs>(ok).wait_ms);

  auto all = parse_acquire(
      Argv{"lock.acquire", "job", "5000", "keepalive", "Owner", "w-1", "wait", "0"}, s);
  REQUIRE(std::holds_alternative<AcquireArgs>(all));
  const auto& a = std::get<AcquireArgs>(all);
  CHECK(a.wait_ms == 0);
  CHECK(a.owner == "w-1");
  CHECK(a.keepalive);

  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job"}, s)) ==
        "ERR wrong number of arguments for 'lock.acquire' command");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "abc"}, s)) ==
        "ERR invalid ttl-ms 'abc': expected an integer from 3 to 60000");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "60001"}, s)) ==
        "ERR invalid ttl-ms '60001': expected an integer from 3 to 60000");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "2"}, s)).find("ttl-ms") !=
        std::string::npos);
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "", "100"}, s)) ==
        "ERR invalid lock name: it must not be empty");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "100", "WAIT", "-1"}, s))
            .rfind("ERR invalid WAIT '-1'", 0) == 0);
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "100", "OWNER", ""}, s)) ==
        "ERR invalid OWNER: it must not be empty");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "100", "WAIT"}, s)) ==
        "ERR syntax error");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "100", "KEEPALIVE", "KEEPALIVE"}, s)) ==
        "ERR syntax error");
  CHECK(error_of(parse_acquire(Argv{"LOCK.ACQUIRE", "job", "100", "NX"}, s)) == "ERR syntax error");
}

TEST_CASE("LOCK.RELEASE, EXTEND, STATUS, GUARD arguments", "[lock][command]") {
  LockSettings s;
  CHECK(std::get<ReleaseArgs>(parse_release(Argv{"LOCK.RELEASE", "job", "tok"})).token == "tok");
  CHECK(error_of(parse_release(Argv{"LOCK.RELEASE", "job"})) ==
        "ERR wrong number of arguments for 'lock.release' command");
  CHECK(std::get<ExtendArgs>(parse_extend(Argv{"LOCK.EXTEND", "job", "tok", "300"}, s)).ttl_ms ==
        300);
  CHECK(error_of(parse_extend(Argv{"LOCK.EXTEND", "job", "tok", "0"}, s))
            .rfind("ERR invalid ttl-ms '0'", 0) == 0);
  CHECK(std::get<StatusArgs>(parse_status(Argv{"LOCK.STATUS", "job"})).name == "job");
  CHECK(error_of(parse_status(Argv{"LOCK.STATUS"})) ==
        "ERR wrong number of arguments for 'lock.status' command");

  const Argv g = {"LOCK.GUARD", "job", "17", "SET", "k", "v"};
  auto guard = parse_guard(g);
  REQUIRE(std::holds_alternative<GuardArgs>(guard));
  CHECK(std::get<GuardArgs>(guard).fence == 17);
  CHECK(std::get<GuardArgs>(guard).command.size() == 3);
  CHECK(std::get<GuardArgs>(guard).command[0] == "SET");
  CHECK(error_of(parse_guard(Argv{"LOCK.GUARD", "job", "17"})) ==
        "ERR wrong number of arguments for 'lock.guard' command");
  CHECK(error_of(parse_guard(Argv{"LOCK.GUARD", "job", "x", "PING"})) ==
        "ERR invalid fence 'x': expected an integer from 0 to 9007199254740992");
  CHECK(std::holds_alternative<ArgError>(
      parse_guard(Argv{"LOCK.GUARD", "job", "9007199254740993", "PING"})));
}

TEST_CASE("LOCK.* replies", "[lock][command]") {
  const std::vector<std::string> names = {"r1", "r2", "r3"};
  std::string out;
  append_acquire_reply(out, Granted{"tok", 7, 4950, false}, names, 2);
  CHECK(out == "*3\r\n$3\r\ntok\r\n:7\r\n:4950\r\n");
  out.clear();
  append_acquire_reply(out, Busy{100}, names, 2);
  CHECK(out == "$-1\r\n");
  out.clear();
  append_acquire_reply(out, Busy{100}, names, 3);
  CHECK(out == "_\r\n");
  out.clear();
  append_acquire_reply(
      out, NoQuorum{1, 2, 3, {{0, Vote::Kind::kYes, ""}, {1, Vote::Kind::kTimeout, ""}}}, names, 2);
  CHECK(out == "-NOQUORUM 1 of 3 lock backends answered, 2 needed (r1: yes; r2: timeout)\r\n");
  out.clear();
  append_acquire_reply(out, Cancelled{}, names, 2);
  CHECK(out.empty());

  out.clear();
  append_release_reply(out, Released{}, names, 2);
  append_release_reply(out, NotHeld{}, names, 2);
  CHECK(out == ":1\r\n:0\r\n");
  out.clear();
  append_extend_reply(out, Extended{2975}, names, 2);
  append_extend_reply(out, NotHeld{}, names, 2);
  append_extend_reply(out, LockError{"LOCKCONFIG x", {}}, names, 2);
  CHECK(out == ":2975\r\n:0\r\n-LOCKCONFIG x\r\n");

  out.clear();
  append_status_reply(out, LockStatus{true, 7, 900, 3}, 2, names, 2);
  CHECK(out ==
        "*8\r\n$4\r\nheld\r\n:1\r\n$5\r\nfence\r\n:7\r\n$6\r\nttl-ms\r\n:900\r\n$7\r\nwaiters\r\n:"
        "2\r\n");
  out.clear();
  append_status_reply(out, LockStatus{false, 7, 0, 3}, 0, names, 3);
  CHECK(out.rfind("%4\r\n", 0) == 0);
}

// Connection-level commands Lockstep answers itself (PING, ECHO, SELECT, QUIT, AUTH, HELLO,
// CLIENT, INFO, COMMAND, READONLY, TIME) and error replies that must read exactly as Redis'.
#include <chrono>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

bool all_digits(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

TEST_CASE("unknown commands and wrong arity answer as Redis", "[integration][connection]") {
  Cluster cluster;
  Client c = cluster.client();
  Client direct = cluster.direct(0);

  Reply unknown = c("foo", "a", "b");
  CHECK(unknown == Reply::error("ERR unknown command 'foo', with args beginning with: 'a' 'b' "));
  CHECK(unknown == direct("foo", "a", "b"));
  CHECK(c("PING") == Reply::status("PONG"));

  CHECK(c("nosuchcommand") == direct("nosuchcommand"));
  CHECK(c("FOO", "x") == direct("FOO", "x"));

  Reply arity = c("GET");
  CHECK(arity == Reply::error("ERR wrong number of arguments for 'get' command"));
  CHECK(arity == direct("GET"));
  CHECK(c("get", "a", "b") == direct("get", "a", "b"));
  CHECK(c("SET", "onlykey") == direct("SET", "onlykey"));
  CHECK(c("MGET") == direct("MGET"));
  CHECK(c("DEL") == direct("DEL"));
  CHECK(c("CLIENT", "SETNAME") == direct("CLIENT", "SETNAME"));

  // The connection is still usable.
  CHECK(c("SET", "after-errors", "ok").is_ok());
  CHECK(c("GET", "after-errors") == Reply::string("ok"));
}

TEST_CASE("PING, ECHO, SELECT and QUIT", "[integration][connection]") {
  Cluster cluster;
  Client c = cluster.client();
  Client direct = cluster.direct(1);
  CHECK(c("PING") == Reply::status("PONG"));
  CHECK(c("PING", "hello world") == Reply::string("hello world"));
  CHECK(c("ping", "x", "y") == direct("ping", "x", "y"));  // arity error as Redis
  CHECK(c("ECHO", "echo me") == Reply::string("echo me"));
  CHECK(c("ECHO", std::string("\0bin\r\n", 6)) == Reply::string(std::string("\0bin\r\n", 6)));
  CHECK(c("SELECT", "0").is_ok());
  Reply select1 = c("SELECT", "1");
  CHECK(select1.is_error());
  CHECK(c("SELECT", "notanumber").is_error());
  // Still DB 0 and usable.
  CHECK(c("SET", "sel", "v").is_ok());
  CHECK(cluster.direct(cluster.owner("sel"))("GET", "sel") == Reply::string("v"));

  RawConn raw = cluster.raw();
  REQUIRE(raw.send(encode_command({"QUIT"})));
  CHECK(or_none(raw.read_line(3s)) == "+OK\r\n");
  CHECK(raw.closed_by_peer(3s));
}

TEST_CASE("AUTH without a configured password answers as Redis",
          "[integration][connection][auth]") {
  Cluster cluster;
  Client c = cluster.client();
  Reply r = c("AUTH", "whatever");
  CHECK(r == Reply::error("ERR AUTH <password> called without any password configured for the "
                          "default user. Are you sure your configuration is correct?"));
  CHECK(r == cluster.direct(0)("AUTH", "whatever"));
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("password: commands need AUTH first", "[integration][connection][auth]") {
  RedisOptions ref_options;
  ref_options.password = "secret";
  RedisServer reference(ref_options);  // a redis-server with requirepass, for "as Redis"
  ClusterOptions options;
  options.extra_yaml = "password: secret\n";
  Cluster cluster(options);

  // Runs argv on a lockstep connection and on a reference connection; the replies must match.
  auto both = [](Client& proxy, Client& ref, const std::vector<std::string>& argv) {
    Reply actual = proxy.command(argv);
    Reply expected = ref.command(argv);
    INFO("command: " << argv[0] << (argv.size() > 1 ? " " + argv[1] : std::string()));
    CHECK(actual == expected);
    return actual;
  };
  const Reply noauth = Reply::error("NOAUTH Authentication required.");
  const Reply wrongpass =
      Reply::error("WRONGPASS invalid username-password pair or user is disabled.");

  Client c = cluster.client();
  Client ref = reference.client();
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {"GET", "k"}, {"SET", "k", "v"}, {"PING"}, {"DBSIZE"}, {"KEYS", "*"}}) {
    CHECK(both(c, ref, argv) == noauth);
  }
  CHECK(both(c, ref, {"AUTH", "wrong"}) == wrongpass);
  CHECK(both(c, ref, {"GET", "k"}) == noauth);  // a failed AUTH does not authenticate
  CHECK(both(c, ref, {"AUTH", "secret"}).is_ok());
  CHECK(both(c, ref, {"SET", "k", "v"}).is_ok());
  CHECK(both(c, ref, {"GET", "k"}) == Reply::string("v"));
  CHECK(both(c, ref, {"AUTH", "wrong"}) == wrongpass);
  both(c, ref, {"GET", "k"});  // whatever Redis does after a failed re-AUTH

  Client c2 = cluster.client();
  Client ref2 = reference.client();
  CHECK(both(c2, ref2, {"AUTH", "default", "wrong"}) == wrongpass);
  CHECK(both(c2, ref2, {"AUTH", "someone", "secret"}) == wrongpass);
  CHECK(both(c2, ref2, {"AUTH", "default", "secret"}).is_ok());
  CHECK(both(c2, ref2, {"GET", "k"}) == Reply::string("v"));
  CHECK(both(c2, ref2, {"AUTH", "a", "b", "c"}).is_error());  // syntax error

  // HELLO with AUTH authenticates too (clients use it to connect in one round trip).
  Client c3 = cluster.client();
  Reply hello = c3("HELLO", "2", "AUTH", "default", "secret");
  CHECK(hello.is_array());
  CHECK(c3("GET", "k") == Reply::string("v"));
  Client c4 = cluster.client();
  Client ref4 = reference.client();
  CHECK(both(c4, ref4, {"HELLO", "2", "AUTH", "default", "wrong"}).is_error());
  CHECK(both(c4, ref4, {"GET", "k"}) == noauth);
}

TEST_CASE("HELLO 2 and HELLO 3", "[integration][connection][hello]") {
  Cluster cluster;
  Client c = cluster.client();
  Reply hello = c("HELLO", "2");
  REQUIRE(hello.is_array());
  REQUIRE(hello.elements.size() == 14);
  const std::vector<std::string> fields = {"server", "version", "proto",  "id",
                                           "mode",   "role",    "modules"};
  for (size_t i = 0; i < fields.size(); ++i) {
    INFO("field " << i);
    CHECK(hello.elements[2 * i] == Reply::string(fields[i]));
  }
  CHECK(hello.elements[1].is_string());
  CHECK(hello.elements[3].is_string());
  CHECK(hello.elements[5] == Reply::integer_(2));
  CHECK(hello.elements[7].is_integer());
  CHECK(hello.elements[9].is_string());
  CHECK(hello.elements[11].is_string());
  CHECK(hello.elements[13].is_array());
  CHECK(c("CLIENT", "ID") == hello.elements[7]);
  CHECK(c("HELLO") == c("HELLO", "2"));  // no version: current protocol
  CHECK(c("HELLO", "4") == Reply::error("NOPROTO unsupported protocol version"));
  CHECK(c("HELLO", "4") == cluster.direct(0)("HELLO", "4"));
  CHECK(c("PING") == Reply::status("PONG"));

  // HELLO 3 over a raw socket (hiredis 0.14 does not parse RESP3): either a RESP3 map, or
  // NOPROTO; the connection keeps working either way.
  RawConn raw = cluster.raw();
  REQUIRE(raw.send(encode_command({"HELLO", "3"})));
  auto r3 = raw.read_reply(3s);
  REQUIRE(r3);
  INFO("HELLO 3 reply: " << *r3);
  const bool resp3 = r3->type == Reply::Type::kMap;
  CHECK((resp3 || *r3 == Reply::error("NOPROTO unsupported protocol version")));
  if (resp3) {
    bool proto3 = false;
    for (size_t i = 0; i + 1 < r3->elements.size(); i += 2) {
      if (r3->elements[i] == Reply::string("proto")) proto3 = r3->elements[i + 1].integer == 3;
    }
    CHECK(proto3);
  }
  REQUIRE(raw.send(encode_command({"PING"})));
  CHECK(or_none(raw.read_reply(3s)) == Reply::status("PONG"));
  REQUIRE(raw.send(encode_command({"SET", "h3", "v"}) + encode_command({"GET", "h3"})));
  CHECK(or_none(raw.read_reply(3s)) == Reply::status("OK"));
  CHECK(or_none(raw.read_reply(3s)) == Reply::string("v"));
  if (resp3) {
    REQUIRE(raw.send(encode_command({"GET", "h3:missing"})));
    auto nil = raw.read_raw_reply(3s);
    CHECK(or_none(nil) == "_\r\n");  // RESP3 null
    REQUIRE(raw.send(encode_command({"HELLO", "2"})));
    auto back = raw.read_reply(3s);
    REQUIRE(back);
    CHECK(back->is_array());
    REQUIRE(raw.send(encode_command({"GET", "h3:missing"})));
    CHECK(or_none(raw.read_raw_reply(3s)) == "$-1\r\n");
  }
}

TEST_CASE("CLIENT subcommands", "[integration][connection][client]") {
  Cluster cluster;
  Client c = cluster.client();
  Client other = cluster.client();
  CHECK(c("CLIENT", "GETNAME").is_nil());
  CHECK(c("CLIENT", "SETNAME", "itest").is_ok());
  CHECK(c("CLIENT", "GETNAME") == Reply::string("itest"));
  CHECK(c("CLIENT", "SETNAME", "bad name") == cluster.direct(0)("CLIENT", "SETNAME", "bad name"));
  Reply id = c("CLIENT", "ID");
  REQUIRE(id.is_integer());
  Reply other_id = other("CLIENT", "ID");
  REQUIRE(other_id.is_integer());
  CHECK(id.integer != other_id.integer);
  CHECK(c("CLIENT", "SETINFO", "lib-name", "itest-lib").is_ok());
  CHECK(c("CLIENT", "SETINFO", "lib-ver", "1.2.3").is_ok());
  CHECK(c("CLIENT", "SETINFO", "no-such-attr", "x").is_error());

  Reply info = c("CLIENT", "INFO");
  REQUIRE(info.is_string());
  CHECK_THAT(info.str, Catch::Contains("id=" + std::to_string(id.integer) + " "));
  CHECK_THAT(info.str, Catch::Contains("name=itest"));

  Reply list = c("CLIENT", "LIST");
  REQUIRE(list.is_string());
  CHECK_THAT(list.str, Catch::Contains("name=itest"));
  CHECK_THAT(list.str, Catch::Contains("id=" + std::to_string(other_id.integer) + " "));
  CHECK(c("CLIENT", "NOSUCHSUB").is_error());
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("INFO, COMMAND, READONLY/READWRITE and TIME", "[integration][connection]") {
  Cluster cluster;
  Client c = cluster.client();
  Client direct = cluster.direct(0);

  Reply info = c("INFO");
  REQUIRE(info.is_string());
  CHECK_THAT(info.str, Catch::Contains("redis_version:"));
  CHECK_THAT(info.str, Catch::Contains("loading:0"));
  Reply server = c("INFO", "server");
  REQUIRE(server.is_string());
  CHECK_THAT(server.str, Catch::Contains("redis_version:"));

  Reply count = c("COMMAND", "COUNT");
  REQUIRE(count.is_integer());
  CHECK(count.integer > 200);

  Reply docs = c("COMMAND", "DOCS", "get");
  REQUIRE(docs.is_array());
  REQUIRE(docs.elements.size() == 2);
  CHECK(docs.elements[0] == Reply::string("get"));
  CHECK(docs == direct("COMMAND", "DOCS", "get"));

  Reply cinfo = c("COMMAND", "INFO", "get");
  REQUIRE(cinfo.is_array());
  REQUIRE(cinfo.elements.size() == 1);
  REQUIRE(cinfo.elements[0].is_array());
  REQUIRE(cinfo.elements[0].elements.size() >= 2);
  CHECK(cinfo.elements[0].elements[0] == Reply::string("get"));
  CHECK(cinfo.elements[0].elements[1] == Reply::integer_(2));
  CHECK(cinfo == direct("COMMAND", "INFO", "get"));

  CHECK(c("READONLY").is_ok());
  CHECK(c("GET", "k").is_nil());
  CHECK(c("READWRITE").is_ok());

  Reply t = c("TIME");
  REQUIRE(t.is_array());
  REQUIRE(t.elements.size() == 2);
  CHECK(all_digits(t.elements[0].str));
  CHECK(all_digits(t.elements[1].str));
  const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  CHECK(std::abs(std::stoll(t.elements[0].str) - now) < 10);
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("QUIT after pipelined commands answers them, then closes", "[integration][connection]") {
  Cluster cluster;
  RedisServer reference;
  const std::string bytes = "PING\r\n" + encode_command({"ECHO", "x"}) + "QUIT\r\nPING\r\n";
  auto transcript = [&](uint16_t port) {
    RawConn conn(port);
    REQUIRE(conn.send(bytes));
    CHECK(conn.closed_by_peer(3s));
    return conn.buffer();
  };
  const std::string expected = transcript(reference.port());
  CHECK(expected == "+PONG\r\n$1\r\nx\r\n+OK\r\n");
  CHECK(transcript(cluster.port()) == expected);
}

TEST_CASE("refused commands answer an error and the connection stays usable",
          "[integration][connection]") {
  Cluster cluster;
  Client c = cluster.client(5s);
  REQUIRE(c("SET", "refused:k", "v").is_ok());
  const std::vector<std::vector<std::string>> refused = {
      {"SHUTDOWN"},
      {"SHUTDOWN", "NOSAVE"},
      {"CONFIG", "SET", "maxmemory", "1"},
      {"MOVE", "refused:k", "1"},
      {"SWAPDB", "0", "1"},
      {"COPY", "refused:k", "refused:k2", "DB", "1"},
      {"CLUSTER", "NODES"},
      {"DEBUG", "SLEEP", "0"},
  };
  for (const auto& argv : refused) {
    const auto start = Clock::now();
    Reply r = c.command(argv);
    INFO(show(argv) << " -> " << r);
    CHECK(r.is_error());
    CHECK(elapsed_ms(start) < 2000);
    REQUIRE(c("GET", "refused:k") == Reply::string("v"));
  }
  // Nothing reached the backends: all still up, DB 0 still holds the key.
  for (size_t b = 0; b < 3; ++b) {
    CHECK(cluster.backend(b).running());
    CHECK(cluster.direct(b)("PING") == Reply::status("PONG"));
  }
  CHECK(cluster.direct(cluster.owner("refused:k"))("GET", "refused:k") == Reply::string("v"));
  CHECK(cluster.proxy().running());
}

TEST_CASE("before AUTH, Redis' tighter protocol limits apply", "[integration][connection][auth]") {
  RedisOptions ref_options;
  ref_options.password = "secret";
  RedisServer reference(ref_options);
  ClusterOptions options;
  options.extra_yaml = "password: secret\n";
  Cluster cluster(options);
  for (const std::string bytes : {"*100\r\n", "*2\r\n$4\r\nAUTH\r\n$100000\r\n"}) {
    auto first = [&](uint16_t port) {
      RawConn conn(port);
      REQUIRE(conn.send(bytes));
      std::string line = or_none(conn.read_line(3s));
      CHECK(conn.closed_by_peer(3s));
      return line;
    };
    const std::string expected = first(reference.port());
    INFO("request " << Reply::string(bytes));
    CHECK_THAT(expected, Catch::StartsWith("-ERR Protocol error: unauthenticated"));
    CHECK(first(cluster.port()) == expected);
  }
  // After AUTH the usual limits apply.
  Client c = cluster.client();
  REQUIRE(c("AUTH", "secret").is_ok());
  std::vector<std::string> mset{"MSET"};
  for (int i = 0; i < 50; ++i) {
    mset.push_back("ua:" + std::to_string(i));
    mset.push_back(std::string(20000, 'v'));
  }
  CHECK(c.command(mset).is_ok());
}

TEST_CASE("client_idle_s closes idle clients only", "[integration][connection]") {
  ClusterOptions options;
  options.extra_yaml = "timeouts:\n  client_idle_s: 1\n";
  Cluster cluster(options);
  RawConn idle = cluster.raw();
  Client active = cluster.client();
  const auto start = Clock::now();
  bool active_ok = true;
  // Keep one client busy for longer than the idle timeout.
  while (elapsed_ms(start) < 2500) {
    active_ok = active_ok && active("PING") == Reply::status("PONG");
    if (idle.closed_by_peer(100ms)) break;
  }
  CHECK(idle.closed_by_peer(3s));
  const auto closed_after = elapsed_ms(start);
  INFO("idle client closed after " << closed_after << " ms");
  CHECK(closed_after >= 900);
  CHECK(closed_after < 4000);
  CHECK(active_ok);
  CHECK(active("PING") == Reply::status("PONG"));
}

TEST_CASE("odd arguments get the same errors as from Redis", "[integration][connection]") {
  RedisServer reference;
  Cluster cluster;
  Compare c(reference.client(), cluster.client());
  const std::string long_arg(300, 'L');
  c.same_error({"foo", long_arg, "second", "third"});  // Redis truncates the echoed args
  c.same_error({"gEt"});
  c.same_error({"CLIENT"});
  c.same_error({"OBJECT"});
  c.same_error({"SCRIPT"});
  c.same_error({"SCRIPT", "FOO"});
  c.same_error({"OBJECT", "FOO", "k"});
  c.same_error({"COMMAND", "FOO"});
  c.same_error({"EVAL", "return 1", "notanumber"});
  c.same_error({"EVAL", "return 1", "-1"});
  c.same_error({"EVAL", "return 1", "3", "a"});
  c.same_error({"ZUNIONSTORE", "d", "notanumber", "a"});
  c.same_error({"ZUNIONSTORE", "d", "0", "a"});
  c.same_error({"LMPOP", "0", "a", "LEFT"});
  c.same_error({"XREAD", "STREAMS", "a"});
  c.same_error({"XREAD", "COUNT", "x", "STREAMS", "a", "0"});
  c.same_error({"SINTERCARD", "5", "a"});
  c.same_error({"GEORADIUS", "a", "1", "2", "3", "km", "STORE"});
  c.same({"gEt", "case-insensitive"});
  c.same({"SeT", "case-insensitive", "v"});
  c.same({"get", "case-insensitive"});
}

// SCAN over a sharded keyspace: Lockstep walks the backends one after another with a cursor
// that names the backend, and must keep Redis' guarantees (every key present for the whole
// iteration is returned at least once; nothing that never existed is returned). HSCAN, SSCAN
// and ZSCAN are ordinary keyed commands.
#include <algorithm>
#include <set>

#include <catch2/catch.hpp>

#include "support/compare.h"
#include "support/harness.h"

using namespace lockstep::test;

namespace {

struct ScanResult {
  std::vector<std::string> keys;  // in the order returned, duplicates kept
  std::set<std::string> unique;
  int calls = 0;
  std::vector<std::string> cursors;
};

// SCAN from cursor 0 until the cursor is 0 again, with `options` after the cursor.
// `between` (optional) runs after every call.
ScanResult scan_all(Client& c, const std::vector<std::string>& options,
                    const std::function<void()>& between = {}) {
  ScanResult out;
  std::string cursor = "0";
  do {
    std::vector<std::string> argv{"SCAN", cursor};
    argv.insert(argv.end(), options.begin(), options.end());
    const Reply r = c.command(argv);
    ++out.calls;
    INFO("SCAN " << cursor << " -> " << r);
    REQUIRE(r.is_array());
    REQUIRE(r.elements.size() == 2);
    REQUIRE(r.elements[0].is_string());
    REQUIRE(r.elements[1].is_array());
    cursor = r.elements[0].str;
    out.cursors.push_back(cursor);
    for (const auto& e : r.elements[1].elements) {
      REQUIRE(e.is_string());
      out.keys.push_back(e.str);
      out.unique.insert(e.str);
    }
    if (between) between();
    REQUIRE(out.calls < 200000);  // a cursor that never returns to 0
  } while (cursor != "0");
  return out;
}

// Sends SET <prefix><i> v for i in [0, n) in one pipeline; returns the keys.
std::vector<std::string> set_keys(uint16_t port, const std::string& prefix, int n) {
  std::vector<std::string> keys;
  std::string payload;
  for (int i = 0; i < n; ++i) {
    keys.push_back(prefix + std::to_string(i));
    payload += encode_command({"SET", keys.back(), "v"});
  }
  const auto replies = pipeline_raw(port, payload, keys.size());
  REQUIRE(replies.size() == keys.size());
  for (const auto& r : replies) REQUIRE(r.is_ok());
  return keys;
}

// Runs `commands` in one pipeline; every reply must be a non-error.
void run_all(uint16_t port, const std::vector<std::vector<std::string>>& commands) {
  std::string payload;
  for (const auto& c : commands) payload += encode_command(c);
  const auto replies = pipeline_raw(port, payload, commands.size());
  REQUIRE(replies.size() == commands.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    INFO(show(commands[i]) << " -> " << replies[i]);
    REQUIRE_FALSE(replies[i].is_error());
    REQUIRE_FALSE(replies[i].is_io_error());
  }
}

std::set<std::string> to_set(const std::vector<std::string>& v) {
  return std::set<std::string>(v.begin(), v.end());
}

std::set<std::string> with_prefix(const std::set<std::string>& all, std::string_view prefix) {
  std::set<std::string> out;
  for (const auto& k : all)
    if (std::string_view(k).substr(0, prefix.size()) == prefix) out.insert(k);
  return out;
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    if (eol > pos) out.insert(text.substr(pos, eol - pos));
    pos = eol + 1;
  }
  return out;
}

}  // namespace

TEST_CASE("SCAN: a full iteration returns every key of every backend",
          "[integration][issue3][scan]") {
  Cluster cluster;
  const auto keys = set_keys(cluster.port(), "key:", 5000);
  const std::set<std::string> expected = to_set(keys);
  for (size_t b = 0; b < cluster.size(); ++b) {
    INFO("backend " << b);
    CHECK(cluster.direct(b)("DBSIZE").integer > 1000);  // spread over all three
  }

  Client c = cluster.client();
  for (const auto& options : std::vector<std::vector<std::string>>{
           {}, {"COUNT", "1000"}, {"COUNT", "1"}, {"COUNT", "100000"}}) {
    INFO("SCAN cursor " << show(options));
    const ScanResult res = scan_all(c, options);
    CHECK(res.unique == expected);  // duplicates are allowed, missing keys are not
    CHECK(res.keys.size() >= expected.size());
    CHECK(res.calls >= 2);
  }

  // An empty keyspace: the iteration still ends, with nothing.
  REQUIRE(c("FLUSHALL").is_ok());
  const ScanResult empty = scan_all(c, {});
  CHECK(empty.keys.empty());
}

TEST_CASE("SCAN: MATCH, COUNT and TYPE options", "[integration][issue3][scan]") {
  Cluster cluster;
  std::vector<std::vector<std::string>> commands;
  std::set<std::string> strings, hashes, lists, sets, zsets, streams;
  for (int i = 0; i < 600; ++i) {
    const std::string k = "str:" + std::to_string(i);
    strings.insert(k);
    commands.push_back({"SET", k, "v"});
  }
  for (int i = 0; i < 300; ++i) {
    const std::string k = "hash:" + std::to_string(i);
    hashes.insert(k);
    commands.push_back({"HSET", k, "f", "v"});
  }
  for (int i = 0; i < 150; ++i) {
    const std::string n = std::to_string(i);
    lists.insert("list:" + n);
    commands.push_back({"RPUSH", "list:" + n, "a"});
    sets.insert("set:" + n);
    commands.push_back({"SADD", "set:" + n, "a"});
    zsets.insert("zset:" + n);
    commands.push_back({"ZADD", "zset:" + n, "1", "a"});
  }
  for (int i = 0; i < 50; ++i) {
    const std::string k = "stream:" + std::to_string(i);
    streams.insert(k);
    commands.push_back({"XADD", k, "*", "f", "v"});
  }
  run_all(cluster.port(), commands);
  std::set<std::string> all;
  for (const auto* s : {&strings, &hashes, &lists, &sets, &zsets, &streams})
    all.insert(s->begin(), s->end());

  Client c = cluster.client();
  CHECK(scan_all(c, {}).unique == all);
  CHECK(scan_all(c, {"MATCH", "str:*"}).unique == strings);
  CHECK(scan_all(c, {"MATCH", "str:1*"}).unique == with_prefix(strings, "str:1"));
  CHECK(scan_all(c, {"MATCH", "str:1?"}).unique ==
        std::set<std::string>{"str:10", "str:11", "str:12", "str:13", "str:14", "str:15", "str:16",
                              "str:17", "str:18", "str:19"});
  CHECK(scan_all(c, {"MATCH", "nothing:*"}).unique.empty());
  CHECK(scan_all(c, {"TYPE", "string"}).unique == strings);
  CHECK(scan_all(c, {"TYPE", "hash"}).unique == hashes);
  CHECK(scan_all(c, {"TYPE", "list"}).unique == lists);
  CHECK(scan_all(c, {"TYPE", "set"}).unique == sets);
  CHECK(scan_all(c, {"TYPE", "zset"}).unique == zsets);
  CHECK(scan_all(c, {"TYPE", "stream"}).unique == streams);
  CHECK(scan_all(c, {"MATCH", "hash:2*", "TYPE", "hash", "COUNT", "50"}).unique ==
        with_prefix(hashes, "hash:2"));
  CHECK(scan_all(c, {"MATCH", "hash:*", "TYPE", "string"}).unique.empty());

  // SCAN MATCH agrees with KEYS.
  const Reply keys = c("KEYS", "set:1*");
  REQUIRE(keys.is_array());
  CHECK(scan_all(c, {"MATCH", "set:1*"}).unique == to_set(keys.as_strings()));

  // COUNT is a hint, but a small one takes many more calls than a large one.
  const ScanResult small = scan_all(c, {"COUNT", "5"});
  const ScanResult large = scan_all(c, {"COUNT", "5000"});
  CHECK(small.unique == all);
  CHECK(large.unique == all);
  INFO("calls with COUNT 5: " << small.calls << ", with COUNT 5000: " << large.calls);
  CHECK(small.calls > 4 * large.calls);
}

TEST_CASE("SCAN: invalid cursors and options", "[integration][issue3][scan]") {
  Cluster cluster;
  RedisServer reference;
  set_keys(cluster.port(), "k:", 100);
  set_keys(reference.port(), "k:", 100);
  Compare cmp(reference.client(), cluster.client());

  // Not a number: Redis' own error.
  for (const char* cursor : {"abc", "1.5", "0x10", "18446744073709551616", " 1"}) {
    const Reply r = cmp.same_error({"SCAN", cursor});
    CHECK(r == Reply::error("ERR invalid cursor"));
  }
  // With three backends the low two bits of a Lockstep cursor name the backend; 3 names none.
  Client c = cluster.client();
  for (const char* cursor : {"3", "7", "11", "1023", "18446744073709551615"}) {
    INFO("SCAN " << cursor);
    CHECK(c("SCAN", cursor) == Reply::error("ERR invalid cursor"));
  }
  // Every cursor Lockstep hands out is accepted again.
  const ScanResult res = scan_all(c, {"COUNT", "10"});
  for (const auto& cursor : res.cursors) {
    INFO("SCAN " << cursor);
    CHECK(c("SCAN", cursor, "COUNT", "10").is_array());
  }

  // Bad options get Redis' errors.
  cmp.same_error({"SCAN", "0", "COUNT", "0"});
  cmp.same_error({"SCAN", "0", "COUNT", "abc"});
  cmp.same_error({"SCAN", "0", "MATCH"});
  cmp.same_error({"SCAN", "0", "TYPE"});
  cmp.same_error({"SCAN", "0", "NOSUCHOPTION", "x"});
  cmp.same_error({"SCAN"});

  // The connection is still fine.
  CHECK(c("PING") == Reply::status("PONG"));
  CHECK(c("GET", "k:1") == Reply::string("v"));
}

TEST_CASE("SCAN: five backends, cursors naming no backend are refused",
          "[integration][issue3][scan]") {
  ClusterOptions options;
  options.backends = 5;
  Cluster cluster(options);
  const auto keys = set_keys(cluster.port(), "five:", 1000);
  for (size_t b = 0; b < cluster.size(); ++b) CHECK(cluster.direct(b)("DBSIZE").integer > 0);
  Client c = cluster.client();
  CHECK(scan_all(c, {}).unique == to_set(keys));
  CHECK(scan_all(c, {"COUNT", "3"}).unique == to_set(keys));
  // Three low bits name one of five backends: 5, 6 and 7 are beyond the last.
  for (const char* cursor : {"5", "6", "7", "13", "15"}) {
    INFO("SCAN " << cursor);
    CHECK(c("SCAN", cursor) == Reply::error("ERR invalid cursor"));
  }
}

TEST_CASE("SCAN: keys inserted and deleted during the iteration", "[integration][issue3][scan]") {
  Cluster cluster;
  // Present for the whole scan: must all be returned.
  const auto stable = set_keys(cluster.port(), "stable:", 3000);
  // Deleted while the scan runs: may or may not be returned.
  const auto doomed = set_keys(cluster.port(), "doomed:", 1000);
  std::set<std::string> existed = to_set(stable);
  existed.insert(doomed.begin(), doomed.end());

  // Between SCAN calls another client inserts 15 new keys (enough that every backend's table
  // grows and rehashes mid-scan) and deletes 5 doomed ones.
  Client writer = cluster.client();
  size_t next_new = 0, next_doomed = 0;
  auto mutate = [&] {
    std::vector<std::vector<std::string>> cmds;
    for (int i = 0; i < 15; ++i) {
      const std::string k = "new:" + std::to_string(next_new++);
      existed.insert(k);
      cmds.push_back({"SET", k, "v"});
    }
    std::vector<std::string> del{"DEL"};
    for (int i = 0; i < 5 && next_doomed < doomed.size(); ++i) del.push_back(doomed[next_doomed++]);
    if (del.size() > 1) cmds.push_back(del);
    for (const auto& r : writer.pipeline(cmds)) REQUIRE_FALSE(r.is_error());
  };

  Client scanner = cluster.client();
  const ScanResult res = scan_all(scanner, {"COUNT", "20"}, mutate);
  INFO("SCAN calls: " << res.calls << ", keys inserted meanwhile: " << next_new
                      << ", deleted: " << next_doomed);
  CHECK(next_new > 3000);  // the scan really ran while the keyspace changed a lot
  std::vector<std::string> missing;
  for (const auto& k : stable)
    if (!res.unique.count(k)) missing.push_back(k);
  CHECK(missing.empty());
  std::vector<std::string> invented;
  for (const auto& k : res.unique)
    if (!existed.count(k)) invented.push_back(k);
  CHECK(invented.empty());
}

TEST_CASE("SCAN: redis-cli --scan and --scan --pattern list every key",
          "[integration][issue3][scan][redis-cli]") {
  Cluster cluster;
  const auto a = set_keys(cluster.port(), "cli:a:", 1500);
  const auto b = set_keys(cluster.port(), "cli:b:", 500);
  std::set<std::string> all = to_set(a);
  all.insert(b.begin(), b.end());
  const std::string port = std::to_string(cluster.port());

  const ProcessResult full = run_redis_cli({"-p", port, "--scan"}, "");
  INFO("stderr: " << full.err);
  CHECK(full.exit_code == 0);
  CHECK(lines(full.out) == all);

  const ProcessResult pattern = run_redis_cli({"-p", port, "--scan", "--pattern", "cli:b:*"}, "");
  INFO("stderr: " << pattern.err);
  CHECK(pattern.exit_code == 0);
  CHECK(lines(pattern.out) == to_set(b));

  const ProcessResult none = run_redis_cli({"-p", port, "--scan", "--pattern", "zzz*"}, "");
  CHECK(none.exit_code == 0);
  CHECK(none.out.empty());
}

TEST_CASE("SCAN: HSCAN, SSCAN and ZSCAN are routed by key", "[integration][issue3][scan]") {
  Cluster cluster;
  RedisServer reference;
  std::vector<std::vector<std::string>> commands;
  // Small (listpack / intset encoded: one page, deterministic) and large (hash table) objects on
  // every backend. Large is above any *-max-listpack-entries default.
  constexpr int kLarge = 1000;
  std::vector<std::string> small_keys, large_keys;
  for (size_t b = 0; b < cluster.size(); ++b) {
    const std::string hs = cluster.key_on(b, "hs"), ss = cluster.key_on(b, "ss"),
                      zs = cluster.key_on(b, "zs"), hl = cluster.key_on(b, "hl"),
                      sl = cluster.key_on(b, "sl"), zl = cluster.key_on(b, "zl");
    for (int i = 0; i < 10; ++i) {
      const std::string n = std::to_string(i);
      commands.push_back({"HSET", hs, "f" + n, "v" + n});
      commands.push_back({"SADD", ss, n});
      commands.push_back({"ZADD", zs, n, "m" + n});
    }
    for (int i = 0; i < kLarge; ++i) {
      const std::string n = std::to_string(i);
      commands.push_back({"HSET", hl, "field:" + n, "v" + n});
      commands.push_back({"SADD", sl, "member:" + n});
      commands.push_back({"ZADD", zl, n, "member:" + n});
    }
    small_keys.insert(small_keys.end(), {hs, ss, zs});
    large_keys.insert(large_keys.end(), {hl, sl, zl});
  }
  run_all(cluster.port(), commands);
  run_all(reference.port(), commands);

  auto scan_command = [](const std::string& key) {
    return key.substr(0, 1) == "h" ? "HSCAN" : key.substr(0, 1) == "s" ? "SSCAN" : "ZSCAN";
  };

  // Small objects: one page, the same bytes as a redis-server holding the same data.
  Compare cmp(reference.client(), cluster.client());
  for (const auto& key : small_keys) {
    const std::string cmd = scan_command(key);
    cmp.same({cmd, key, "0"});
    cmp.same({cmd, key, "0", "MATCH", "*1*"});
    cmp.same({cmd, key, "0", "COUNT", "2"});
  }
  cmp.same({"HSCAN", "no-such-key", "0"});
  cmp.same_error({"HSCAN", small_keys[0], "abc"});
  cmp.same_error({"SSCAN", small_keys[1], "0", "COUNT", "0"});

  // Large objects: the cursor is the backend's own, passed through untouched, so stepping
  // through Lockstep gives exactly what stepping on the owning backend gives.
  Client proxy = cluster.client();
  for (const auto& key : large_keys) {
    const std::string cmd = scan_command(key);
    const size_t owner = cluster.owner(key);
    Client direct = cluster.direct(owner);
    // Several pages only when the object is a real hash table.
    CHECK(proxy("OBJECT", "ENCODING", key) != Reply::string("listpack"));
    std::set<std::string> items;
    std::string cursor = "0";
    int calls = 0;
    do {
      INFO(cmd << " " << key << " " << cursor << " (backend " << owner << ")");
      const Reply via_proxy = proxy(cmd, key, cursor, "COUNT", "25");
      const Reply via_backend = direct(cmd, key, cursor, "COUNT", "25");
      REQUIRE(via_proxy == via_backend);
      REQUIRE(via_proxy.is_array());
      REQUIRE(via_proxy.elements.size() == 2);
      cursor = via_proxy.elements[0].str;
      const auto& page = via_proxy.elements[1].elements;
      // HSCAN and ZSCAN return name, value pairs.
      const size_t step = cmd == "SSCAN" ? 1 : 2;
      for (size_t i = 0; i < page.size(); i += step) items.insert(page[i].str);
      REQUIRE(++calls < 10000);
    } while (cursor != "0");
    INFO(cmd << " " << key);
    CHECK(items.size() == static_cast<size_t>(kLarge));
    CHECK(calls > 4);
  }
}

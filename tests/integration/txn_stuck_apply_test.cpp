// A secondary that refuses the apply after the commit point (out of memory): the transaction
// is committed, so the resolver keeps trying at every scan and gets it through as soon as the
// backend accepts writes again. It counts every failed try but logs the error once a minute.
#include <catch2/catch.hpp>
#include <string>
#include <thread>

#include "support/harness.h"
#include "support/lock_support.h"

using namespace lockstep::test;

namespace {

long long info_count(Client& c, const std::string& field) {
  const std::string text = c("INFO", "transactions").str;
  const size_t p = text.find(field + ":");
  if (p == std::string::npos) return -1;
  return std::stoll(text.substr(p + field.size() + 1));
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t p = text.find(needle); p != std::string::npos; p = text.find(needle, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE(
    "transactions: a secondary out of memory after the commit point is rolled forward "
    "once it accepts writes again",
    "[integration][issue5][txn]") {
  ClusterOptions o;
  // The coordinator stalls right after its commit point, long enough for the lease to run out
  // and the resolver to take over the apply.
  o.extra_yaml =
      "transactions:\n  backend_check: off\n  lease_ms: 300\n  resolver_interval_ms: 100\n"
      "  failpoints: \"txn.after_commit=stall:1500@1\"\n";
  Cluster cluster(o);
  const std::string a = cluster.key_on(0, "oom"), b = cluster.key_on(1, "oom");
  Client d0 = cluster.direct(0), d1 = cluster.direct(1);
  Reply exec;
  std::thread t([&] {
    Client c = cluster.client(30s);
    c.append({"MULTI"});
    c.append({"SET", a, "txn"});
    c.append({"SET", b, "txn"});
    c.append({"EXEC"});
    for (int i = 0; i < 3; ++i) c.read_reply();
    exec = c.read_reply();
  });
  // The commit point passed: the primary applied its part.
  REQUIRE(wait_until([&] { return d0("GET", a).str == "txn"; }, 10s));
  REQUIRE(d1("CONFIG", "SET", "maxmemory", "1").is_ok());
  {
    ScopeExit lift([&] { d1("CONFIG", "SET", "maxmemory", "0"); });
    Client c = cluster.client();
    const long long before = info_count(c, "txn_resolver_errors");
    CHECK(
        wait_until([&] { return info_count(c, "txn_resolver_errors") >= before + 5; }, 20s, 20ms));
    CHECK(d1("EXISTS", b) == Reply::integer_(0));  // refused so far
  }
  CHECK(wait_until([&] { return d1("GET", b).str == "txn"; }, 10s, 20ms));
  t.join();
  INFO("the client's EXEC: " << exec);
  // Every failed try counted, one log line for them.
  const std::string log = cluster.proxy().stderr_text();
  INFO(log);
  CHECK(count(log, "tried again at every scan") == 1);
  CHECK(count(log, "got through after earlier errors") == 1);
  CHECK(count(log, "found transaction") <= 3);  // not once per scan while it was stuck
  CHECK(wait_until(
      [&] {
        return d0("KEYS", "__lockstep:tx:*").elements.empty() &&
               d1("KEYS", "__lockstep:tx:*").elements.empty();
      },
      5s, 20ms));
}

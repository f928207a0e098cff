// The metrics endpoint (metrics.listen): Prometheus text over plain HTTP, fetched with a raw
// socket; figures move with the traffic, a killed backend shows down, and promtool accepts the
// output when it is installed.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <string>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

constexpr const char* kPromtool = "/usr/bin/promtool";

struct HttpResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::string body;
};

// Reads one response (Content-Length framed; no body after HEAD) from `conn`; nullopt on
// timeout or a broken one.
std::optional<HttpResponse> read_response(RawConn& conn, bool head = false, Millis timeout = 5s) {
  const auto complete = [head](std::string_view buf) {
    const size_t end = buf.find("\r\n\r\n");
    if (end == std::string_view::npos) return false;
    const size_t cl = buf.substr(0, end).find("Content-Length: ");
    if (cl == std::string_view::npos || head) return true;
    const size_t length = std::stoul(std::string(buf.substr(cl + 16, end - cl - 16)));
    return buf.size() >= end + 4 + length;
  };
  if (!conn.read_until(complete, timeout)) return std::nullopt;
  const std::string_view buf = conn.pending();
  const size_t end = buf.find("\r\n\r\n");
  HttpResponse r;
  r.head = std::string(buf.substr(0, end));
  r.status = std::stoi(r.head.substr(9, 3));
  const size_t cl = r.head.find("Content-Length: ");
  const size_t length = cl == std::string::npos || head ? 0 : std::stoul(r.head.substr(cl + 16));
  r.body = std::string(buf.substr(end + 4, length));
  conn.consume(end + 4 + length);
  return r;
}

std::string request(std::string_view method, std::string_view path, bool close = false) {
  return std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: lockstep\r\n" +
         (close ? "Connection: close\r\n" : "") + "\r\n";
}

HttpResponse fetch(uint16_t port, std::string_view method = "GET",
                   std::string_view path = "/metrics") {
  RawConn conn(port);
  REQUIRE(conn.send(request(method, path, true)));
  auto r = read_response(conn, method == "HEAD");
  REQUIRE(r.has_value());
  return *r;
}

std::string scrape(uint16_t port) {
  HttpResponse r = fetch(port);
  REQUIRE(r.status == 200);
  return r.body;
}

// The value of the sample `series` ("name" or "name{labels}"), or nullopt when absent.
std::optional<double> sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const size_t at = ("\n" + text).find(needle);
  if (at == std::string::npos) return std::nullopt;
  const size_t value = at + needle.size() - 1;
  return std::strtod(text.c_str() + value, nullptr);
}

double value_of(const std::string& text, const std::string& series) {
  INFO(series);
  const auto v = sample(text, series);
  REQUIRE(v.has_value());
  return *v;
}

struct MetricsCluster {
  uint16_t metrics_port = free_port();
  Cluster cluster;
  explicit MetricsCluster(std::string extra = {})
      : cluster([&] {
          ClusterOptions o;
          o.extra_yaml = "metrics:\n  listen: 127.0.0.1:" + std::to_string(metrics_port) + "\n" +
                         "timeouts:\n  connect_ms: 300\n  backend_retry_max_ms: 500\n" + extra;
          return o;
        }()) {}
};

std::string backend_labels(Cluster& cluster, size_t i) {
  const std::string addr = cluster.backend(i).address();
  return "{backend=\"" + addr + "\",address=\"" + addr + "\"}";
}

}  // namespace

TEST_CASE("metrics: GET /metrics answers Prometheus text; other paths 404, methods 405",
          "[integration][metrics]") {
  MetricsCluster m;
  HttpResponse ok = fetch(m.metrics_port);
  CHECK(ok.status == 200);
  CHECK_THAT(ok.head, Catch::Contains("Content-Type: text/plain; version=0.0.4"));
  CHECK_THAT(ok.body, Catch::Contains("# TYPE lockstep_uptime_seconds gauge\n"));
  CHECK_THAT(ok.body, Catch::Contains("lockstep_build_info{version=\""));

  CHECK(fetch(m.metrics_port, "GET", "/").status == 404);
  CHECK(fetch(m.metrics_port, "GET", "/metricsx").status == 404);
  HttpResponse post = fetch(m.metrics_port, "POST", "/metrics");
  CHECK(post.status == 405);
  CHECK_THAT(post.head, Catch::Contains("Allow: GET, HEAD"));
  CHECK(fetch(m.metrics_port, "GET", "/metrics?x=1").status == 200);
  HttpResponse head = fetch(m.metrics_port, "HEAD", "/metrics");
  CHECK(head.status == 200);
  CHECK(head.body.empty());

  SECTION("keep-alive: several requests, pipelined, on one connection") {
    RawConn conn(m.metrics_port);
    REQUIRE(conn.send(request("GET", "/metrics") + request("GET", "/nope")));
    auto first = read_response(conn);
    auto second = read_response(conn);
    REQUIRE(first.has_value());
    REQUIRE(second.has_value());
    CHECK(first->status == 200);
    CHECK_THAT(first->head, Catch::Contains("Connection: keep-alive"));
    CHECK(second->status == 404);
    REQUIRE(conn.send(request("GET", "/metrics", true)));
    auto last = read_response(conn);
    REQUIRE(last.has_value());
    CHECK(last->status == 200);
    CHECK_THAT(last->head, Catch::Contains("Connection: close"));
    CHECK(conn.closed_by_peer(5s));
  }
  SECTION("garbage is a 400 and the connection closes") {
    RawConn conn(m.metrics_port);
    REQUIRE(conn.send("NOT HTTP AT ALL\r\n\r\n"));
    auto r = read_response(conn);
    REQUIRE(r.has_value());
    CHECK(r->status == 400);
    CHECK(conn.closed_by_peer(5s));
  }
  // Redis clients are still served as before.
  Client c = m.cluster.client();
  CHECK(c("PING") == Reply::status("PONG"));
}

TEST_CASE("metrics: figures move with the traffic", "[integration][metrics]") {
  MetricsCluster m;
  Client c = m.cluster.client();
  const std::string before = scrape(m.metrics_port);
  const double gets = sample(before, "lockstep_commands_total{command=\"get\"}").value_or(0);
  const double wrongtype = sample(before, "lockstep_errors_total{kind=\"WRONGTYPE\"}").value_or(0);

  REQUIRE(c("SET", "m:str", "v").is_ok());
  for (int i = 0; i < 5; ++i) CHECK(c("GET", "m:str") == Reply::string("v"));
  CHECK(c("LPUSH", "m:str", "x").error_starts_with("WRONGTYPE"));
  CHECK(c("GET").is_error());  // arity: rejected before it ran
  const Reply lock = c("LOCK.ACQUIRE", "m:lock", "5000");
  REQUIRE(lock.is_array());

  const std::string after = scrape(m.metrics_port);
  CHECK(value_of(after, "lockstep_commands_total{command=\"get\"}") == gets + 5);
  CHECK(value_of(after, "lockstep_command_duration_seconds_count{command=\"get\"}") == gets + 5);
  CHECK(value_of(after, "lockstep_command_duration_seconds_bucket{command=\"get\",le=\"+Inf\"}") ==
        gets + 5);
  CHECK(value_of(after, "lockstep_errors_total{kind=\"WRONGTYPE\"}") == wrongtype + 1);
  CHECK(value_of(after, "lockstep_command_failures_total{command=\"lpush\"}") == 1);
  CHECK(value_of(after, "lockstep_command_rejections_total{command=\"get\"}") == 1);
  CHECK(value_of(after, "lockstep_errors_total{kind=\"ERR\"}") >= 1);
  CHECK(value_of(after, "lockstep_connected_clients") >= 1);
  CHECK(value_of(after, "lockstep_client_connections_total") >= 1);
  CHECK(value_of(after, "lockstep_lock_acquisitions_total") == 1);
  for (size_t i = 0; i < m.cluster.size(); ++i) {
    CHECK(value_of(after, "lockstep_backend_up" + backend_labels(m.cluster, i)) == 1);
    CHECK(value_of(after, "lockstep_backend_requests_total" + backend_labels(m.cluster, i)) > 0);
  }

  // INFO reports the same figures.
  const Reply info = c("INFO", "errorstats", "locks", "lockstep");
  REQUIRE(info.is_string());
  CHECK_THAT(info.str, Catch::Contains("errorstat_WRONGTYPE:count=1"));
  CHECK_THAT(info.str, Catch::Contains("lock_acquired:1"));
  CHECK_THAT(info.str, Catch::Contains(",inflight="));
}

TEST_CASE("metrics: transactions and the replicated configuration", "[integration][metrics]") {
  MetricsCluster m;
  Client c = m.cluster.client();
  const std::string a = m.cluster.key_on(0, "mt"), b = m.cluster.key_on(1, "mt");
  // One transaction on one backend, one over two, and one whose WATCH fails.
  REQUIRE(c("MULTI").is_ok());
  c("SET", "{t}1", "x");
  REQUIRE(c("EXEC").is_array());
  REQUIRE(c("MULTI").is_ok());
  c("SET", a, "x");
  c("SET", b, "y");
  REQUIRE(c("EXEC").is_array());
  REQUIRE(c("WATCH", a).is_ok());
  REQUIRE(m.cluster.client()("SET", a, "changed").is_ok());
  REQUIRE(c("MULTI").is_ok());
  c("SET", a, "z");
  CHECK(c("EXEC").is_nil());
  // A configuration change through the (single-replica) consensus log.
  // (-TRYAGAIN until the single replica has seeded its state from the YAML.)
  REQUIRE(wait_until(
      [&] { return c("LOCKSTEP", "CONFIG", "SET", "timeouts.request_ms", "4000").is_ok(); }, 10s,
      20ms));

  const std::string text = scrape(m.metrics_port);
  CHECK(value_of(text, "lockstep_transactions_total{span=\"single\"}") == 2);  // incl. the WATCH one
  CHECK(value_of(text, "lockstep_transactions_total{span=\"cross\"}") == 1);
  CHECK(value_of(text, "lockstep_transaction_outcomes_total{outcome=\"committed\"}") == 2);
  CHECK(value_of(text, "lockstep_transaction_outcomes_total{outcome=\"watch_failed\"}") == 1);
  CHECK(value_of(text, "lockstep_consensus_is_leader") == 1);
  CHECK(value_of(text, "lockstep_consensus_epoch") >= 1);
  CHECK(value_of(text, "lockstep_consensus_commit_duration_seconds_count") >= 1);
  const Reply info = c("INFO", "transactions", "cluster");
  REQUIRE(info.is_string());
  CHECK_THAT(info.str, Catch::Contains("txn_committed:2"));
  CHECK_THAT(info.str, Catch::Contains("cluster_role:leader"));
}

TEST_CASE("metrics: a killed backend shows down, and its failures count",
          "[integration][metrics]") {
  MetricsCluster m;
  Client c = m.cluster.client();
  const std::string labels = backend_labels(m.cluster, 1);
  REQUIRE(value_of(scrape(m.metrics_port), "lockstep_backend_up" + labels) == 1);

  m.cluster.backend(1).kill9();
  std::string text;
  const bool down = wait_until(
      [&] {
        text = scrape(m.metrics_port);
        return sample(text, "lockstep_backend_up" + labels) == 0.0;
      },
      10s, 50ms);
  INFO(text);
  CHECK(down);
  CHECK(value_of(text, "lockstep_backend_failures_total" + labels) >= 1);
  CHECK(value_of(text, "lockstep_backend_up" + backend_labels(m.cluster, 0)) == 1);
  CHECK(c("GET", m.cluster.key_on(1, "m")).error_starts_with("ERR backend"));
  const bool counted = wait_until(
      [&] {
        text = scrape(m.metrics_port);
        return sample(text, "lockstep_errors_total{kind=\"ERR\"}").value_or(0) >= 1 &&
               sample(text, "lockstep_backend_reconnects_total" + labels).value_or(0) >= 1;
      },
      10s, 50ms);
  CHECK(counted);
}

TEST_CASE("metrics: promtool check metrics accepts the output", "[integration][metrics]") {
  if (::access(kPromtool, X_OK) != 0) {
    WARN(
        "promtool is not installed (Debian package prometheus): skipping `promtool check "
        "metrics`");
    return;
  }
  MetricsCluster m;
  Client c = m.cluster.client();
  REQUIRE(c("SET", "p:k", "v").is_ok());
  CHECK(c("HGET", "p:k", "f").error_starts_with("WRONGTYPE"));
  CHECK(c("CLIENT", "LIST").is_string());
  REQUIRE(c("LOCK.ACQUIRE", "p:lock", "5000").is_array());
  const std::string text = scrape(m.metrics_port);
  const ProcessResult r = run_process({kPromtool, "check", "metrics"}, text);
  INFO("promtool said:\n" << r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(r.out.empty());
  CHECK(r.err.empty());
}

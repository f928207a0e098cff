// A client that pipelines requests without reading the replies must not make Lockstep buffer
// without bound (limits.client_max_queued_bytes / client_max_inflight), nor slow down others.
#include <sys/socket.h>

#include <algorithm>
#include <thread>

#include <catch2/catch.hpp>

#include "support/harness.h"

using namespace lockstep::test;

TEST_CASE("a client that does not read its replies does not grow RSS without bound",
          "[integration][backpressure]") {
  ClusterOptions options;
  options.extra_yaml = "limits:\n  client_max_queued_bytes: 1048576\n";
  Cluster cluster(options);
  const size_t kValueBytes = 8 * 1024;
  const size_t kRequests = 20000;  // 160 MiB of replies if it all were buffered
  const long kBoundKb = 64 * 1024;
  const std::string big_key = "bp:big";
  const std::string value(kValueBytes, 'b');
  Client c = cluster.client();
  REQUIRE(c("SET", big_key, value).is_ok());
  // Small keys on every backend, including the big key's, for the "others" client.
  std::vector<std::string> small;
  for (size_t b = 0; b < 3; ++b) {
    small.push_back(cluster.key_on(b, "bp:small"));
    REQUIRE(c("SET", small.back(), "s").is_ok());
  }
  // Warm up allocators and buffers so the baseline is fair.
  {
    std::string warm;
    for (int i = 0; i < 500; ++i) warm += encode_command({"GET", big_key});
    REQUIRE(pipeline_raw(cluster.port(), warm, 500).size() == 500);
  }
  const long baseline = cluster.proxy().rss_kb();
  REQUIRE(baseline > 0);

  std::string payload;
  for (size_t i = 0; i < kRequests; ++i) payload += encode_command({"GET", big_key});
  RawConn flood(cluster.port());
  size_t sent = 0;
  // Push requests until the socket stops taking them (or all are sent).
  auto last_progress = Clock::now();
  while (sent < payload.size() && Clock::now() - last_progress < 300ms) {
    size_t n = flood.send_some(std::string_view(payload).substr(sent));
    if (n > 0) {
      sent += n;
      last_progress = Clock::now();
    } else {
      std::this_thread::sleep_for(5ms);
    }
  }
  INFO("request bytes accepted by the socket: " << sent << " of " << payload.size());

  // Watch RSS for a while; meanwhile other clients must get quick answers on every backend.
  Client other = cluster.client(3s);
  long peak = baseline;
  long long worst_ms = 0;
  const auto watch_until = Clock::now() + 1500ms;
  while (Clock::now() < watch_until) {
    peak = std::max(peak, cluster.proxy().rss_kb());
    for (const auto& k : small) {
      const auto t0 = Clock::now();
      Reply r = other("GET", k);
      worst_ms = std::max(worst_ms, elapsed_ms(t0));
      REQUIRE(r == Reply::string("s"));
    }
    const auto t0 = Clock::now();
    REQUIRE(other("PING") == Reply::status("PONG"));
    worst_ms = std::max(worst_ms, elapsed_ms(t0));
    std::this_thread::sleep_for(20ms);
  }
  INFO("RSS baseline " << baseline << " kB, peak " << peak << " kB; worst latency of others "
                       << worst_ms << " ms");
  CHECK(peak - baseline < kBoundKb);
  CHECK(worst_ms < 1000);
  CHECK(cluster.proxy().running());

  // Now read everything: every reply arrives, in full, once the client reads again.
  const size_t reply_bytes = std::string("$8192\r\n").size() + kValueBytes + 2;
  const size_t expected = kRequests * reply_bytes;
  size_t received = 0;
  {
    std::jthread writer([&] { flood.send(std::string_view(payload).substr(sent), 60s); });
    const auto deadline = Clock::now() + 60s;
    while (received < expected && Clock::now() < deadline) {
      if (!flood.read_more(5s)) break;
      received += flood.buffer().size();
      flood.buffer().clear();
    }
    if (received < expected) ::shutdown(flood.fd(), SHUT_RDWR);
  }
  CHECK(received == expected);
  CHECK(other("PING") == Reply::status("PONG"));
}

TEST_CASE("client_max_inflight bounds a pipeline but it still completes",
          "[integration][backpressure]") {
  ClusterOptions options;
  options.extra_yaml = "limits:\n  client_max_inflight: 16\n";
  Cluster cluster(options);
  std::string payload;
  const int n = 5000;
  for (int i = 0; i < n; ++i)
    payload += encode_command({"INCR", "inflight:" + std::to_string(i % 7)});
  auto replies = pipeline_raw(cluster.port(), payload, n, 60s);
  REQUIRE(replies.size() == static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    INFO("reply " << i);
    REQUIRE(replies[i] == Reply::integer_(i / 7 + 1));
  }
}

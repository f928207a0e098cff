// The Prometheus text renderer (sans I/O): format rules, escaping, histogram buckets, and
// Lockstep's families rendered from a snapshot.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "lockstep/admin/logging.h"
#include "lockstep/admin/prometheus.h"
#include "lockstep/config/config.h"

using namespace lockstep::admin;

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

// The `le` bounds and cumulative counts of one histogram series, in output order.
std::vector<std::pair<std::string, uint64_t>> buckets_of(const std::string& text,
                                                         const std::string& prefix) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const std::string& line : lines_of(text)) {
    if (!line.starts_with(prefix)) continue;
    const size_t le = line.find("le=\"");
    const size_t end = line.find('"', le + 4);
    out.emplace_back(line.substr(le + 4, end - le - 4), std::stoull(line.substr(line.rfind(' '))));
  }
  return out;
}

MetricsSnapshot sample_snapshot() {
  MetricsSnapshot s;
  s.version = "1.2.3";
  s.uptime_seconds = 12.5;
  s.workers = 2;
  s.clients.connected = 3;
  s.clients.received = 10;
  CommandFigures get;
  get.name = "get";
  get.calls = 6;
  get.failed = 1;
  get.usec = 6000;
  get.latency[7] = 2;   // [128, 256) µs
  get.latency[9] = 3;   // [512, 1024) µs
  get.latency[30] = 1;  // ~18 minutes: above every bound
  s.commands.push_back(get);
  CommandFigures rejected;
  rejected.name = "client|list";
  rejected.rejected = 2;
  s.commands.push_back(rejected);
  s.errors = {{"ERR", 4}, {"WRONGTYPE", 1}};
  BackendFigures b;
  b.name = "b\"1";
  b.address = "127.0.0.1:7001";
  b.up = true;
  b.requests = 9;
  b.replies = 1;
  b.latency_usec = 300;
  b.latency[8] = 1;
  s.backends.push_back(b);
  return s;
}

}  // namespace

TEST_CASE("prometheus: label values escape backslash, quote and newline", "[admin]") {
  CHECK(Exposition::escape_label_value("plain") == "plain");
  CHECK(Exposition::escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(Exposition::escape_label_value("tab\tstays") == "tab\tstays");
  Exposition out;
  out.family("x_total", MetricType::kCounter, "X").add({{"name", "say \"hi\"\n"}}, uint64_t{1});
  CHECK_THAT(out.text(), Catch::Contains("x_total{name=\"say \\\"hi\\\"\\n\"} 1\n"));
}

TEST_CASE("prometheus: HELP and TYPE lines come first, once per family", "[admin]") {
  Exposition out;
  out.family("reqs_total", MetricType::kCounter, "Requests \\ with a\nnewline")
      .add({{"cmd", "get"}}, uint64_t{2})
      .add({{"cmd", "set"}}, uint64_t{3});
  out.gauge("temp", "Temperature", 1.5);
  CHECK(out.text() ==
        "# HELP reqs_total Requests \\\\ with a\\nnewline\n"
        "# TYPE reqs_total counter\n"
        "reqs_total{cmd=\"get\"} 2\n"
        "reqs_total{cmd=\"set\"} 3\n"
        "# HELP temp Temperature\n"
        "# TYPE temp gauge\n"
        "temp 1.5\n");
}

TEST_CASE("prometheus: a family without samples leaves no trace", "[admin]") {
  Exposition out;
  out.family("nothing_total", MetricType::kCounter, "Never sampled");
  CHECK(out.text().empty());
}

TEST_CASE("prometheus: names are checked and families are written once", "[admin]") {
  Exposition out;
  CHECK_THROWS_AS(out.family("1bad", MetricType::kGauge, "x"), std::invalid_argument);
  CHECK_THROWS_AS(out.family("has-dash", MetricType::kGauge, "x"), std::invalid_argument);
  CHECK_THROWS_AS(out.family("", MetricType::kGauge, "x"), std::invalid_argument);
  out.gauge("ok:name_1", "fine", 1);
  CHECK_THROWS_AS(out.gauge("ok:name_1", "again", 2), std::logic_error);
  auto f = out.family("labels", MetricType::kGauge, "x");
  CHECK_THROWS_AS(f.add({{"bad-label", "v"}}, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(f.add({{"__reserved", "v"}}, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(f.add({}, Histogram{}), std::logic_error);
}

TEST_CASE("prometheus: values use the format's spellings", "[admin]") {
  CHECK(Exposition::format_value(0) == "0");
  CHECK(Exposition::format_value(42) == "42");
  CHECK(Exposition::format_value(0.25) == "0.25");
  CHECK(Exposition::format_value(6.4e-05) == "6.4e-05");
  CHECK(Exposition::format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(Exposition::format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(Exposition::format_value(std::nan("")) == "NaN");
}

TEST_CASE("prometheus: histograms are cumulative, end in +Inf and agree with _count", "[admin]") {
  Exposition out;
  Histogram h{{0.1, 0.5, 1}, {3, 0, 2, 5}, 9.5};
  out.family("lat_seconds", MetricType::kHistogram, "Latency").add({{"op", "read"}}, h);
  CHECK(out.text() ==
        "# HELP lat_seconds Latency\n"
        "# TYPE lat_seconds histogram\n"
        "lat_seconds_bucket{op=\"read\",le=\"0.1\"} 3\n"
        "lat_seconds_bucket{op=\"read\",le=\"0.5\"} 3\n"
        "lat_seconds_bucket{op=\"read\",le=\"1\"} 5\n"
        "lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 10\n"
        "lat_seconds_sum{op=\"read\"} 9.5\n"
        "lat_seconds_count{op=\"read\"} 10\n");

  Exposition bad;
  auto f = bad.family("bad_seconds", MetricType::kHistogram, "x");
  CHECK_THROWS_AS(f.add({}, Histogram{{1, 1}, {0, 0, 0}, 0}),
                  std::invalid_argument);  // not increasing
  CHECK_THROWS_AS(f.add({}, Histogram{{1, 2}, {0, 0}, 0}), std::invalid_argument);  // counts size
}

TEST_CASE("prometheus: log2 microsecond buckets become second bounds", "[admin]") {
  Log2Histogram log2{};
  log2[0] = 1;   // < 2 µs
  log2[6] = 2;   // [64, 128) µs
  log2[12] = 4;  // [4096, 8192) µs
  log2[31] = 8;  // beyond every bound
  const Histogram h = seconds_from_log2_us(log2, 123456);
  REQUIRE(h.counts.size() == h.bounds.size() + 1);
  CHECK(h.bounds.front() == Approx(64e-6));
  CHECK(h.bounds.back() == Approx(16.777216));
  for (size_t i = 1; i < h.bounds.size(); ++i) CHECK(h.bounds[i] == Approx(h.bounds[i - 1] * 4));
  uint64_t total = 0;
  for (uint64_t c : h.counts) total += c;
  CHECK(total == 15);
  CHECK(h.counts[0] == 1);      // <= 64 µs
  CHECK(h.counts[1] == 2);      // <= 256 µs
  CHECK(h.counts.back() == 8);  // > 16.8 s
  CHECK(h.sum == Approx(0.123456));
}

TEST_CASE("prometheus: Lockstep's families from a snapshot", "[admin]") {
  const std::string text = render_metrics(sample_snapshot());
  CHECK_THAT(text, Catch::Contains("lockstep_build_info{version=\"1.2.3\"} 1\n"));
  CHECK_THAT(text, Catch::Contains("lockstep_uptime_seconds 12.5\n"));
  CHECK_THAT(text, Catch::Contains("lockstep_commands_total{command=\"get\"} 6\n"));
  CHECK_THAT(text,
             Catch::Contains("lockstep_command_rejections_total{command=\"client|list\"} 2\n"));
  CHECK_THAT(text, Catch::Contains("lockstep_errors_total{kind=\"WRONGTYPE\"} 1\n"));
  CHECK_THAT(text, Catch::Contains(
                       "lockstep_backend_up{backend=\"b\\\"1\",address=\"127.0.0.1:7001\"} 1\n"));
  // A command never called has no latency series (its histogram would be all zeros).
  CHECK_THAT(text,
             !Catch::Contains("lockstep_command_duration_seconds_count{command=\"client|list\"}"));
  // Features that are absent from the snapshot are absent from the output.
  CHECK_THAT(text, !Catch::Contains("lockstep_lock_"));
  MetricsSnapshot with_locks = sample_snapshot();
  with_locks.locks = LockFigures{};
  with_locks.locks->acquired = 7;
  CHECK_THAT(render_metrics(with_locks), Catch::Contains("lockstep_lock_acquisitions_total 7\n"));

  // Every sample's family was introduced by HELP then TYPE; counters end in _total.
  std::map<std::string, std::string> types;
  std::string last_help;
  for (const std::string& line : lines_of(text)) {
    if (line.starts_with("# HELP ")) {
      last_help = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      const std::string name = line.substr(7, line.find(' ', 7) - 7);
      CHECK(name == last_help);
      CHECK(types.emplace(name, line.substr(line.rfind(' ') + 1)).second);
      continue;
    }
    std::string name = line.substr(0, line.find_first_of("{ "));
    INFO(line);
    if (!types.count(name)) {
      for (const char* suffix : {"_bucket", "_sum", "_count"})
        if (name.ends_with(suffix)) name.resize(name.size() - std::string(suffix).size());
      REQUIRE(types.count(name));
      CHECK(types[name] == "histogram");
    } else if (types[name] == "counter") {
      CHECK(name.ends_with("_total"));
    }
  }

  // Bucket counts never decrease, and +Inf equals _count.
  const auto buckets = buckets_of(text, "lockstep_command_duration_seconds_bucket{command=\"get\"");
  REQUIRE(buckets.size() >= 2);
  for (size_t i = 1; i < buckets.size(); ++i) CHECK(buckets[i].second >= buckets[i - 1].second);
  CHECK(buckets.back().first == "+Inf");
  CHECK(buckets.back().second == 6);
  CHECK(buckets[0].second == 0);  // nothing at or under 64 µs
  CHECK(buckets[1].second == 2);  // the two at [128, 256) µs
  CHECK_THAT(text, Catch::Contains("lockstep_command_duration_seconds_count{command=\"get\"} 6\n"));
  CHECK_THAT(text,
             Catch::Contains("lockstep_command_duration_seconds_sum{command=\"get\"} 0.006\n"));
}

TEST_CASE("logging: JSON escaping keeps every line one valid JSON string", "[admin]") {
  CHECK(json_escape("plain text") == "plain text");
  CHECK(json_escape("q\"b\\n\nr\rt\t") == "q\\\"b\\\\n\\nr\\rt\\t");
  CHECK(json_escape(std::string_view("\x01\x1f\x7f", 3)) == "\\u0001\\u001f\\u007f");
  CHECK(json_escape("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 passes through
}

TEST_CASE("logging: request ids are unique and increasing", "[admin]") {
  const uint64_t a = next_request_id();
  const uint64_t b = next_request_id();
  CHECK(b > a);
}

TEST_CASE("config: metrics.listen is off by default, an address when set", "[admin]") {
  using lockstep::config::ConfigError;
  using lockstep::config::parse_string;
  const std::string base = "backends: [127.0.0.1:7001]\n";
  ConfigError error;
  auto off = parse_string(base, error);
  REQUIRE(off.has_value());
  CHECK_FALSE(off->metrics.enabled());
  auto empty = parse_string(base + "metrics:\n  listen: \"\"\n", error);
  REQUIRE(empty.has_value());
  CHECK_FALSE(empty->metrics.enabled());
  auto on = parse_string(base + "metrics:\n  listen: 127.0.0.1:9380\n", error);
  REQUIRE(on.has_value());
  CHECK(on->metrics.enabled());
  CHECK(on->metrics.listen.str() == "127.0.0.1:9380");
  // dump() writes it so that it reads back the same.
  CHECK_THAT(lockstep::config::dump(*off), Catch::Contains("metrics:\n  listen: \"\"\n"));
  auto again = parse_string(lockstep::config::dump(*on), error);
  REQUIRE(again.has_value());
  CHECK(again->metrics.listen.str() == "127.0.0.1:9380");
  CHECK_FALSE(parse_string(base + "metrics:\n  listen: 9380\n", error).has_value());
  CHECK_THAT(error.message, Catch::Contains("metrics.listen"));
  // The main listen address may not be empty.
  CHECK_FALSE(parse_string(base + "listen: \"\"\n", error).has_value());
}

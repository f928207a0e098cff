// Logging: log.file is reopened on SIGHUP (log rotation), JSON lines stay valid JSON, and a
// failed request's error line carries a request id.
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

ClusterOptions logging_to(const std::string& path, const std::string& format) {
  ClusterOptions o;
  o.extra_yaml = "log:\n  file: " + path + "\n  format: " + format +
                 "\ntimeouts:\n  connect_ms: 300\n  backend_retry_max_ms: 500\n";
  return o;
}

}  // namespace

TEST_CASE("logging: SIGHUP reopens log.file, so a rotated log continues in a new file",
          "[integration][logging]") {
  TempDir dir;
  const std::string log = dir.file("lockstep.log");
  const std::string rotated = dir.file("lockstep.log.1");
  Cluster cluster(logging_to(log, "text"));
  REQUIRE(
      wait_until([&] { return read_file(log).find("listening on") != std::string::npos; }, 10s));

  REQUIRE(std::rename(log.c_str(), rotated.c_str()) == 0);
  REQUIRE_FALSE(exists(log));
  cluster.proxy().signal(SIGHUP);
  // The reopen itself is logged, to the new file.
  CHECK(wait_until(
      [&] { return read_file(log).find("SIGHUP: log file reopened") != std::string::npos; }, 10s));

  // A line caused afterwards (a failed request: its backend is gone) lands in the new file only.
  cluster.backend(2).kill9();
  Client c = cluster.client();
  const std::string key = cluster.key_on(2, "log");
  std::string text;
  const bool logged = wait_until(
      [&] {
        const Reply r = c("GET", key);
        text = read_file(log);
        return r.error_starts_with("ERR backend") &&
               text.find("request failed") != std::string::npos;
      },
      10s, 20ms);
  INFO(text);
  CHECK(logged);
  CHECK_THAT(text, Catch::Contains("request_id="));
  CHECK_THAT(text, Catch::Contains("command=get"));
  const std::string old = read_file(rotated);
  CHECK_THAT(old, !Catch::Contains("request failed"));
  CHECK_THAT(old, !Catch::Contains("SIGHUP"));
  CHECK(cluster.proxy().running());
}

TEST_CASE("logging: json lines are one object each, errors with a request id",
          "[integration][logging]") {
  TempDir dir;
  const std::string log = dir.file("lockstep.json");
  Cluster cluster(logging_to(log, "json"));
  cluster.backend(0).kill9();
  Client c = cluster.client();
  const std::string key = cluster.key_on(0, "json");
  std::string text;
  const bool logged = wait_until(
      [&] {
        c("GET", key);
        text = read_file(log);
        return text.find("\"request_id\":") != std::string::npos;
      },
      10s, 20ms);
  INFO(text);
  REQUIRE(logged);
  for (const std::string& line : lines_of(text)) {
    INFO(line);
    CHECK(line.starts_with("{\"time\":\""));
    CHECK(line.ends_with("\"}"));
    CHECK_THAT(line, Catch::Contains("\"msg\":\""));
    // Quotes inside the message are escaped: the only unescaped quotes delimit keys/values,
    // so their count is even.
    size_t quotes = 0;
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '"' && (i == 0 || line[i - 1] != '\\')) ++quotes;
    CHECK(quotes % 2 == 0);
    if (line.find("\"request_id\":") != std::string::npos) {
      CHECK_THAT(line, Catch::Contains("\"level\":\"error\""));
      CHECK_THAT(line, Catch::Contains("\"command\":\"get\""));
      CHECK_THAT(line, Catch::Contains("\"client\":"));
    }
  }
}

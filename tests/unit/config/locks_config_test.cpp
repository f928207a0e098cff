// The `locks:` section (distributed locks): defaults, bounds, the real-number and list-of-names
// schema kinds it introduced, checks against `backends`, dump() and the shipped examples.
#include <lockstep/config/config.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "config/schema.h"

namespace {

using namespace lockstep::config;

const std::string kBackends = "backends: [127.0.0.1:7001, 127.0.0.1:7002]\n";
// Five named backends on lines 2-6, so `locks:` starts at line 7.
const std::string kNamed =
    "backends:\n"
    "  - {address: 127.0.0.1:7001, name: b1}\n"
    "  - {address: 127.0.0.1:7002, name: b2}\n"
    "  - {address: 127.0.0.1:7003, name: b3}\n"
    "  - {address: 127.0.0.1:7004, name: b4}\n"
    "  - {address: 127.0.0.1:7005, name: b5}\n";

Config accept(const std::string& yaml) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  INFO(error.format());
  REQUIRE(config.has_value());
  return *config;
}

// Asserts a rejection at `line` (and some column) whose message contains every one of `parts`.
void reject_at(const std::string& yaml, int line, std::initializer_list<std::string> parts) {
  ConfigError error;
  std::optional<Config> config = parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  REQUIRE_FALSE(config.has_value());
  INFO(error.format());
  CHECK(error.file == "test.yaml");
  CHECK(error.line == line);
  if (line > 0) CHECK(error.column > 0);
  for (const std::string& part : parts) CHECK_THAT(error.message, Catch::Contains(part));
}

std::string locks(const std::string& body) {
  return kBackends + "locks:\n" + body;
}

std::filesystem::path repo_root() {
  std::filesystem::path here = __FILE__;
  if (here.is_relative()) here = std::filesystem::current_path() / here;
  return here.parent_path().parent_path().parent_path().parent_path();
}

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

TEST_CASE("locks: defaults", "[config][locks]") {
  for (const std::string& yaml :
       {kBackends, kBackends + "locks:\n", kBackends + "locks: {}\n", locks("  backends:\n"),
        locks("  backends: ~\n"), locks("  backends: null\n")}) {
    INFO(yaml);
    const LocksConfig l = accept(yaml).locks;
    CHECK(l.backends.empty());
    CHECK(l.drift_factor == 0.01);
    CHECK(l.retry_count == 3);
    CHECK(l.retry_delay_ms == 200);
    CHECK(l.backend_timeout_ms == 50);
    CHECK(l.max_ttl_ms == 60000);
    CHECK(l.lock_delay_ms == 0);
    CHECK(l.quarantine_ms == 0);
    CHECK(l.effective_quarantine_ms() == 60000);
  }
}

TEST_CASE("locks: every key set", "[config][locks]") {
  const LocksConfig l = accept(kNamed +
                               "locks:\n"
                               "  backends: [b1, b3, b5]\n"
                               "  drift_factor: 0.05\n"
                               "  retry_count: 7\n"
                               "  retry_delay_ms: 0\n"
                               "  backend_timeout_ms: 20\n"
                               "  max_ttl_ms: 86400000\n"
                               "  lock_delay_ms: 1500\n"
                               "  quarantine_ms: 90000\n")
                            .locks;
  CHECK(l.backends == std::vector<std::string>{"b1", "b3", "b5"});
  CHECK(l.drift_factor == 0.05);
  CHECK(l.retry_count == 7);
  CHECK(l.retry_delay_ms == 0);
  CHECK(l.backend_timeout_ms == 20);
  CHECK(l.max_ttl_ms == 86400000);
  CHECK(l.lock_delay_ms == 1500);
  CHECK(l.quarantine_ms == 90000);
  CHECK(l.effective_quarantine_ms() == 90000);

  // quarantine_ms 0 follows max_ttl_ms, whatever that is.
  CHECK(accept(locks("  max_ttl_ms: 1234\n")).locks.effective_quarantine_ms() == 1234);
  LocksConfig direct;
  direct.max_ttl_ms = 10;
  CHECK(direct.effective_quarantine_ms() == 10);
  direct.quarantine_ms = 3;
  CHECK(direct.effective_quarantine_ms() == 3);
}

TEST_CASE("locks: integer bounds, both ends", "[config][locks]") {
  struct Bound {
    const char* key;
    int64_t min;
    int64_t max;
  };
  for (const Bound& b : {Bound{"retry_count", 1, 100}, Bound{"retry_delay_ms", 0, 60000},
                         Bound{"backend_timeout_ms", 1, 60000}, Bound{"max_ttl_ms", 1, 86400000},
                         Bound{"lock_delay_ms", 0, 3600000}, Bound{"quarantine_ms", 0, 86400000}}) {
    INFO(b.key);
    const std::string key = b.key;
    const std::string range = std::to_string(b.min) + ".." + std::to_string(b.max);
    accept(locks("  " + key + ": " + std::to_string(b.min) + "\n"));
    accept(locks("  " + key + ": " + std::to_string(b.max) + "\n"));
    reject_at(locks("  " + key + ": " + std::to_string(b.min - 1) + "\n"), 3,
              {"locks." + key + ": " + std::to_string(b.min - 1) + " is out of range",
               "integer " + range});
    reject_at(locks("  " + key + ": " + std::to_string(b.max + 1) + "\n"), 3,
              {"locks." + key, "out of range", range});
    reject_at(locks("  " + key + ": 1.5\n"), 3, {"locks." + key, "expected an integer"});
    reject_at(locks("  " + key + ": soon\n"), 3, {"expected an integer", "\"soon\""});
  }
}

TEST_CASE("locks: drift_factor bounds, 0 <= x < 0.5", "[config][locks]") {
  auto drift = [](const std::string& text) {
    return accept(locks("  drift_factor: " + text + "\n")).locks.drift_factor;
  };
  CHECK(drift("0") == 0.0);
  CHECK(drift("0.0") == 0.0);
  CHECK(drift("0.01") == 0.01);
  CHECK(drift("0.25") == 0.25);
  CHECK(drift("0.49999") == 0.49999);
  CHECK(drift("0.4999999999999999") < 0.5);
  // The upper bound is open: a drift allowance of half the TTL is refused, not clamped.
  reject_at(locks("  drift_factor: 0.5\n"), 3,
            {"locks.drift_factor: 0.5 is out of range", "real number 0 <= x < 0.5"});
  reject_at(locks("  drift_factor: 1\n"), 3, {"out of range"});
  reject_at(locks("  drift_factor: -0.01\n"), 3, {"-0.01 is out of range"});
  reject_at(locks("  drift_factor: 5e-1\n"), 3, {"out of range"});
  reject_at(locks("  drift_factor: .5\n"), 3, {"out of range"});
}

TEST_CASE("locks: real number syntax", "[config][locks]") {
  // Accepted: the YAML 1.2 core-schema float forms written in digits (and integers).
  struct Good {
    const char* text;
    double value;
  };
  for (const Good& g :
       {Good{"0", 0.0}, Good{"0.01", 0.01}, Good{".5", 0.5}, Good{"5.", 5.0}, Good{"00.1", 0.1},
        Good{"+0.25", 0.25}, Good{"-1.5", -1.5}, Good{"1e-2", 0.01}, Good{"1E-2", 0.01},
        Good{"2.5e+1", 25.0}, Good{"3e2", 300.0}, Good{".1e1", 1.0}, Good{"42", 42.0}}) {
    INFO(g.text);
    std::optional<double> parsed = schema::parse_real(g.text);
    REQUIRE(parsed.has_value());
    CHECK(*parsed == g.value);
  }
  // -0 is read as plain 0, so dump() never prints "-0".
  REQUIRE(schema::parse_real("-0.0").has_value());
  CHECK_FALSE(std::signbit(*schema::parse_real("-0.0")));

  // Refused: not finite, not decimal, incomplete, or padded.
  for (const char* bad :
       {"",      "+",     "-",        ".",      "e5",     ".e5",    "1e",   "1e+",
        "1e-",   "1.2.3", "nan",      "NaN",    ".nan",   "inf",    "-inf", ".inf",
        "-.inf", "+.Inf", "infinity", "0x1p-3", "0x10",   "1_000",  "1,5",  " 0.5",
        "0.5 ",  "0.5%",  "1/2",      "1e999",  "-1e999", "1e-999", "one"}) {
    INFO('"' << bad << '"');
    CHECK_FALSE(schema::parse_real(bad).has_value());
  }

  // Through the loader: the message says what was expected and what was found.
  reject_at(locks("  drift_factor: 1e\n"), 3,
            {"locks.drift_factor: expected a real number such as 0.01, got \"1e\""});
  reject_at(locks("  drift_factor: .nan\n"), 3, {"expected a real number"});
  reject_at(locks("  drift_factor: .inf\n"), 3, {"expected a real number"});
  reject_at(locks("  drift_factor: nan\n"), 3, {"expected a real number"});
  reject_at(locks("  drift_factor: inf\n"), 3, {"expected a real number"});
  reject_at(locks("  drift_factor: 1%\n"), 3, {"expected a real number", "\"1%\""});
  reject_at(locks("  drift_factor: [0.1]\n"), 3, {"locks.drift_factor", "got a list"});
  reject_at(locks("  drift_factor:\n"), 3, {"locks.drift_factor: missing value"});
  // A quoted number is still a number, as it is for the integer keys.
  CHECK(accept(locks("  drift_factor: \"0.02\"\n")).locks.drift_factor == 0.02);
}

TEST_CASE("locks: format_real round-trips through parse_real", "[config][locks]") {
  for (double value : {0.0, 0.01, 0.1, 0.3, 1.0 / 3, 0.49999999999999994, 1e-7, 1e-300, 5e-324, 1.5,
                       100000.0, 1e16, 1e300, std::numeric_limits<double>::max(), -2.5}) {
    INFO(value);
    std::string text = schema::format_real(value);
    INFO(text);
    std::optional<double> back = schema::parse_real(text);
    REQUIRE(back.has_value());
    CHECK(*back == value);
  }
  CHECK(schema::format_real(0.01) == "0.01");
  CHECK(schema::format_real(0.0) == "0");
}

TEST_CASE("locks: backends as flow and block lists", "[config][locks]") {
  CHECK(accept(kNamed + "locks:\n  backends: [b2, b4, b1]\n").locks.backends ==
        std::vector<std::string>{"b2", "b4", "b1"});
  CHECK(accept(kNamed + "locks:\n"
                        "  backends:\n"
                        "    - b5\n"
                        "    - \"b3\"\n"
                        "    - 'b1'\n")
            .locks.backends == std::vector<std::string>{"b5", "b3", "b1"});
  // A single backend is allowed: a lock service without fault tolerance, but a valid one.
  CHECK(accept(kNamed + "locks: {backends: [b4]}\n").locks.backends ==
        std::vector<std::string>{"b4"});
  // Unnamed backends are named by their address; quoting is optional.
  CHECK(accept(kBackends + "locks:\n  backends: [\"127.0.0.1:7002\", 127.0.0.1:7001]\n")
            .locks.backends == std::vector<std::string>{"127.0.0.1:7002", "127.0.0.1:7001"});
  // `locks:` may come before `backends:`; names are checked once the whole file is read.
  CHECK(accept("locks:\n  backends: [b2]\n" + kNamed).locks.backends ==
        std::vector<std::string>{"b2"});
}

TEST_CASE("locks: backends naming no configured backend", "[config][locks]") {
  reject_at(kNamed +
                "locks:\n"
                "  backends:\n"
                "    - b1\n"
                "    - b6\n",
            10, {"locks.backends[1]: unknown backend \"b6\"", "did you mean \"b1\""});
  reject_at(kNamed + "locks:\n  backends: [b1, b2, primary]\n", 8,
            {"locks.backends[2]: unknown backend \"primary\"", "backends are b1, b2, b3, b4, b5"});
  // The column points at the offending item, not at the list.
  {
    ConfigError error;
    REQUIRE_FALSE(parse_string(kNamed + "locks:\n  backends: [b1, b2, nope]\n", error));
    CHECK(error.line == 8);
    CHECK(error.column == 22);
  }
  // A named backend's address is not an alias for it.
  reject_at(kNamed + "locks:\n  backends: [b1, \"127.0.0.1:7002\"]\n", 8,
            {"locks.backends[1]: 127.0.0.1:7002 is the address of backend \"b2\"",
             "list backends by name"});
  reject_at(kBackends + "locks:\n  backends: [127.0.0.1:7003]\n", 3,
            {"unknown backend \"127.0.0.1:7003\"", "did you mean \"127.0.0.1:7001\""});
  // Forward reference to a backend that never comes.
  reject_at("locks:\n  backends: [b9]\n" + kNamed, 2, {"unknown backend \"b9\""});
}

TEST_CASE("locks: backends list shape problems", "[config][locks]") {
  reject_at(
      kNamed + "locks:\n  backends: []\n", 8,
      {"locks.backends: the list is empty", "leave the key out for the default (every backend)"});
  reject_at(kNamed + "locks:\n  backends: b1\n", 8,
            {"locks.backends: expected a list of names", "got \"b1\""});
  reject_at(kNamed + "locks:\n  backends: {b1: 1}\n", 8, {"expected a list", "got a map"});
  reject_at(kNamed + "locks:\n  backends: [b1, [b2]]\n", 8,
            {"locks.backends[1]: expected a name, got a list"});
  reject_at(kNamed + "locks:\n  backends:\n    - b1\n    - {name: b2}\n", 10,
            {"locks.backends[1]: expected a name, got a map"});
  reject_at(kNamed + "locks:\n  backends: [b1, \"\"]\n", 8,
            {"locks.backends[1]: must not be empty"});
  // yaml-cpp gives an empty item no position of its own; the list's is the nearest.
  reject_at(kNamed + "locks:\n  backends:\n    - b1\n    -\n", 9,
            {"locks.backends[1]: expected a name, got nothing"});
  reject_at(kNamed + "locks: [b1]\n", 7, {"locks: expected a map", "backends, drift_factor"});
  reject_at(kNamed + "locks: 5\n", 7, {"locks: expected a map"});
}

TEST_CASE("locks: duplicate backends", "[config][locks]") {
  reject_at(kNamed + "locks:\n  backends: [b1, b2, b1]\n", 8,
            {"locks.backends[2]: \"b1\" is listed twice (locks.backends[0], line 8)"});
  reject_at(kNamed +
                "locks:\n"
                "  backends:\n"
                "    - b3\n"
                "    - b2\n"
                "    - b4\n"
                "    - b2\n",
            12, {"locks.backends[3]: \"b2\" is listed twice (locks.backends[1], line 10)"});
  // Duplicates are found before names are checked: the first problem in the list is reported.
  reject_at(kNamed + "locks:\n  backends: [x, x]\n", 8, {"\"x\" is listed twice"});
}

TEST_CASE("locks: unknown keys get a suggestion", "[config][locks]") {
  reject_at(locks("  retry_cont: 3\n"), 3,
            {"unknown key \"locks.retry_cont\"", "did you mean \"locks.retry_count\""});
  reject_at(locks("  backend: [127.0.0.1:7001]\n"), 3, {"did you mean \"locks.backends\""});
  reject_at(locks("  drift: 0.1\n"), 3, {"did you mean \"locks.drift_factor\""});
  reject_at(locks("  quarantine: 0\n"), 3, {"did you mean \"locks.quarantine_ms\""});
  reject_at(locks("  max_ttl: 1000\n"), 3, {"did you mean \"locks.max_ttl_ms\""});
  reject_at(locks("  lock_delay_s: 1\n"), 3, {"did you mean \"locks.lock_delay_ms\""});
  // A lock key at the top level, or a typo of the section itself.
  reject_at(kBackends + "drift_factor: 0.1\n", 2, {"did you mean \"locks.drift_factor\""});
  reject_at(kBackends + "lock:\n  retry_count: 3\n", 2,
            {"unknown key \"lock\"", "did you mean \"locks\""});
  reject_at(kBackends + "locks.retry_count: 3\n", 2, {"nested maps"});
  // Nothing close: the section's keys are listed.
  reject_at(locks("  colour: blue\n"), 3,
            {"unknown key \"locks.colour\"",
             "known keys here: backends, drift_factor, retry_count, retry_delay_ms, "
             "backend_timeout_ms, max_ttl_ms, lock_delay_ms, quarantine_ms"});
  reject_at(locks("  retry_count: 2\n  retry_count: 3\n"), 4,
            {"locks.retry_count: duplicate key (first at line 3)"});
}

TEST_CASE("locks: dump round-trips", "[config][locks]") {
  Config config = accept(kNamed +
                         "locks:\n"
                         "  backends: [b5, b1, b3]\n"
                         "  drift_factor: 0.125\n"
                         "  retry_count: 9\n"
                         "  retry_delay_ms: 10\n"
                         "  backend_timeout_ms: 7\n"
                         "  max_ttl_ms: 5000000\n"
                         "  lock_delay_ms: 42\n"
                         "  quarantine_ms: 1\n");
  const std::string first = dump(config);
  CHECK_THAT(first, Catch::Contains("\nlocks:\n"
                                    "  backends: [\"b5\", \"b1\", \"b3\"]\n"
                                    "  drift_factor: 0.125\n"
                                    "  retry_count: 9\n"
                                    "  retry_delay_ms: 10\n"
                                    "  backend_timeout_ms: 7\n"
                                    "  max_ttl_ms: 5000000\n"
                                    "  lock_delay_ms: 42\n"
                                    "  quarantine_ms: 1\n"));
  const Config again = accept(first);
  CHECK(dump(again) == first);
  CHECK(again.locks.backends == config.locks.backends);
  CHECK(again.locks.drift_factor == 0.125);
  CHECK(again.locks.max_ttl_ms == 5000000);
  CHECK(again.locks.quarantine_ms == 1);

  // Defaults: the null list carries a note, and reads back as the default.
  const std::string defaults = dump(accept(kBackends));
  CHECK_THAT(defaults, Catch::Contains("\nlocks:\n"
                                       "  backends: ~  # every backend\n"
                                       "  drift_factor: 0.01\n"
                                       "  retry_count: 3\n"
                                       "  retry_delay_ms: 200\n"
                                       "  backend_timeout_ms: 50\n"
                                       "  max_ttl_ms: 60000\n"
                                       "  lock_delay_ms: 0\n"
                                       "  quarantine_ms: 0\n"));
  CHECK(accept(defaults).locks.backends.empty());
  CHECK(dump(accept(defaults)) == defaults);

  // Names needing quotes, and drift factors whose shortest form uses an exponent.
  Config odd = accept(
      "backends:\n"
      "  - {address: 127.0.0.1:7001, name: \"b, \\\"one\\\"\"}\n"
      "  - {address: 127.0.0.1:7002, name: \"[b2]\"}\n"
      "locks:\n"
      "  backends: [\"[b2]\", \"b, \\\"one\\\"\"]\n"
      "  drift_factor: 1e-7\n");
  const std::string odd_text = dump(odd);
  CHECK_THAT(odd_text, Catch::Contains("drift_factor: 1e-07\n"));
  const Config odd_again = accept(odd_text);
  CHECK(odd_again.locks.backends == std::vector<std::string>{"[b2]", "b, \"one\""});
  CHECK(odd_again.locks.drift_factor == 1e-7);
  CHECK(dump(odd_again) == odd_text);
}

TEST_CASE("locks: the reference documents every lock key", "[config][locks]") {
  const std::string reference = reference_markdown();
  CHECK_THAT(reference,
             Catch::Contains("| `locks.backends` | non-empty list of names | every backend | "));
  CHECK_THAT(reference,
             Catch::Contains("| `locks.drift_factor` | real number 0 <= x < 0.5 | `0.01` | "));
  CHECK_THAT(reference, Catch::Contains("| `locks.retry_count` | integer 1..100 | `3` | "));
  CHECK_THAT(reference, Catch::Contains("| `locks.retry_delay_ms` | integer 0..60000 | `200` | "));
  CHECK_THAT(reference,
             Catch::Contains("| `locks.backend_timeout_ms` | integer 1..60000 | `50` | "));
  CHECK_THAT(reference, Catch::Contains("| `locks.max_ttl_ms` | integer 1..86400000 | `60000` | "));
  CHECK_THAT(reference, Catch::Contains("| `locks.lock_delay_ms` | integer 0..3600000 | `0` | "));
  CHECK_THAT(reference, Catch::Contains("| `locks.quarantine_ms` | integer 0..86400000 | `0` | "));
}

TEST_CASE("locks: real-number defaults satisfy their own bounds", "[config][locks]") {
  Config config;
  int reals = 0;
  for (const schema::Key& key : schema::keys()) {
    if (key.kind != schema::Kind::kDouble) continue;
    INFO(key.path);
    ++reals;
    CHECK(key.real.min <= key.real.max);
    REQUIRE(std::holds_alternative<double& (*)(Config&)>(key.field));
    double value = std::get<double& (*)(Config&)>(key.field)(config);
    CHECK(key.real.min <= value);
    CHECK((key.real.max_open ? value < key.real.max : value <= key.real.max));
  }
  CHECK(reals >= 1);
}

TEST_CASE("locks: the shipped examples parse", "[config][locks]") {
  const std::filesystem::path root = repo_root();

  // config/lockstep.yaml documents the section commented out; uncommented, it is the default.
  // (config_test.cpp checks the whole file that way; this pins down that `locks:` is there.)
  std::istringstream lines(read_text(root / "config/lockstep.yaml"));
  std::string line;
  std::string uncommented;
  bool in_locks = false;
  while (std::getline(lines, line)) {
    if (line == "# locks:") in_locks = true;
    if (in_locks && line.starts_with("# ") &&
        (line == "# locks:" ||
         (line.starts_with("#   ") && std::islower(static_cast<unsigned char>(line[4]))))) {
      line = line.substr(2);
    }
    uncommented += line + "\n";
  }
  INFO(uncommented);
  REQUIRE(in_locks);
  for (const char* key :
       {"\nlocks:\n", "\n  backends:\n", "\n  drift_factor: 0.01\n", "\n  retry_count: 3\n",
        "\n  retry_delay_ms: 200\n", "\n  backend_timeout_ms: 50\n", "\n  max_ttl_ms: 60000\n",
        "\n  lock_delay_ms: 0\n", "\n  quarantine_ms: 0\n"}) {
    CHECK_THAT(uncommented, Catch::Contains(key));
  }
  const Config shipped = accept(uncommented);
  CHECK(dump(shipped) == dump(accept(read_text(root / "config/minimal.yaml"))));

  ConfigError error;
  std::optional<Config> only = load_file((root / "config/locks-only.yaml").string(), error);
  INFO(error.format());
  REQUIRE(only.has_value());
  REQUIRE(only->backends.size() == 5);
  CHECK(only->backends[4].name == "l5");
  CHECK(only->backends[4].address.str() == "127.0.0.1:7005");
  CHECK(only->locks.backends == std::vector<std::string>{"l1", "l2", "l3", "l4", "l5"});
  CHECK(only->locks.drift_factor == 0.01);
  CHECK(only->locks.max_ttl_ms == 30000);
  CHECK(only->locks.lock_delay_ms == 5000);
  CHECK(only->locks.effective_quarantine_ms() == 30000);
  // The example keeps the quorum-friendly odd count it recommends.
  CHECK(only->locks.backends.size() % 2 == 1);
  // It round-trips like any other configuration.
  CHECK(dump(accept(dump(*only))) == dump(*only));
}

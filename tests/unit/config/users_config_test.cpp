// The `users:` list: loading, validation with line numbers, dump(), and the rule checks the ACL
// module adds on top (Acl::from_config).
#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>

#include "lockstep/acl/acl.h"
#include "lockstep/config/config.h"

namespace {

using namespace lockstep;
using config::Config;
using config::ConfigError;

const std::string kBackends = "backends: [127.0.0.1:7001]\n";
// sha256("pw")
const std::string kPwHash = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";

Config accept(const std::string& yaml) {
  ConfigError error;
  std::optional<Config> config = config::parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  INFO(error.format());
  REQUIRE(config.has_value());
  return *config;
}

void reject_at(const std::string& yaml, int line, std::initializer_list<std::string> parts) {
  ConfigError error;
  std::optional<Config> config = config::parse_string(yaml, error, "test.yaml");
  INFO(yaml);
  REQUIRE_FALSE(config.has_value());
  INFO(error.format());
  CHECK(error.line == line);
  for (const std::string& part : parts) CHECK_THAT(error.message, Catch::Contains(part));
}

// Loads (must succeed) and builds the ACL (must fail) at `line` with every part.
void acl_rejects_at(const std::string& yaml, int line, std::initializer_list<std::string> parts) {
  Config config = accept(yaml);
  ConfigError error;
  std::optional<acl::Acl> acl = acl::Acl::from_config(config, error, "test.yaml");
  INFO(yaml);
  REQUIRE_FALSE(acl.has_value());
  INFO(error.format());
  CHECK(error.file == "test.yaml");
  CHECK(error.line == line);
  for (const std::string& part : parts) CHECK_THAT(error.message, Catch::Contains(part));
}

}  // namespace

TEST_CASE("users: loaded with every field", "[config][users]") {
  Config config = accept(kBackends +
                         "users:\n"
                         "  - name: app\n"
                         "    password: app-secret\n"
                         "    rules: \"on +@read ~app:*\"\n"
                         "  - {name: ops, password_sha256: " +
                         kPwHash + ", rules: on +@all ~* &*}\n");
  REQUIRE(config.users.size() == 2);
  CHECK(config.users[0].name == "app");
  CHECK(config.users[0].password == "app-secret");
  CHECK(config.users[0].password_sha256.empty());
  CHECK(config.users[0].rules == "on +@read ~app:*");
  CHECK(config.users[0].rules_line == 5);
  CHECK(config.users[0].rules_column == 12);
  CHECK(config.users[1].name == "ops");
  CHECK(config.users[1].password_sha256 == kPwHash);
  CHECK(config.users[1].rules == "on +@all ~* &*");
  CHECK(config.users[1].rules_line == 6);

  ConfigError error;
  std::optional<acl::Acl> acl = acl::Acl::from_config(config, error);
  INFO(error.format());
  REQUIRE(acl.has_value());
  CHECK(acl->authenticate("app", "app-secret") == acl->find("app"));
  CHECK(acl->authenticate("ops", "pw") == acl->find("ops"));
  CHECK(acl->authenticate("ops", kPwHash) == nullptr);  // the hash is not the password
  CHECK(acl->users().size() == 3);                      // + Redis' default user
}

TEST_CASE("users: empty or absent means only the default user", "[config][users]") {
  CHECK(accept(kBackends).users.empty());
  CHECK(accept(kBackends + "users:\n").users.empty());
  CHECK(accept(kBackends + "users: []\n").users.empty());
}

TEST_CASE("users: invalid entries are rejected with their line", "[config][users]") {
  reject_at(kBackends + "users: app\n", 2, {"users: expected a list"});
  reject_at(kBackends + "users:\n  - app\n", 3, {"users[0]: expected a map"});
  reject_at(kBackends + "users:\n  - {password: x, rules: on}\n", 3,
            {"users[0]: missing required key \"name\""});
  reject_at(kBackends + "users:\n  - {name: app, password: x}\n", 3,
            {"users[0]: missing required key \"rules\""});
  reject_at(kBackends + "users:\n  - {name: app, rules: \"\"}\n", 3,
            {"users[0].rules: must not be empty"});
  reject_at(kBackends + "users:\n  - {name: \"a b\", rules: on}\n", 3,
            {"users[0].name", "must not contain spaces"});
  reject_at(kBackends + "users:\n  - {name: app, pasword: x, rules: on}\n", 3,
            {"unknown key \"users[0].pasword\"", "did you mean \"users[0].password\""});
  reject_at(kBackends + "users:\n  - {name: app, password_sha256: abc, rules: on}\n", 3,
            {"users[0].password_sha256: expected 64 hexadecimal digits", "got 3 characters"});
  reject_at(kBackends + "users:\n  - {name: app, password_sha256: " + std::string(63, 'a') +
                "g, rules: on}\n",
            3, {"64 hexadecimal digits"});
  reject_at(kBackends + "users:\n  - {name: app, password: pw, password_sha256: " + kPwHash +
                ", rules: on}\n",
            3, {"users[0]: give password or password_sha256, not both"});
  reject_at(kBackends +
                "users:\n"
                "  - {name: app, password: a, rules: on}\n"
                "  - {name: ops, password: b, rules: on}\n"
                "  - {name: app, password: c, rules: on}\n",
            5, {"users[2]: duplicate user name \"app\"", "users[0], line 3"});
  reject_at(kBackends +
                "password: top\n"
                "users:\n"
                "  - {name: default, password: other, rules: on +@all}\n",
            4, {"users[0]: a user named \"default\" replaces the top-level password (line 2)"});
}

TEST_CASE("users: rules are checked by the ACL module, at the rules' line", "[config][users]") {
  const std::string head = kBackends + "users:\n  - name: app\n    password: pw\n";
  acl_rejects_at(
      head + "    rules: \"on +@read +nosuch ~app:*\"\n", 5,
      {"users[0].rules (user \"app\")", "'+nosuch': Unknown command or category name in ACL"});
  acl_rejects_at(head + "    rules: +@read ~app:*\n", 5,
                 {"say `on` to enable the user, or `off` to keep it disabled"});
  acl_rejects_at(head + "    rules: on nopass +@read\n", 5,
                 {"the rules say nopass but the user also has a password"});
  acl_rejects_at(head + "    rules: on >secret\n", 5, {"passwords are not accepted in rules"});
  acl_rejects_at(kBackends + "users:\n  - {name: app, rules: on +@read}\n", 3,
                 {"the user is on but nobody could log in"});

  // An `off` user without a password is fine: nobody can log in as it anyway.
  Config off = accept(kBackends + "users:\n  - {name: app, rules: off +@read}\n");
  ConfigError error;
  CHECK(acl::Acl::from_config(off, error).has_value());
  // A nopass user needs no password.
  Config open = accept(kBackends + "users:\n  - {name: app, rules: on nopass +@read}\n");
  CHECK(acl::Acl::from_config(open, error).has_value());
}

TEST_CASE("users: dump round-trips and redacts plain passwords only", "[config][users]") {
  Config config = accept(kBackends +
                         "users:\n"
                         "  - {name: app, password: app-secret, rules: \"on +@read ~app:*\"}\n"
                         "  - {name: ops, password_sha256: " +
                         kPwHash +
                         ", rules: \"on +@all ~* &*\"}\n"
                         "  - {name: guest, rules: \"on nopass +ping\"}\n");
  std::string text = config::dump(config);
  CHECK_THAT(text, !Catch::Contains("app-secret"));
  CHECK_THAT(text, Catch::Contains("users:\n  - name: \"app\"\n    password: \"<redacted>\"\n"));
  CHECK_THAT(text, Catch::Contains("password_sha256: \"" + kPwHash + "\""));
  CHECK_THAT(text, Catch::Contains("rules: \"on +@read ~app:*\""));

  Config again = accept(text);
  REQUIRE(again.users.size() == 3);
  CHECK(again.users[0].password == "<redacted>");
  CHECK(again.users[1].password_sha256 == kPwHash);
  CHECK(again.users[2].rules == "on nopass +ping");
  CHECK(config::dump(again) == text);

  CHECK_THAT(config::dump(accept(kBackends)), Catch::Contains("\nusers: []\n"));
}

TEST_CASE("users: the reference documents the user keys", "[config][users]") {
  std::string reference = config::reference_markdown();
  for (const char* key : {"`users`", "`users[].name`", "`users[].password`",
                          "`users[].password_sha256`", "`users[].rules`"}) {
    CHECK_THAT(reference, Catch::Contains(std::string("| ") + key + " |"));
  }
}

// Per-user access control (`users:` in the configuration): AUTH and HELLO with named users,
// Redis' NOPERM / WRONGPASS texts, key patterns by access type, channels, the default user,
// and the auth failure counter. Every reply is compared with a reference redis-server that has
// the same users (ACL SETUSER with the same rules).
#include <catch2/catch.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "support/harness.h"

using namespace lockstep::test;

namespace {

struct TestUser {
  std::string name;
  std::string password;  // plain; "" = nopass
  bool hashed;           // configure Lockstep with password_sha256 instead of password
  std::string rules;
};

// sha256("hashed-pw"), i.e. `printf %s hashed-pw | sha256sum`.
constexpr const char* kHashedPwSha256 =
    "d53a3e619328665a84a4cf3c1057b09eb45c71915d361a475c656359e9130530";

const std::vector<TestUser>& test_users() {
  static const std::vector<TestUser> users = {
      {"app", "app-pw", false, "on +@read ~app:*"},
      {"writer", "writer-pw", false, "on +@all ~* &*"},
      {"hashed", "hashed-pw", true, "on +@all -@dangerous ~hashed:*"},
      {"reader", "reader-pw", false, "on +@all %R~ro:* %W~wo:*"},
      {"chan", "chan-pw", false, "on +@all ~* &news &ch:*"},
      {"gone", "gone-pw", false, "off +@all ~*"},
  };
  return users;
}

std::string users_yaml(const std::vector<TestUser>& users) {
  std::string yaml = "users:\n";
  for (const TestUser& u : users) {
    yaml += "  - name: " + u.name + "\n";
    if (u.hashed) {
      yaml += std::string("    password_sha256: ") + kHashedPwSha256 + "\n";
    } else if (!u.password.empty()) {
      yaml += "    password: " + u.password + "\n";
    }
    yaml += "    rules: \"" + u.rules + (u.password.empty() ? " nopass" : "") + "\"\n";
  }
  return yaml;
}

// The same users on a reference redis-server.
void create_users(Client& admin, const std::vector<TestUser>& users) {
  for (const TestUser& u : users) {
    std::vector<std::string> argv = {"ACL", "SETUSER", u.name, "reset"};
    size_t pos = 0;
    while (pos < u.rules.size()) {
      size_t end = u.rules.find(' ', pos);
      if (end == std::string::npos) end = u.rules.size();
      argv.push_back(u.rules.substr(pos, end - pos));
      pos = end + 1;
    }
    if (u.hashed) {
      argv.push_back(std::string("#") + kHashedPwSha256);
    } else if (u.password.empty()) {
      argv.push_back("nopass");
    } else {
      argv.push_back(">" + u.password);
    }
    REQUIRE(admin.command(argv).is_ok());
  }
}

// A field of INFO <section> as a number; -1 when absent.
long long info_field(Client& c, const std::string& section, const std::string& field) {
  Reply info = c("INFO", section);
  if (!info.is_string()) return -1;
  const std::string key = "\r\n" + field + ":";
  size_t at = ("\r\n" + info.str).find(key);
  if (at == std::string::npos) return -1;
  return std::stoll(info.str.substr(at + key.size() - 2));
}

// Runs argv on Lockstep and on the reference; the replies must be equal.
Reply both(Client& proxy, Client& ref, const std::vector<std::string>& argv) {
  Reply actual = proxy.command(argv);
  Reply expected = ref.command(argv);
  std::string shown;
  for (const std::string& a : argv) shown += a + " ";
  INFO("command: " << shown);
  CHECK(actual == expected);
  return actual;
}

const Reply kWrongPass =
    Reply::error("WRONGPASS invalid username-password pair or user is disabled.");

Reply noperm_command(const std::string& fullname) {
  return Reply::error("NOPERM this user has no permissions to run the '" + fullname + "' command");
}
const Reply kNopermKeys =
    Reply::error("NOPERM this user has no permissions to access one of the keys used as arguments");
const Reply kNopermChannels = Reply::error(
    "NOPERM this user has no permissions to access one of the channels used as arguments");

struct AclCluster {
  RedisServer reference;
  Cluster cluster;

  explicit AclCluster(const std::string& extra_yaml = "")
      : cluster([&] {
          ClusterOptions o;
          o.extra_yaml = users_yaml(test_users()) + extra_yaml;
          return o;
        }()) {
    Client admin = reference.client();
    create_users(admin, test_users());
  }

  // An authenticated pair of connections (Lockstep, reference) as `user`.
  std::pair<Client, Client> login(const std::string& user, const std::string& password) {
    Client proxy = cluster.client();
    Client ref = reference.client();
    REQUIRE(proxy("AUTH", user, password).is_ok());
    REQUIRE(ref("AUTH", user, password).is_ok());
    return {std::move(proxy), std::move(ref)};
  }
};

}  // namespace

TEST_CASE("acl: a user restricted to ~app:* and @read", "[integration][acl]") {
  AclCluster acl;
  {
    auto [w, wref] = acl.login("writer", "writer-pw");
    both(w, wref, {"SET", "app:1", "one"});
    both(w, wref, {"SET", "other:1", "two"});
  }
  Client c = acl.cluster.client();
  Client ref = acl.reference.client();
  CHECK(both(c, ref, {"AUTH", "app", "app-pw"}).is_ok());
  CHECK(both(c, ref, {"GET", "app:1"}) == Reply::string("one"));
  CHECK(both(c, ref, {"MGET", "app:1", "app:2"}).is_array());
  CHECK(both(c, ref, {"EXISTS", "app:1"}) == Reply::integer_(1));
  CHECK(both(c, ref, {"SET", "app:1", "x"}) == noperm_command("set"));
  CHECK(both(c, ref, {"DEL", "app:1"}) == noperm_command("del"));
  CHECK(both(c, ref, {"GET", "other:1"}) == kNopermKeys);
  CHECK(both(c, ref, {"MGET", "app:1", "other:1"}) == kNopermKeys);
  CHECK(both(c, ref, {"CLIENT", "LIST"}) == noperm_command("client|list"));
  CHECK(both(c, ref, {"FLUSHALL"}) == noperm_command("flushall"));
  // ACL WHOAMI is @slow, not @read: Redis denies it to this user too.
  CHECK(both(c, ref, {"ACL", "WHOAMI"}) == noperm_command("acl|whoami"));
  // Nothing was written.
  auto [w, wref] = acl.login("writer", "writer-pw");
  CHECK(both(w, wref, {"GET", "app:1"}) == Reply::string("one"));
  CHECK(both(w, wref, {"ACL", "WHOAMI"}) == Reply::string("writer"));
}

TEST_CASE("acl: read and write key patterns", "[integration][acl]") {
  AclCluster acl;
  auto [c, ref] = acl.login("reader", "reader-pw");
  CHECK(both(c, ref, {"GET", "ro:1"}).is_nil());
  CHECK(both(c, ref, {"SET", "ro:1", "v"}) == kNopermKeys);
  CHECK(both(c, ref, {"SET", "wo:1", "v"}).is_ok());  // SET without GET only writes
  CHECK(both(c, ref, {"GET", "wo:1"}) == kNopermKeys);
  CHECK(both(c, ref, {"SET", "wo:1", "v", "GET"}) == kNopermKeys);
  CHECK(both(c, ref, {"EXISTS", "wo:1"}) == Reply::integer_(1));  // needs no permission
  CHECK(both(c, ref, {"APPEND", "wo:1", "x"}) == Reply::integer_(2));
  CHECK(both(c, ref, {"GET", "elsewhere"}) == kNopermKeys);
}

TEST_CASE("acl: AUTH failures, disabled users, SHA-256 passwords", "[integration][acl][auth]") {
  AclCluster acl;
  Client admin = acl.cluster.client();  // the default user: nopass, everything allowed
  const long long before = info_field(admin, "stats", "auth_failures");
  CHECK(before >= 0);

  Client c = acl.cluster.client();
  Client ref = acl.reference.client();
  CHECK(both(c, ref, {"AUTH", "app", "wrong"}) == kWrongPass);
  CHECK(both(c, ref, {"AUTH", "APP", "app-pw"}) == kWrongPass);  // names are case-sensitive
  CHECK(both(c, ref, {"AUTH", "nobody", "app-pw"}) == kWrongPass);
  CHECK(both(c, ref, {"AUTH", "gone", "gone-pw"}) == kWrongPass);
  CHECK(both(c, ref, {"AUTH", "hashed", kHashedPwSha256}) == kWrongPass);
  CHECK(info_field(admin, "stats", "auth_failures") == before + 5);

  CHECK(both(c, ref, {"AUTH", "hashed", "hashed-pw"}).is_ok());
  CHECK(both(c, ref, {"SET", "hashed:1", "v"}).is_ok());
  CHECK(both(c, ref, {"FLUSHALL"}) == noperm_command("flushall"));
  CHECK(both(c, ref, {"ACL", "WHOAMI"}) == Reply::string("hashed"));
  // A failed AUTH keeps the user already authenticated.
  CHECK(both(c, ref, {"AUTH", "app", "wrong"}) == kWrongPass);
  CHECK(both(c, ref, {"ACL", "WHOAMI"}) == Reply::string("hashed"));
  CHECK(info_field(admin, "stats", "auth_failures") == before + 6);

  // AUTH <password> names the default user, which is nopass here.
  CHECK(both(c, ref, {"AUTH", "app-pw"}).is_error());
}

TEST_CASE("acl: HELLO 2 AUTH user password", "[integration][acl][auth]") {
  AclCluster acl;
  Client c = acl.cluster.client();
  Client ref = acl.reference.client();
  Reply hello = c("HELLO", "2", "AUTH", "app", "app-pw");
  REQUIRE(hello.is_array());
  CHECK(both(c, ref, {"AUTH", "app", "app-pw"}).is_ok());  // the reference catches up
  CHECK(both(c, ref, {"SET", "app:1", "x"}) == noperm_command("set"));
  CHECK(both(c, ref, {"GET", "other:1"}) == kNopermKeys);

  Client c2 = acl.cluster.client();
  Client ref2 = acl.reference.client();
  CHECK(both(c2, ref2, {"HELLO", "2", "AUTH", "app", "wrong"}) == kWrongPass);
  CHECK(both(c2, ref2, {"HELLO", "2", "AUTH", "gone", "gone-pw"}) == kWrongPass);
}

TEST_CASE("acl: channels", "[integration][acl][pubsub]") {
  AclCluster acl;
  auto [c, ref] = acl.login("chan", "chan-pw");
  CHECK(both(c, ref, {"PUBLISH", "news", "m"}) == Reply::integer_(0));
  CHECK(both(c, ref, {"PUBLISH", "ch:1", "m"}) == Reply::integer_(0));
  CHECK(both(c, ref, {"PUBLISH", "other", "m"}) == kNopermChannels);
  auto [a, aref] = acl.login("app", "app-pw");
  CHECK(both(a, aref, {"PUBLISH", "news", "m"}) == noperm_command("publish"));
}

TEST_CASE("acl: client passwords never reach the backends", "[integration][acl][auth]") {
  AclCluster acl;
  auto [c, ref] = acl.login("writer", "writer-pw");
  CHECK(c("SET", "app:1", "v").is_ok());
  // The backends know no user "writer": had Lockstep forwarded AUTH, it would have failed.
  // Every connection on every backend is Lockstep's own (the default user here).
  for (size_t b = 0; b < acl.cluster.size(); ++b) {
    Reply list = acl.cluster.direct(b)("CLIENT", "LIST");
    REQUIRE(list.is_string());
    CHECK_THAT(list.str, !Catch::Contains("user=writer"));
    CHECK(acl.cluster.direct(b)("ACL", "LOG").elements.empty());
  }
}

TEST_CASE("acl: a configured default user", "[integration][acl][auth]") {
  RedisServer reference;
  ClusterOptions o;
  o.extra_yaml =
      "users:\n"
      "  - {name: default, rules: \"on nopass +@read +@connection ~public:*\"}\n"
      "  - {name: admin, password: admin-pw, rules: \"on +@all ~* &*\"}\n";
  Cluster cluster(o);
  {
    Client admin = reference.client();
    REQUIRE(admin("SET", "public:1", "p").is_ok());
    REQUIRE(admin("ACL", "SETUSER", "admin", "on", ">admin-pw", "+@all", "~*", "&*").is_ok());
    REQUIRE(admin("ACL", "SETUSER", "default", "reset", "on", "nopass", "+@read", "+@connection",
                  "~public:*")
                .is_ok());
  }
  {
    Client admin = cluster.client();
    REQUIRE(admin("AUTH", "admin", "admin-pw").is_ok());
    REQUIRE(admin("SET", "public:1", "p").is_ok());
  }
  // A new connection runs as the default user without AUTH.
  Client c = cluster.client();
  Client ref = reference.client();
  CHECK(both(c, ref, {"GET", "public:1"}) == Reply::string("p"));
  CHECK(both(c, ref, {"GET", "private:1"}) == kNopermKeys);
  CHECK(both(c, ref, {"SET", "public:1", "x"}) == noperm_command("set"));
  CHECK(both(c, ref, {"PING"}) == Reply::status("PONG"));
  CHECK(both(c, ref, {"AUTH", "admin", "admin-pw"}).is_ok());
  CHECK(both(c, ref, {"SET", "public:1", "x"}).is_ok());
}

TEST_CASE("acl: top-level password is the default user's, next to named users",
          "[integration][acl][auth]") {
  RedisOptions ref_options;
  ref_options.password = "top";
  RedisServer reference(ref_options);
  ClusterOptions o;
  o.extra_yaml =
      "password: top\n"
      "users:\n"
      "  - {name: app, password: app-pw, rules: \"on +@read ~app:*\"}\n";
  Cluster cluster(o);
  {
    Client admin = reference.client();
    REQUIRE(admin("AUTH", "top").is_ok());
    REQUIRE(admin("ACL", "SETUSER", "app", "on", ">app-pw", "+@read", "~app:*").is_ok());
  }
  Client c = cluster.client();
  Client ref = reference.client();
  CHECK(both(c, ref, {"GET", "app:1"}) == Reply::error("NOAUTH Authentication required."));
  CHECK(both(c, ref, {"AUTH", "app", "app-pw"}).is_ok());
  CHECK(both(c, ref, {"GET", "app:1"}).is_nil());
  CHECK(both(c, ref, {"AUTH", "top"}).is_ok());
  CHECK(both(c, ref, {"SET", "other:1", "v"}).is_ok());
  CHECK(both(c, ref, {"AUTH", "default", "top"}).is_ok());
  CHECK(both(c, ref, {"AUTH", "default", "app-pw"}) == kWrongPass);
}

TEST_CASE("acl: --check-config rejects bad rules with their line", "[integration][acl][config]") {
  TempDir dir;
  const std::string path = dir.file("bad.yaml");
  {
    std::string yaml =
        "backends: [127.0.0.1:7001]\n"
        "users:\n"
        "  - name: app\n"
        "    password: pw\n"
        "    rules: \"on +@read +nosuch ~app:*\"\n";
    FILE* f = std::fopen(path.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fwrite(yaml.data(), 1, yaml.size(), f);
    std::fclose(f);
  }
  ProcessResult r = run_process({LOCKSTEP_BINARY, "--config", path, "--check-config"}, "");
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.err + r.out, Catch::Contains(path + ":5:"));
  CHECK_THAT(r.err + r.out, Catch::Contains("'+nosuch': Unknown command or category name in ACL"));
}

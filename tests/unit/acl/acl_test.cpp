// Per-user access control. Every expectation below was checked against redis-server 7.0.15:
// glob cases with KEYS, rule and permission cases with ACL SETUSER + ACL DRYRUN / AUTH (plus a
// randomized differential run of ~20,000 rule/command combinations during development).
#include "lockstep/acl/acl.h"

#include <catch2/catch.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::literals;
using namespace lockstep;
using acl::Acl;
using acl::User;
using acl::Verdict;

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string word(text.substr(pos, end - pos));
    out.push_back(word == "\"\"" ? std::string() : word);
    pos = end + 1;
  }
  return out;
}

// The (sub)command entry a request resolves to, as the router finds it.
const proxy::CommandInfo& resolve(const std::vector<std::string>& argv) {
  const proxy::CommandInfo* cmd = proxy::CommandTable::builtin().find(argv.at(0));
  REQUIRE(cmd != nullptr);
  if (!cmd->subcommands.empty() && argv.size() > 1) {
    cmd = proxy::CommandTable::find_sub(*cmd, argv[1]);
    REQUIRE(cmd != nullptr);
  }
  return *cmd;
}

acl::Result run(const User& user, std::string_view request) {
  std::vector<std::string> argv = words(request);
  std::vector<std::string_view> args(argv.begin(), argv.end());
  return acl::check(user, resolve(argv), args);
}

User make_user(std::string_view rules, std::string name = "t") {
  User user(std::move(name));
  std::optional<acl::RuleError> error = user.apply_rules(rules);
  INFO(rules);
  INFO((error ? error->format() : std::string()));
  REQUIRE_FALSE(error.has_value());
  return user;
}

std::string verdict_text(const acl::Result& r) {
  switch (r.verdict) {
    case Verdict::kAllowed:
      return "ok";
    case Verdict::kDeniedCommand:
      return "command";
    case Verdict::kDeniedKey:
      return "key";
    case Verdict::kDeniedChannel:
      return "channel";
  }
  return "?";
}

}  // namespace

TEST_CASE("glob_match behaves like Redis' stringmatchlen", "[acl][glob]") {
  struct Case {
    std::string_view pattern, text;
    bool match;
  };
  // Expectations from KEYS <pattern> on redis-server 7.0.15 (ACL uses the same matcher).
  const Case cases[] = {
      {""sv, ""sv, true},
      {""sv, "a"sv, false},
      {"*"sv, ""sv, false},  // the empty string only matches the empty pattern
      {"**"sv, ""sv, false},
      {"a"sv, ""sv, false},
      {"*"sv, "a"sv, true},
      {"*"sv, "abc"sv, true},
      {"a*"sv, "a"sv, true},
      {"a*"sv, "abc"sv, true},
      {"a*"sv, "ba"sv, false},
      {"*a"sv, "bca"sv, true},
      {"*a"sv, "ab"sv, false},
      {"a*b*c"sv, "aXbYc"sv, true},
      {"a*b*c"sv, "abcb"sv, false},
      {"a**b"sv, "ab"sv, true},
      {"*?"sv, "a"sv, true},
      {"*?"sv, ""sv, false},
      {"?"sv, "a"sv, true},
      {"?"sv, ""sv, false},
      {"?"sv, "ab"sv, false},
      {"??"sv, "ab"sv, true},
      {"a?c"sv, "abc"sv, true},
      {"a?c"sv, "ac"sv, false},
      {"[abc]"sv, "b"sv, true},
      {"[abc]"sv, "d"sv, false},
      {"[a-c]"sv, "b"sv, true},
      {"[c-a]"sv, "b"sv, true},  // reversed ranges are swapped
      {"[a-c]"sv, "d"sv, false},
      {"[^a-c]"sv, "d"sv, true},
      {"[^a-c]"sv, "b"sv, false},
      {"[^]"sv, "x"sv, true},
      {"[]"sv, "x"sv, false},
      {"[]a]"sv, "]a"sv, false},  // "[]" is an empty class, then "a]" literally
      {"[]a]"sv, "a"sv, false},
      {"[]a]"sv, "]"sv, false},
      {"["sv, "x"sv, false},
      {"["sv, "["sv, false},
      {"[^"sv, "x"sv, true},
      {"a["sv, "a["sv, false},
      {"[ab"sv, "a"sv, true},  // an unterminated class ends the pattern
      {"[ab"sv, "ab"sv, false},
      {"[a-"sv, "a"sv, true},
      {"[a-"sv, "-"sv, true},
      {"[a-]"sv, "]"sv, true},  // a range a..] (swapped), then the class runs to the end
      {"[a-]x]"sv, "bx"sv, false},
      {"[\\]]"sv, "]"sv, true},
      {"[\\-]"sv, "-"sv, true},
      {"[a\\-z]"sv, "b"sv, false},
      {"[a\\-z]"sv, "-"sv, true},
      {"\\*"sv, "*"sv, true},
      {"\\*"sv, "a"sv, false},
      {"\\?"sv, "?"sv, true},
      {"\\?"sv, "x"sv, false},
      {"\\"sv, "\\"sv, true},  // a trailing backslash is literal
      {"a\\"sv, "a\\"sv, true},
      {"\\\\"sv, "\\"sv, true},
      {"\\a"sv, "a"sv, true},
      {"[\\"sv, "\\"sv, true},
      {"user:*"sv, "user:1"sv, true},
      {"user:*"sv, "user:"sv, true},
      {"user:*"sv, "users:1"sv, false},
      {"*:*"sv, "a:b"sv, true},
      {"*:*"sv, "ab"sv, false},
      {"[a-\xff]"sv, "\xff"sv, true},  // bytes compare as signed chars: the range is \xff..a
      {"[a-\xff]"sv, "b"sv, false},
      {"[a-\xff]"sv, "\x01"sv, true},
      {"\xff*"sv, "\xff\x00"sv, true},
      {"h[ae]llo"sv, "hello"sv, true},
      {"h[^e]llo"sv, "hallo"sv, true},
      {"h[^e]llo"sv, "hello"sv, false},
      {"*[0-9]"sv, "abc7"sv, true},
  };
  for (const Case& c : cases) {
    INFO("pattern \"" << c.pattern << "\" text \"" << c.text << "\"");
    CHECK(acl::glob_match(c.pattern, c.text) == c.match);
  }
}

TEST_CASE("glob_match copes with many stars without blowing up", "[acl][glob]") {
  std::string pattern;
  for (int i = 0; i < 200; ++i) pattern += "*a";
  pattern += "b";
  CHECK_FALSE(acl::glob_match(pattern, std::string(5000, 'a')));
  CHECK(acl::glob_match(pattern, std::string(300, 'a') + "b"));
}

TEST_CASE("rules: accepted and rejected as by ACL SETUSER", "[acl][rules]") {
  struct Case {
    std::string_view rules;
    std::string_view error;  // empty = accepted
  };
  const Case cases[] = {
      {"on off ON OFF nopass NOPASS resetpass", ""},
      {"+@all -@all allcommands nocommands +@READ -@Dangerous", ""},
      {"+get -get +GET +config|get -config|set +config +client -client|id +select|0 +debug|x", ""},
      {"~app:* %R~r:* %W~w:* %RW~rw:* %r~x %w~y %WR~z ~ allkeys resetkeys", ""},
      {"&ch* &news allchannels resetchannels &x", ""},
      {"allkeys ~*", ""},  // "~*" is an alias of allkeys
      {"allchannels &*", ""},
      {"reset clearselectors", ""},
      {"+nonexist", "Unknown command or category name in ACL"},
      {"+@nonexist", "Unknown command or category name in ACL"},
      {"-@nonexist", "Unknown command or category name in ACL"},
      {"+config|nonexist", "Unknown command or category name in ACL"},
      {"-select|0", "Unknown command or category name in ACL"},
      {"+select|a|b", "Unknown command or category name in ACL"},
      {"+|x", "Unknown command or category name in ACL"},
      {"+", "Unknown command or category name in ACL"},
      {"-", "Unknown command or category name in ACL"},
      {"+config|get|x", "Allowing first-arg of a subcommand is not supported"},
      {"+select|", "Syntax error"},
      {"+config|", "Syntax error"},
      {"bogus", "Syntax error"},
      {"%X~foo", "Syntax error"},
      {"%~foo", "Syntax error"},
      {"%Rfoo", "Syntax error"},
      {"%RRW~foo", "Syntax error"},
      {"%R", "Syntax error"},  // Redis takes this as an empty pattern; Lockstep calls it a typo
      {"allkeys ~foo",
       "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
       "have any effect. Try 'resetkeys' to start with an empty list of patterns"},
      {"~* %R~*",
       "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
       "have any effect. Try 'resetkeys' to start with an empty list of patterns"},
      {"&* &foo",
       "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
       "not have any effect. Try 'resetchannels' to start with an empty list of channels"},
      // Not supported by Lockstep (passwords belong in password/password_sha256).
      {">secret", "passwords are not accepted in rules"},
      {"#abc", "passwords are not accepted in rules"},
      {"(~x +get)", "selectors are not supported"},
      {"skip-sanitize-payload", "not supported by Lockstep"},
  };
  for (const Case& c : cases) {
    INFO(c.rules);
    User user("t");
    std::optional<acl::RuleError> error = user.apply_rules(c.rules);
    if (c.error.empty()) {
      CHECK_FALSE(error.has_value());
    } else {
      REQUIRE(error.has_value());
      CHECK_THAT(error->message, Catch::StartsWith(std::string(c.error)));
    }
  }
}

TEST_CASE("rules: errors name the rule and where it is", "[acl][rules]") {
  User user("t");
  std::optional<acl::RuleError> error = user.apply_rules("on  +@read\t+nosuch ~x");
  REQUIRE(error.has_value());
  CHECK(error->rule == "+nosuch");
  CHECK(error->offset == 11);
  CHECK(error->format() == "'+nosuch': Unknown command or category name in ACL");
  // The rules before the bad one were applied, the ones after it were not.
  CHECK(user.enabled());
  CHECK(user.key_patterns().empty());
}

TEST_CASE("rules: a new user and reset", "[acl][rules]") {
  User fresh("t");
  CHECK_FALSE(fresh.enabled());
  CHECK_FALSE(fresh.nopass());
  CHECK_FALSE(fresh.all_keys());
  CHECK_FALSE(fresh.all_channels());
  CHECK(verdict_text(run(fresh, "GET k")) == "command");
  CHECK(fresh.describe() == "user t off resetchannels -@all");

  User user = make_user("on nopass +@all ~* &* reset");
  CHECK_FALSE(user.enabled());
  CHECK_FALSE(user.nopass());
  CHECK_FALSE(user.all_keys());
  CHECK_FALSE(user.all_channels());
  CHECK(verdict_text(run(user, "GET k")) == "command");
}

TEST_CASE("rules: key and channel patterns", "[acl][rules]") {
  User user = make_user("%R~a %W~a ~b %R~c &x &x");
  // The same pattern again widens its permissions (Redis shows "%R~a %W~a" as "~a").
  REQUIRE(user.key_patterns().size() == 3);
  CHECK(user.key_patterns()[0].pattern == "a");
  CHECK(user.key_patterns()[0].permissions == acl::kKeyReadWrite);
  CHECK(user.key_patterns()[2].permissions == acl::kKeyRead);
  CHECK(user.channel_patterns().size() == 1);
  CHECK(user.describe() == "user t off ~a ~b %R~c resetchannels &x -@all");

  // %RW~* is an ordinary pattern, not allkeys: later patterns are fine, and the empty key
  // does not match it.
  User star = make_user("on nopass +@all %RW~* ~more");
  CHECK_FALSE(star.all_keys());
  CHECK(verdict_text(run(star, "GET k")) == "ok");
  CHECK(verdict_text(run(star, "GET \"\"")) == "key");
  User all = make_user("on nopass +@all ~*");
  CHECK(all.all_keys());
  CHECK(verdict_text(run(all, "GET \"\"")) == "ok");
}

TEST_CASE("commands: categories, commands, subcommands and first arguments", "[acl][commands]") {
  struct Case {
    std::string_view rules, request, verdict;
  };
  const Case cases[] = {
      {"+@read", "GET k", "ok"},
      {"+@read", "SET k v", "command"},
      {"+@read", "CONFIG GET x", "command"},
      {"+@read", "ACL WHOAMI", "command"},
      {"+@all", "FLUSHALL", "ok"},
      {"+@all -@dangerous", "FLUSHALL", "command"},
      {"+@all -@dangerous", "GET k", "ok"},
      {"+@all -config", "CONFIG GET x", "command"},
      {"+@all -config|set", "CONFIG GET x", "ok"},
      {"+@all -config|set", "CONFIG SET x y", "command"},
      {"-@all +config|get", "CONFIG GET x", "ok"},
      {"-@all +config|get", "CONFIG SET x y", "command"},
      {"+client -client|id", "CLIENT ID", "command"},
      {"+client -client|id", "CLIENT LIST", "ok"},
      {"+client -client|id +client", "CLIENT ID", "ok"},
      // A container in a category brings all its subcommands: CLIENT is @slow, CLIENT ID is not.
      {"+@slow", "CLIENT ID", "ok"},
      {"+@fast", "CLIENT ID", "command"},
      {"+@connection", "CLIENT ID", "ok"},
      {"+@slow -@fast", "CLIENT ID", "ok"},
      // First-argument exceptions (+select|0), case-insensitive, dropped by later rules that
      // change the whole command.
      {"+select|0", "SELECT 0", "ok"},
      {"+select|0", "SELECT 1", "command"},
      {"+select|abc", "SELECT ABC", "ok"},
      {"+select|0 -@all", "SELECT 0", "command"},
      {"+select|0 -@connection", "SELECT 0", "command"},
      {"+select|0 -@fast", "SELECT 0", "command"},
      {"+select|0 +select -select", "SELECT 0", "command"},
      {"+debug|object", "DEBUG OBJECT k", "ok"},
      {"+debug|object", "DEBUG SLEEP 0", "command"},
      // AUTH and HELLO need no permission.
      {"", "AUTH u p", "ok"},
      {"", "HELLO 2", "ok"},
      {"-@all", "PING", "command"},
      {"+acl|whoami", "ACL WHOAMI", "ok"},
  };
  for (const Case& c : cases) {
    INFO(c.rules << " / " << c.request);
    User user = make_user(std::string("on nopass allkeys allchannels ") + std::string(c.rules));
    acl::Result result = run(user, c.request);
    CHECK(verdict_text(result) == c.verdict);
  }
}

TEST_CASE("keys: the permission each command needs, by key spec", "[acl][keys]") {
  struct Case {
    std::string_view request;
    bool read_only, write_only, read_write;  // with %R~app:*, %W~app:*, ~app:*
  };
  // From ACL DRYRUN on redis-server 7.0.15 with +@all and the pattern.
  const Case cases[] = {
      {"GET app:1", true, false, true},
      {"SET app:1 v", false, true, true},       // OW|UPDATE: write only
      {"SET app:1 v GET", false, false, true},  // GET reads the old value too
      {"APPEND app:1 x", false, true, true},
      {"EXISTS app:1", true, true, true},  // RO without ACCESS: any matching pattern
      {"TYPE app:1", true, true, true},
      {"TTL app:1", true, false, true},
      {"DEL app:1", false, true, true},
      {"TOUCH app:1", true, true, true},
      {"STRLEN app:1", true, true, true},
      {"OBJECT ENCODING app:1", true, true, true},
      {"COPY app:1 app:2", false, false, true},
      {"RENAME app:1 app:2", false, false, true},
      {"LMOVE app:1 app:2 LEFT RIGHT", false, false, true},
      {"SORT app:1", true, false, true},
      {"SORT app:1 STORE app:2", false, false, true},
      {"SORT_RO app:1", true, false, true},
      {"BITFIELD app:1 GET u8 0", true, false, true},
      {"BITFIELD app:1 SET u8 0 1", false, false, true},
      {"GETDEL app:1", false, false, true},
      {"INCR app:1", false, false, true},
      {"HSET app:1 f v", false, true, true},
      {"HGET app:1 f", true, false, true},
      {"LPUSH app:1 v", false, true, true},
      {"EXPIRE app:1 10", false, true, true},
      {"PFCOUNT app:1", true, false, true},
      {"DUMP app:1", true, false, true},
      {"RESTORE app:1 0 x", false, true, true},
      {"EVAL x 1 app:1", false, false, true},
      {"MIGRATE h 1 app:1 0 10", false, false, true},
      {"MSET app:1 a app:2 b", false, true, true},
      {"MGET app:1 app:2", true, false, true},
      {"XADD app:1 * f v", false, true, true},
      {"XREAD STREAMS app:1 0", true, false, true},
      {"SMOVE app:1 app:2 m", false, false, true},
      {"GETEX app:1", false, false, true},
  };
  User read_only = make_user("on nopass +@all %R~app:*");
  User write_only = make_user("on nopass +@all %W~app:*");
  User read_write = make_user("on nopass +@all ~app:*");
  for (const Case& c : cases) {
    INFO(c.request);
    CHECK(run(read_only, c.request).allowed() == c.read_only);
    CHECK(run(write_only, c.request).allowed() == c.write_only);
    CHECK(run(read_write, c.request).allowed() == c.read_write);
  }
}

TEST_CASE("keys: the issue's example, ~app:* with @read", "[acl][keys]") {
  User app = make_user("on nopass +@read ~app:*", "app");
  CHECK(run(app, "GET app:1").allowed());
  CHECK(run(app, "MGET app:1 app:2").allowed());

  acl::Result write = run(app, "SET app:1 v");
  CHECK(write.verdict == Verdict::kDeniedCommand);
  CHECK(write.error() == "NOPERM this user has no permissions to run the 'set' command");

  acl::Result other = run(app, "GET other:1");
  CHECK(other.verdict == Verdict::kDeniedKey);
  CHECK(other.arg == 1);
  CHECK(other.error() ==
        "NOPERM this user has no permissions to access one of the keys used as arguments");

  acl::Result mixed = run(app, "MGET app:1 other:1");
  CHECK(mixed.verdict == Verdict::kDeniedKey);
  CHECK(mixed.arg == 2);

  // Subcommands are named "parent|sub" in the error, as Redis does.
  CHECK(run(app, "CONFIG GET x").error() ==
        "NOPERM this user has no permissions to run the 'config|get' command");
  CHECK(run(app, "GET app:1").error().empty());
}

TEST_CASE("keys: several patterns, and commands without keys", "[acl][keys]") {
  User user = make_user("on nopass +@all %R~r:* %W~w:* ~rw:[0-9]");
  CHECK(run(user, "COPY r:1 w:1").allowed());  // source needs read, destination write
  CHECK_FALSE(run(user, "COPY w:1 r:1").allowed());
  CHECK(run(user, "COPY rw:1 rw:2").allowed());
  CHECK_FALSE(run(user, "COPY rw:1 rw:x").allowed());
  CHECK(run(user, "PING").allowed());
  CHECK(run(user, "DBSIZE").allowed());
  CHECK(run(user, "EVAL x 0").allowed());  // no keys given
  User none = make_user("on nopass +@all");
  CHECK(verdict_text(run(none, "GET k")) == "key");
  CHECK(verdict_text(run(none, "PING")) == "ok");
}

TEST_CASE("keys: malformed keyed requests fail closed", "[acl][keys]") {
  // The keys cannot be found, so they cannot be checked: denied unless the user has allkeys.
  User user = make_user("on nopass +@all ~app:*");
  CHECK(verdict_text(run(user, "MSET app:1 v app:2")) == "key");
  CHECK(verdict_text(run(user, "EVAL x notanumber app:1")) == "key");
  User all = make_user("on nopass +@all allkeys");
  CHECK(verdict_text(run(all, "MSET app:1 v app:2")) == "ok");
}

TEST_CASE("channels: publish, subscribe and pattern subscribe", "[acl][channels]") {
  User user = make_user("on nopass +@all allkeys &ch* &news");
  struct Case {
    std::string_view request, verdict;
    uint32_t arg;
  };
  const Case cases[] = {
      {"PUBLISH ch1 m", "ok", 0},
      {"PUBLISH news m", "ok", 0},
      {"PUBLISH other m", "channel", 1},
      {"SPUBLISH ch1 m", "ok", 0},
      {"SPUBLISH other m", "channel", 1},
      {"SUBSCRIBE ch1 news", "ok", 0},
      {"SUBSCRIBE ch1 other", "channel", 2},
      {"SSUBSCRIBE zz", "channel", 1},
      // A pattern must be one of the allowed patterns, literally.
      {"PSUBSCRIBE ch*", "ok", 0},
      {"PSUBSCRIBE news", "ok", 0},
      {"PSUBSCRIBE c*", "channel", 1},
      {"PSUBSCRIBE ch1", "channel", 1},
      // Unsubscribing is always allowed.
      {"UNSUBSCRIBE other", "ok", 0},
      {"PUNSUBSCRIBE x*", "ok", 0},
  };
  for (const Case& c : cases) {
    INFO(c.request);
    acl::Result result = run(user, c.request);
    CHECK(verdict_text(result) == c.verdict);
    if (!result.allowed()) {
      CHECK(result.arg == c.arg);
      CHECK(result.error() ==
            "NOPERM this user has no permissions to access one of the channels used as "
            "arguments");
    }
  }
  User none = make_user("on nopass +@all allkeys");  // Redis 7.0: new users have no channels
  CHECK(verdict_text(run(none, "PUBLISH ch1 m")) == "channel");
  User all = make_user("on nopass +@all allkeys allchannels");
  CHECK(verdict_text(run(all, "PSUBSCRIBE *")) == "ok");
}

TEST_CASE("passwords: plain, SHA-256, nopass, off", "[acl][auth]") {
  // sha256("pw"), as Redis shows it in ACL LIST.
  const std::string pw_hex = "30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4";
  CHECK(acl::to_hex(acl::sha256("pw")) == pw_hex);
  CHECK(acl::parse_sha256_hex(pw_hex) == acl::sha256("pw"));
  std::string upper = pw_hex;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(acl::parse_sha256_hex(upper) == acl::sha256("pw"));
  CHECK_FALSE(acl::parse_sha256_hex(pw_hex.substr(1)).has_value());
  CHECK_FALSE(acl::parse_sha256_hex(pw_hex.substr(1) + "g").has_value());

  User plain = make_user("on +@all", "plain");
  plain.add_password("pw");
  CHECK(plain.password_matches("pw"));
  CHECK_FALSE(plain.password_matches("PW"));
  CHECK_FALSE(plain.password_matches(""));
  CHECK(plain.describe() == "user plain on #" + pw_hex + " resetchannels +@all");

  User hashed = make_user("on", "hashed");
  hashed.add_password_digest(*acl::parse_sha256_hex(pw_hex));
  hashed.add_password("second");
  CHECK(hashed.password_count() == 2);
  CHECK(hashed.password_matches("pw"));
  CHECK(hashed.password_matches("second"));
  CHECK_FALSE(hashed.password_matches("third"));

  User open = make_user("on nopass");
  CHECK(open.password_matches("anything"));
  open.add_password("pw");  // as Redis' >pw: no longer nopass
  CHECK_FALSE(open.nopass());
  CHECK_FALSE(open.password_matches("anything"));

  User off = make_user("off nopass");
  CHECK_FALSE(off.password_matches("anything"));
  User none = make_user("on");
  CHECK_FALSE(none.password_matches(""));
}

TEST_CASE("Acl: authenticate, find, default user", "[acl][auth]") {
  std::vector<User> users;
  users.push_back(make_user("on +@read ~app:*", "app"));
  users.back().add_password("app-pw");
  users.push_back(make_user("off +@all ~*", "gone"));
  users.back().add_password("gone-pw");
  Acl acl = Acl::from_users(std::move(users));

  const User* app = acl.authenticate("app", "app-pw");
  REQUIRE(app != nullptr);
  CHECK(app->name() == "app");  // ACL WHOAMI
  CHECK(app == acl.find("app"));
  CHECK(acl.authenticate("app", "wrong") == nullptr);
  CHECK(acl.authenticate("APP", "app-pw") == nullptr);  // names are case-sensitive
  CHECK(acl.authenticate("nobody", "app-pw") == nullptr);
  CHECK(acl.authenticate("gone", "gone-pw") == nullptr);  // off never authenticates
  // No "default" given: Redis' own default user, nopass with everything allowed.
  CHECK(acl.default_user().name() == "default");
  CHECK(acl.initial_user() == &acl.default_user());
  CHECK(acl.authenticate("default", "whatever") == &acl.default_user());
  CHECK(acl.default_user().describe() == "user default on nopass ~* &* +@all");
}

TEST_CASE("Acl::from_config: the default user", "[acl][auth][config]") {
  config::Config cfg;

  SECTION("no users, no password: Redis' default, no AUTH needed") {
    config::ConfigError error;
    std::optional<Acl> acl = Acl::from_config(cfg, error);
    REQUIRE(acl.has_value());
    REQUIRE(acl->users().size() == 1);
    CHECK(acl->initial_user() == &acl->default_user());
    CHECK(run(acl->default_user(), "FLUSHALL").allowed());
    CHECK(run(acl->default_user(), "PUBLISH x m").allowed());
  }

  SECTION("top-level password: the default user needs it (requirepass)") {
    cfg.password = "top";
    config::UserConfig app{"app", "app-pw", "", "on +@read ~app:*"};
    cfg.users.push_back(app);
    config::ConfigError error;
    std::optional<Acl> acl = Acl::from_config(cfg, error);
    REQUIRE(acl.has_value());
    CHECK(acl->initial_user() == nullptr);
    CHECK(acl->authenticate("default", "top") == &acl->default_user());
    CHECK(acl->authenticate("default", "app-pw") == nullptr);
    CHECK(acl->authenticate("app", "app-pw") == acl->find("app"));
    CHECK(run(acl->default_user(), "FLUSHALL").allowed());
  }

  SECTION("a configured default user replaces Redis' default") {
    cfg.users.push_back(config::UserConfig{"default", "", "", "on nopass +@read ~public:*"});
    config::ConfigError error;
    std::optional<Acl> acl = Acl::from_config(cfg, error);
    REQUIRE(acl.has_value());
    REQUIRE(acl->users().size() == 1);
    REQUIRE(acl->initial_user() != nullptr);
    CHECK(run(*acl->initial_user(), "GET public:1").allowed());
    CHECK_FALSE(run(*acl->initial_user(), "GET private:1").allowed());
    CHECK_FALSE(run(*acl->initial_user(), "SET public:1 v").allowed());
  }

  SECTION("a configured default user that is off or has a password: AUTH first") {
    cfg.users.push_back(config::UserConfig{"default", "", "", "off +@all ~*"});
    config::ConfigError error;
    std::optional<Acl> acl = Acl::from_config(cfg, error);
    REQUIRE(acl.has_value());
    CHECK(acl->initial_user() == nullptr);
    CHECK(acl->authenticate("default", "") == nullptr);
  }
}

TEST_CASE("extract_keys_with_flags: same keys as extract_keys, with Redis' flags",
          "[acl][command_table]") {
  using namespace proxy;
  struct Case {
    std::string_view request;
    std::vector<KeyRef> keys;
  };
  // The flags COMMAND GETKEYSANDFLAGS reports on redis-server 7.0.15.
  const Case cases[] = {
      {"GET k", {{1, kKeyRO | kKeyAccess}}},
      {"SET k v", {{1, kKeyOW | kKeyUpdate}}},
      {"SET k v NX get", {{1, kKeyRW | kKeyAccess | kKeyUpdate}}},
      {"SET k get", {{1, kKeyOW | kKeyUpdate}}},  // "get" is the value here
      {"BITFIELD k GET u8 0", {{1, kKeyRO | kKeyAccess}}},
      {"BITFIELD k OVERFLOW WRAP GET u8 0", {{1, kKeyRO | kKeyAccess}}},
      {"BITFIELD k", {{1, kKeyRO | kKeyAccess}}},
      {"BITFIELD k GET u8", {{1, kKeyRW | kKeyAccess | kKeyUpdate}}},
      {"BITFIELD k SET u8 0 1", {{1, kKeyRW | kKeyAccess | kKeyUpdate}}},
      {"SORT k BY x STORE d GET #", {{1, kKeyRO | kKeyAccess}, {5, kKeyOW | kKeyUpdate}}},
      {"MIGRATE h 1 k 0 10", {{3, kKeyRW | kKeyAccess | kKeyDelete}}},
      {"MIGRATE h 1 \"\" 0 10 KEYS a b",
       {{7, kKeyRW | kKeyAccess | kKeyDelete}, {8, kKeyRW | kKeyAccess | kKeyDelete}}},
      {"EXISTS k", {{1, kKeyRO}}},
      {"DEL k", {{1, kKeyRM | kKeyDelete}}},
      {"LMOVE a b LEFT RIGHT", {{1, kKeyRW | kKeyAccess | kKeyDelete}, {2, kKeyRW | kKeyInsert}}},
      {"SPUBLISH ch m", {{1, kKeyNotKey}}},
  };
  for (const Case& c : cases) {
    INFO(c.request);
    std::vector<std::string> argv = words(c.request);
    std::vector<std::string_view> args(argv.begin(), argv.end());
    KeyRefs refs;
    REQUIRE(extract_keys_with_flags(resolve(argv), args, refs) == KeyExtract::kOk);
    KeyPositions positions;
    REQUIRE(extract_keys(resolve(argv), args, positions) == KeyExtract::kOk);
    REQUIRE(refs.size() == c.keys.size());
    REQUIRE(positions.size() == c.keys.size());
    for (size_t i = 0; i < c.keys.size(); ++i) {
      CHECK(refs[i].pos == c.keys[i].pos);
      CHECK(positions[i] == c.keys[i].pos);
      CHECK(refs[i].flags == c.keys[i].flags);
    }
  }
}

TEST_CASE("extract_keys_with_flags: agrees with extract_keys on every command shape",
          "[acl][command_table]") {
  using namespace proxy;
  const char* requests[] = {
      "MSET a 1 b 2",
      "MSET a 1 b",
      "ZUNIONSTORE d 2 a b",
      "ZUNIONSTORE d x a",
      "EVAL s 0",
      "EVAL s 2 a b",
      "XREAD STREAMS a b 0 0",
      "XREAD STREAMS a b 0",
      "GEORADIUS k 0 0 1 m STORE d",
      "OBJECT ENCODING k",
      "SINTERCARD 2 a b",
  };
  for (const char* request : requests) {
    INFO(request);
    std::vector<std::string> argv = words(request);
    std::vector<std::string_view> args(argv.begin(), argv.end());
    KeyRefs refs;
    KeyPositions positions;
    KeyExtract a = extract_keys_with_flags(resolve(argv), args, refs);
    KeyExtract b = extract_keys(resolve(argv), args, positions);
    CHECK(a == b);
    REQUIRE(refs.size() == positions.size());
    for (size_t i = 0; i < refs.size(); ++i) CHECK(refs[i].pos == positions[i]);
  }
  // Past the inline capacity.
  std::vector<std::string> argv = {"MGET"};
  for (int i = 0; i < 40; ++i) argv.push_back("k" + std::to_string(i));
  std::vector<std::string_view> args(argv.begin(), argv.end());
  KeyRefs refs;
  REQUIRE(extract_keys_with_flags(resolve(argv), args, refs) == KeyExtract::kOk);
  REQUIRE(refs.size() == 40);
  CHECK(refs[39].pos == 40);
  CHECK(refs[39].flags == (kKeyRO | kKeyAccess));
}

TEST_CASE("describe: ACL LIST lines", "[acl][describe]") {
  // Lines as redis-server 7.0.15 prints them for the same rules.
  CHECK(make_user("on +@read ~app:*", "app").describe() ==
        "user app on ~app:* resetchannels -@all +@read");
  CHECK(make_user("+@all -config").describe() == "user t off resetchannels +@all -config");
  CHECK(make_user("+config -config|get").describe() ==
        "user t off resetchannels -@all +config -config|get");
  CHECK(make_user("+get +get -get +get").describe() == "user t off resetchannels -@all +get");
  CHECK(make_user("-@all +@all").describe() == "user t off resetchannels +@all");
  CHECK(make_user("+@all -@all +get").describe() == "user t off resetchannels -@all +get");
  CHECK(make_user("+select|0").describe() == "user t off resetchannels -@all +select|0");
  CHECK(make_user("&foo allchannels").describe() == "user t off &* -@all");
}

// Per-user access control, Redis ACL style (a subset of Redis 7.0's ACL SETUSER rules).
//
// Sans-I/O: values in, values out. No sockets, threads or clocks; nothing here is mutated
// after construction, so one Acl can be shared by every worker thread (read-only).
//
// What a user is, exactly as Redis 7.0 sees it:
//   - on/off: an `off` user never authenticates;
//   - passwords: SHA-256 digests only (plain passwords from the configuration are hashed at
//     load), or `nopass` (any password is accepted);
//   - commands: one allow bit per command and per subcommand, changed by the rules in order
//     (`+@read`, `-@dangerous`, `+get`, `-config|set`, `+select|0` ...);
//   - keys: glob patterns with read and/or write permission (`~p`, `%R~p`, `%W~p`, `%RW~p`),
//     or `allkeys` (alias `~*`); a key is checked against the permission its key spec implies
//     (see check());
//   - channels: glob patterns (`&p`) or `allchannels` (alias `&*`).
// Redis' selectors (`(...)`), in-rule passwords (`>pw`, `#hash`, `<pw`, `!hash`) and
// `[skip-]sanitize-payload` are not supported: passwords come from the configuration's
// `password` / `password_sha256` fields so that --check-config can redact them.
//
// The `default` user (the one a connection starts as, and the one `AUTH <password>` names):
//   - when `users:` lists a user named "default", it is that user, built from its rules like
//     any other (a configuration may not also set the top-level `password` then);
//   - otherwise it is Redis' default user: `on ~* &* +@all`, with `nopass` when the top-level
//     `password` is empty (no AUTH needed, as Redis without requirepass) or that password
//     (AUTH needed, as Redis' requirepass).
// A connection starts authenticated as `default` only if that user is `on` and `nopass`
// (initial_user()); otherwise every command but AUTH/HELLO gets -NOAUTH until it authenticates.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lockstep/config/config.h"
#include "lockstep/proxy/command_table.h"

namespace lockstep::acl {

// Redis' stringmatchlen(), case-sensitive: `*`, `?`, `[abc]`, `[a-z]`, `[^...]`, `\` escapes.
// Also its corner cases: an empty string matches only the empty pattern (so "*" does not
// match ""), a `]` right after `[` closes an empty class, an unterminated class ends the
// pattern, ranges compare bytes as signed chars (as Redis on x86), and a trailing `\` is a
// literal backslash.
bool glob_match(std::string_view pattern, std::string_view text);

// Key pattern permissions (`%R~` = read, `%W~` = write, `~` = both).
enum KeyPermission : uint8_t {
  kKeyRead = 1u << 0,
  kKeyWrite = 1u << 1,
  kKeyReadWrite = kKeyRead | kKeyWrite,
};

struct KeyPattern {
  std::string pattern;
  uint8_t permissions = kKeyReadWrite;  // KeyPermission bits
};

// A rule that could not be applied, for configuration errors.
struct RuleError {
  std::string rule;            // the rule as written
  size_t offset = 0;           // where it starts in the rules string
  std::string message;         // Redis' wording where Redis rejects the same rule
  std::string format() const;  // "'rule': message"
};

// The SHA-256 of `text` as 32 raw bytes.
using Digest = std::array<unsigned char, 32>;
Digest sha256(std::string_view text);
// 64 hex digits (either case) -> digest; nullopt for anything else.
std::optional<Digest> parse_sha256_hex(std::string_view hex);
std::string to_hex(const Digest& digest);  // lower case, as Redis shows password hashes

class User {
 public:
  // A new user as Redis' ACL SETUSER creates one: off, no password, no commands, keys or
  // channels (Redis 7.0's acl-pubsub-default is resetchannels).
  explicit User(std::string name);

  const std::string& name() const { return name_; }  // also ACL WHOAMI's reply
  bool enabled() const { return enabled_; }
  bool nopass() const { return nopass_; }
  bool all_keys() const { return all_keys_; }
  bool all_channels() const { return all_channels_; }
  // True after `+@all`/`allcommands` until a later `-...` rule (as Redis' ALLCOMMANDS flag).
  bool all_commands() const { return all_commands_; }
  std::span<const KeyPattern> key_patterns() const { return keys_; }
  std::span<const std::string> channel_patterns() const { return channels_; }
  size_t password_count() const { return passwords_.size(); }

  // Applies one rule (case-insensitive keywords, command and category names; patterns are
  // case-sensitive). On error the user is unchanged and the message says why.
  std::optional<std::string> apply(std::string_view rule);
  // Applies whitespace-separated rules in order, as ACL SETUSER does with its arguments (so,
  // as in Redis' ACL files, a pattern cannot contain whitespace). Stops at the first invalid
  // rule (the rules before it stay applied).
  std::optional<RuleError> apply_rules(std::string_view rules);

  // Passwords, stored as digests. Adding one clears `nopass` (as Redis' `>pw` / `#hash`).
  void add_password(std::string_view plain);
  void add_password_digest(const Digest& digest);
  // Whether `password` opens this user: false when off; true for nopass; else the SHA-256
  // of `password` is compared with every stored digest in constant time.
  bool password_matches(std::string_view password) const;

  // The command rules allow this (sub)command with these arguments (key and channel rules
  // are not looked at). AUTH and HELLO (no-auth commands) are always allowed, as in Redis.
  bool can_run(const proxy::CommandInfo& cmd, std::span<const std::string_view> args) const;
  // Key `key` may be used with these key-spec flags (proxy::KeySpecFlag bits).
  bool can_access_key(std::string_view key, uint32_t keyspec_flags) const;
  // Channel (or, with is_pattern, PSUBSCRIBE pattern) may be used.
  bool can_access_channel(std::string_view channel, bool is_pattern) const;

  // The user as one line of Redis' ACL LIST, e.g. "user app on #<sha256> ~app:* resetchannels
  // -@all +@read". The command part is equivalent to the rules applied, not always the same
  // text Redis would print.
  std::string describe() const;

 private:
  struct FirstArgs {
    uint32_t command = 0;           // command id (never a container or a subcommand)
    std::vector<std::string> args;  // lower case
  };

  std::optional<std::string> apply_command_rule(std::string_view rule);
  void set_command(uint32_t id, bool allow);
  void change_command(const proxy::CommandInfo& cmd, bool allow);  // + its subcommands
  bool command_bit(uint32_t id) const;
  void reset_first_args(uint32_t id);
  void set_all_commands(bool allow);
  void add_command_rule_text(std::string rule, std::string_view subject);

  std::string name_;
  bool enabled_ = false;
  bool nopass_ = false;
  bool all_keys_ = false;
  bool all_channels_ = false;
  bool all_commands_ = false;
  std::vector<Digest> passwords_;
  std::vector<uint64_t> commands_;  // allow bits by command id
  std::vector<FirstArgs> first_args_;
  std::vector<KeyPattern> keys_;
  std::vector<std::string> channels_;
  bool commands_base_all_ = false;          // for describe(): the last ±@all was +@all
  std::vector<std::string> command_rules_;  // for describe(): the rules since the last ±@all
};

// The outcome of one permission check.
enum class Verdict : uint8_t { kAllowed, kDeniedCommand, kDeniedKey, kDeniedChannel };

struct Result {
  Verdict verdict = Verdict::kAllowed;
  uint32_t arg = 0;          // kDeniedKey/kDeniedChannel: the offending argument index
  std::string_view command;  // the command's full name ("get", "config|get")
  bool allowed() const { return verdict == Verdict::kAllowed; }
  // Redis 7.0's reply text without the leading '-', e.g.
  // "NOPERM this user has no permissions to run the 'set' command". Empty when allowed.
  std::string error() const;
};

// Whether `user` may run this request, checked the way Redis 7.0 checks it (ACLCheckAllPerm):
//   1. the command (skipped for AUTH and HELLO);
//   2. each key argument (skipped with allkeys, and for NOT_KEY specs such as SPUBLISH's
//      channel) against the patterns whose permissions cover what the key spec implies:
//      ACCESS needs read; INSERT, DELETE or UPDATE need write; neither (EXISTS, TYPE, ...)
//      needs any pattern matching the key;
//   3. channels (skipped with allchannels) of PUBLISH, SPUBLISH, SUBSCRIBE, SSUBSCRIBE (glob
//      match) and PSUBSCRIBE (the pattern must equal an allowed channel pattern literally).
// `cmd` is the resolved entry from CommandTable::builtin() (the subcommand for containers);
// args[0] is the command name. A keyed request whose keys cannot be extracted (the command
// would fail anyway) is denied with the key error unless the user has allkeys: failing closed
// costs a different error text, never access.
Result check(const User& user, const proxy::CommandInfo& cmd,
             std::span<const std::string_view> args);

class Acl {
 public:
  // The users of a configuration, validated (rules, password consistency). Errors point at
  // the YAML line of the offending user's rules (config.users[i].rules_line) in `file`.
  static std::optional<Acl> from_config(const config::Config& config, config::ConfigError& error,
                                        std::string_view file = "<config>");
  // From users built by hand (tests); adds Redis' nopass default user if none is named
  // "default". Names must be unique (the first one wins otherwise).
  static Acl from_users(std::vector<User> users);

  // Move-only: connections hold User pointers into one Acl, which must outlive them.
  Acl(Acl&&) = default;
  Acl& operator=(Acl&&) = default;
  Acl(const Acl&) = delete;
  Acl& operator=(const Acl&) = delete;

  // Case-sensitive, as Redis' user names.
  const User* find(std::string_view name) const;
  const User& default_user() const { return users_[default_index_]; }
  // The user a new connection runs as before any AUTH: the default user when it is on and
  // nopass, else nullptr (AUTH required).
  const User* initial_user() const;
  // AUTH user password / HELLO ... AUTH user password / AUTH password (user "default").
  // nullptr when the user does not exist, is off or the password is wrong (the caller replies
  // WRONGPASS and counts the failure). The password is hashed even for unknown users, so the
  // time taken does not tell whether a user exists.
  const User* authenticate(std::string_view username, std::string_view password) const;

  std::span<const User> users() const { return users_; }

 private:
  Acl() = default;
  std::vector<User> users_;  // never resized after construction: User pointers stay valid
  size_t default_index_ = 0;
};

// Redis' AUTH failure reply, and the reply to `AUTH <password>` when the default user is
// nopass (both without the leading '-').
inline constexpr std::string_view kWrongPassError =
    "WRONGPASS invalid username-password pair or user is disabled.";
inline constexpr std::string_view kAuthWithoutPasswordError =
    "ERR AUTH <password> called without any password configured for the default user. Are you "
    "sure your configuration is correct?";

}  // namespace lockstep::acl

// Users, their rules, and the per-request permission check. The rule semantics follow Redis
// 7.0's ACL SETUSER (checked against redis-server 7.0.15, see tests/unit/acl/acl_test.cpp);
// the code is Lockstep's own.
#include "lockstep/acl/acl.h"

#include <fmt/format.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <functional>

namespace lockstep::acl {
namespace {

using proxy::CommandInfo;
using proxy::CommandTable;

// Redis' wording for rejected ACL SETUSER rules (ACLSetUserStringError).
constexpr std::string_view kUnknownCommand = "Unknown command or category name in ACL";
constexpr std::string_view kSyntaxError = "Syntax error";
constexpr std::string_view kKeyAfterAllKeys =
    "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not "
    "have any effect. Try 'resetkeys' to start with an empty list of patterns";
constexpr std::string_view kChannelAfterAllChannels =
    "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does "
    "not have any effect. Try 'resetchannels' to start with an empty list of channels";
constexpr std::string_view kFirstArgOfSubcommand =
    "Allowing first-arg of a subcommand is not supported";

// Redis' category names, in the bit order of proxy::AclCategory.
constexpr std::string_view kCategories[] = {
    "keyspace", "read",   "write",       "set",       "sortedset",  "list",        "hash",
    "string",   "bitmap", "hyperloglog", "geo",       "stream",     "pubsub",      "admin",
    "fast",     "slow",   "blocking",    "dangerous", "connection", "transaction", "scripting",
};

constexpr uint32_t kNoId = UINT32_MAX;

char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = lower(c);
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

// Dense ids for the built-in commands and subcommands (as Redis numbers them for its ACL
// bitmaps): top-level commands first, in table order, then each container's subcommands.
class CommandIndex {
 public:
  static const CommandIndex& get() {
    static const CommandIndex index(CommandTable::builtin());
    return index;
  }

  size_t size() const { return size_; }
  std::span<const CommandInfo> commands() const { return table_.all(); }

  uint32_t id_of_top(const CommandInfo* cmd) const {
    const auto all = table_.all();
    // std::less gives a total order even for pointers outside the array.
    std::less<const CommandInfo*> before;
    if (before(cmd, all.data()) || !before(cmd, all.data() + all.size())) return kNoId;
    return static_cast<uint32_t>(cmd - all.data());
  }

  uint32_t id_of_sub(uint32_t parent, const CommandInfo* sub) const {
    const auto subs = table_.all()[parent].subcommands;
    std::less<const CommandInfo*> before;
    if (before(sub, subs.data()) || !before(sub, subs.data() + subs.size())) return kNoId;
    return sub_base_[parent] + static_cast<uint32_t>(sub - subs.data());
  }

  // The id of a command entry of the built-in table ("get", or a subcommand "config|get").
  uint32_t id(const CommandInfo& cmd) const {
    const size_t bar = cmd.name.find('|');
    if (bar == std::string_view::npos) return id_of_top(&cmd);
    const CommandInfo* parent = table_.find(cmd.name.substr(0, bar));
    if (parent == nullptr) return kNoId;
    return id_of_sub(id_of_top(parent), &cmd);
  }

  // ACL rule names: "get" or "config|get", case-insensitive; nullptr when unknown. Like Redis'
  // lookup, "select|0" (a command without subcommands) is unknown.
  const CommandInfo* lookup(std::string_view name) const {
    const size_t bar = name.find('|');
    const CommandInfo* top = table_.find(name.substr(0, bar));
    if (top == nullptr || bar == std::string_view::npos) return top;
    if (top->subcommands.empty()) return nullptr;
    const std::string_view sub = name.substr(bar + 1);
    if (sub.find('|') != std::string_view::npos) return nullptr;
    return CommandTable::find_sub(*top, sub);
  }

 private:
  explicit CommandIndex(const CommandTable& table) : table_(table) {
    size_ = table.all().size();
    for (const CommandInfo& c : table.all()) {
      sub_base_.push_back(static_cast<uint32_t>(size_));
      size_ += c.subcommands.size();
    }
  }

  const CommandTable& table_;
  std::vector<uint32_t> sub_base_;  // by top-level id: the id of its first subcommand
  size_t size_ = 0;
};

int category_bit(std::string_view name) {
  for (size_t i = 0; i < std::size(kCategories); ++i) {
    if (iequals(kCategories[i], name)) return static_cast<int>(i);
  }
  return -1;
}

// The permission a key needs given its key-spec flags, as Redis' ACLSelectorCheckKey maps
// them: ACCESS reads the value; INSERT, DELETE and UPDATE write it. RO/RW/OW/RM describe the
// whole operation and are not looked at; a key with none of the four (EXISTS, TYPE, TOUCH,
// OBJECT ENCODING ...) needs no particular permission, only a matching pattern.
uint8_t needed_permissions(uint32_t keyspec_flags) {
  uint8_t needed = 0;
  if (keyspec_flags & proxy::kKeyAccess) needed |= kKeyRead;
  if (keyspec_flags & (proxy::kKeyInsert | proxy::kKeyDelete | proxy::kKeyUpdate)) {
    needed |= kKeyWrite;
  }
  return needed;
}

bool has_real_keys(const CommandInfo& cmd) {
  if (cmd.key_specs.empty()) return cmd.first_key > 0;
  return std::any_of(cmd.key_specs.begin(), cmd.key_specs.end(),
                     [](const proxy::KeySpec& s) { return !(s.flags & proxy::kKeyNotKey); });
}

}  // namespace

std::string RuleError::format() const {
  return fmt::format("'{}': {}", rule, message);
}

// ---------------------------------------------------------------------------------------------
// User

User::User(std::string name) : name_(std::move(name)) {
  commands_.assign((CommandIndex::get().size() + 63) / 64, 0);
}

bool User::command_bit(uint32_t id) const {
  return id != kNoId && (commands_[id / 64] >> (id % 64)) & 1u;
}

void User::set_command(uint32_t id, bool allow) {
  if (id == kNoId) return;
  const uint64_t bit = uint64_t{1} << (id % 64);
  if (allow) {
    commands_[id / 64] |= bit;
  } else {
    commands_[id / 64] &= ~bit;
  }
}

void User::reset_first_args(uint32_t id) {
  std::erase_if(first_args_, [id](const FirstArgs& f) { return f.command == id; });
}

// Redis' ACLChangeSelectorPerm: a command and, for a container, all its subcommands; any
// first-arg exceptions of the command are dropped (the command is now wholly in or out).
void User::change_command(const CommandInfo& cmd, bool allow) {
  const CommandIndex& index = CommandIndex::get();
  const uint32_t id = index.id(cmd);
  set_command(id, allow);
  reset_first_args(id);
  if (cmd.name.find('|') != std::string_view::npos) return;
  for (const CommandInfo& sub : cmd.subcommands) set_command(index.id_of_sub(id, &sub), allow);
}

void User::set_all_commands(bool allow) {
  std::fill(commands_.begin(), commands_.end(), allow ? ~uint64_t{0} : 0);
  first_args_.clear();
  all_commands_ = allow;
  commands_base_all_ = allow;
  command_rules_.clear();
}

// Keeps describe() short: a later rule about the same command or category replaces earlier
// ones about it (the effect of the others does not depend on it), as Redis compacts its rules.
void User::add_command_rule_text(std::string rule, std::string_view subject) {
  std::erase_if(command_rules_, [subject](const std::string& r) {
    return std::string_view(r).substr(1) == subject;
  });
  command_rules_.push_back(std::move(rule));
}

std::optional<std::string> User::apply_command_rule(std::string_view rule) {
  const CommandIndex& index = CommandIndex::get();
  const bool allow = rule[0] == '+';
  const std::string_view body = rule.substr(1);

  if (body.starts_with('@')) {
    const std::string_view category = body.substr(1);
    if (iequals(category, "all")) {
      set_all_commands(allow);
      return std::nullopt;
    }
    const int bit = category_bit(category);
    if (bit < 0) return std::string(kUnknownCommand);
    const uint32_t mask = uint32_t{1} << bit;
    // As Redis' ACLSetSelectorCommandBitsForCategory: a container in the category brings all
    // its subcommands along (CLIENT is @slow, so +@slow allows CLIENT ID, which is @fast),
    // then each subcommand in the category is set on its own.
    for (const CommandInfo& cmd : index.commands()) {
      if (cmd.acl & mask) change_command(cmd, allow);
      for (const CommandInfo& sub : cmd.subcommands) {
        if (sub.acl & mask) change_command(sub, allow);
      }
    }
    if (!allow) all_commands_ = false;
    std::string text = fmt::format("{}@{}", rule[0], lowercase(category));
    add_command_rule_text(text, text.substr(1));
    return std::nullopt;
  }

  if (!allow) {
    const CommandInfo* cmd = index.lookup(body);
    if (cmd == nullptr) return std::string(kUnknownCommand);
    change_command(*cmd, false);
    all_commands_ = false;
    add_command_rule_text(fmt::format("-{}", cmd->name), cmd->name);
    return std::nullopt;
  }

  const size_t bar = body.rfind('|');
  if (bar == std::string_view::npos) {
    const CommandInfo* cmd = index.lookup(body);
    if (cmd == nullptr) return std::string(kUnknownCommand);
    change_command(*cmd, true);
    add_command_rule_text(fmt::format("+{}", cmd->name), cmd->name);
    return std::nullopt;
  }

  // "+name|sub": a subcommand of a container, or Redis' (deprecated) first-argument exception
  // for a command without subcommands, such as +select|0.
  const CommandInfo* cmd = index.lookup(body.substr(0, bar));
  if (cmd == nullptr) return std::string(kUnknownCommand);
  if (cmd->name.find('|') != std::string_view::npos) return std::string(kFirstArgOfSubcommand);
  const std::string_view sub = body.substr(bar + 1);
  if (sub.empty()) return std::string(kSyntaxError);
  if (!cmd->subcommands.empty()) {
    const CommandInfo* subcmd = CommandTable::find_sub(*cmd, sub);
    if (subcmd == nullptr) return std::string(kUnknownCommand);
    change_command(*subcmd, true);
    add_command_rule_text(fmt::format("+{}", subcmd->name), subcmd->name);
    return std::nullopt;
  }
  const uint32_t id = index.id(*cmd);
  const std::string arg = lowercase(sub);
  auto it = std::find_if(first_args_.begin(), first_args_.end(),
                         [id](const FirstArgs& f) { return f.command == id; });
  if (it == first_args_.end()) it = first_args_.insert(first_args_.end(), FirstArgs{id, {}});
  if (std::find(it->args.begin(), it->args.end(), arg) == it->args.end()) it->args.push_back(arg);
  std::string text = fmt::format("+{}|{}", cmd->name, arg);
  add_command_rule_text(text, text.substr(1));
  return std::nullopt;
}

std::optional<std::string> User::apply(std::string_view rule) {
  if (rule.empty()) return std::nullopt;  // as Redis: an empty argument changes nothing
  const char first = rule[0];
  if (first == '+' || first == '-') return apply_command_rule(rule);

  // Exactly "~*" and "&*" are Redis' aliases of allkeys and allchannels (so they are accepted
  // after them); "%RW~*" or "&" followed by a longer pattern are ordinary patterns.
  if (rule == "~*") return apply("allkeys");
  if (rule == "&*") return apply("allchannels");

  if (first == '~' || first == '%') {
    if (all_keys_) return std::string(kKeyAfterAllKeys);
    uint8_t permissions = kKeyReadWrite;
    size_t start = 1;
    if (first == '%') {
      permissions = 0;
      // Redis also takes "%R" with no "~" (an empty pattern); here that is a typo to report.
      while (start < rule.size() && rule[start] != '~') {
        const char flag = lower(rule[start]);
        const uint8_t bit = flag == 'r' ? kKeyRead : flag == 'w' ? kKeyWrite : 0;
        if (bit == 0 || (permissions & bit)) return std::string(kSyntaxError);
        permissions |= bit;
        ++start;
      }
      if (permissions == 0 || start == rule.size()) return std::string(kSyntaxError);
      ++start;  // the '~'
    }
    const std::string_view pattern = rule.substr(start);
    // The same pattern again widens its permissions instead of adding a second entry.
    auto it = std::find_if(keys_.begin(), keys_.end(),
                           [pattern](const KeyPattern& k) { return k.pattern == pattern; });
    if (it != keys_.end()) {
      it->permissions |= permissions;
    } else {
      keys_.push_back(KeyPattern{std::string(pattern), permissions});
    }
    return std::nullopt;
  }

  if (first == '&') {
    if (all_channels_) return std::string(kChannelAfterAllChannels);
    const std::string_view pattern = rule.substr(1);
    if (std::find(channels_.begin(), channels_.end(), pattern) == channels_.end()) {
      channels_.emplace_back(pattern);
    }
    return std::nullopt;
  }

  if (first == '>' || first == '<' || first == '#' || first == '!') {
    return std::string(
        "passwords are not accepted in rules (they would show in --check-config output): "
        "use the user's password or password_sha256 key");
  }
  if (first == '(') return std::string("selectors are not supported by Lockstep");

  if (iequals(rule, "on")) {
    enabled_ = true;
  } else if (iequals(rule, "off")) {
    enabled_ = false;
  } else if (iequals(rule, "nopass")) {
    nopass_ = true;
    passwords_.clear();
  } else if (iequals(rule, "resetpass")) {
    nopass_ = false;
    passwords_.clear();
  } else if (iequals(rule, "allkeys")) {
    all_keys_ = true;
    keys_.clear();
  } else if (iequals(rule, "resetkeys")) {
    all_keys_ = false;
    keys_.clear();
  } else if (iequals(rule, "allchannels")) {
    all_channels_ = true;
    channels_.clear();
  } else if (iequals(rule, "resetchannels")) {
    all_channels_ = false;
    channels_.clear();
  } else if (iequals(rule, "allcommands")) {
    set_all_commands(true);
  } else if (iequals(rule, "nocommands")) {
    set_all_commands(false);
  } else if (iequals(rule, "clearselectors")) {
    // No selectors can exist here, so there is nothing to clear.
  } else if (iequals(rule, "reset")) {
    // Redis 7.0: resetpass resetkeys resetchannels off -@all (acl-pubsub-default is
    // resetchannels), plus clearselectors and sanitize-payload, which do not apply here.
    nopass_ = false;
    passwords_.clear();
    all_keys_ = false;
    keys_.clear();
    all_channels_ = false;
    channels_.clear();
    enabled_ = false;
    set_all_commands(false);
  } else if (iequals(rule, "sanitize-payload") || iequals(rule, "skip-sanitize-payload")) {
    return std::string(
        "not supported by Lockstep: RESTORE runs on the backends as Lockstep's own user");
  } else {
    return std::string(kSyntaxError);
  }
  return std::nullopt;
}

std::optional<RuleError> User::apply_rules(std::string_view rules) {
  size_t pos = 0;
  while (pos < rules.size()) {
    if (is_space(rules[pos])) {
      ++pos;
      continue;
    }
    size_t end = pos;
    while (end < rules.size() && !is_space(rules[end])) ++end;
    const std::string_view rule = rules.substr(pos, end - pos);
    if (std::optional<std::string> error = apply(rule)) {
      return RuleError{std::string(rule), pos, std::move(*error)};
    }
    pos = end;
  }
  return std::nullopt;
}

void User::add_password(std::string_view plain) {
  add_password_digest(sha256(plain));
}

void User::add_password_digest(const Digest& digest) {
  nopass_ = false;
  if (std::find(passwords_.begin(), passwords_.end(), digest) == passwords_.end()) {
    passwords_.push_back(digest);
  }
}

bool User::password_matches(std::string_view password) const {
  if (!enabled_) return false;
  if (nopass_) return true;
  const Digest given = sha256(password);
  // Every stored digest is compared in full, whatever the outcome, so the time taken says
  // nothing about how close the password was.
  bool match = false;
  for (const Digest& stored : passwords_) {
    match |= CRYPTO_memcmp(stored.data(), given.data(), given.size()) == 0;
  }
  return match;
}

bool User::can_run(const CommandInfo& cmd, std::span<const std::string_view> args) const {
  // AUTH and HELLO must work for any user, or nobody could switch users.
  if (cmd.flags & proxy::kFlagNoAuth) return true;
  // The common case (+@all): no lookup at all, as Redis skips its bitmap for ALLCOMMANDS.
  if (all_commands_) return true;
  const uint32_t id = CommandIndex::get().id(cmd);
  if (id == kNoId) return false;  // not a built-in entry: only +@all covers it
  if (command_bit(id)) return true;
  if (args.size() < 2) return false;
  for (const FirstArgs& f : first_args_) {
    if (f.command != id) continue;
    for (const std::string& arg : f.args) {
      if (iequals(arg, args[1])) return true;
    }
  }
  return false;
}

bool User::can_access_key(std::string_view key, uint32_t keyspec_flags) const {
  if (all_keys_) return true;
  const uint8_t needed = needed_permissions(keyspec_flags);
  for (const KeyPattern& p : keys_) {
    if ((p.permissions & needed) != needed) continue;
    if (glob_match(p.pattern, key)) return true;
  }
  return false;
}

bool User::can_access_channel(std::string_view channel, bool is_pattern) const {
  if (all_channels_) return true;
  for (const std::string& p : channels_) {
    // A PSUBSCRIBE pattern would reach channels beyond an allowed pattern if it were merely
    // matched, so Redis requires it to be one of the allowed patterns, literally.
    if (is_pattern ? p == channel : glob_match(p, channel)) return true;
  }
  return false;
}

std::string User::describe() const {
  std::string out = fmt::format("user {} {}", name_, enabled_ ? "on" : "off");
  if (nopass_) out += " nopass";
  for (const Digest& d : passwords_) out += " #" + to_hex(d);
  if (all_keys_) out += " ~*";
  for (const KeyPattern& k : keys_) {
    if (k.permissions == kKeyReadWrite) {
      out += " ~" + k.pattern;
    } else {
      out += fmt::format(" %{}~{}", k.permissions == kKeyRead ? "R" : "W", k.pattern);
    }
  }
  if (all_channels_) {
    out += " &*";
  } else {
    out += " resetchannels";
    for (const std::string& c : channels_) out += " &" + c;
  }
  out += commands_base_all_ ? " +@all" : " -@all";
  for (const std::string& r : command_rules_) out += " " + r;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Checks

std::string Result::error() const {
  switch (verdict) {
    case Verdict::kAllowed:
      return {};
    case Verdict::kDeniedCommand:
      return fmt::format("NOPERM this user has no permissions to run the '{}' command", command);
    case Verdict::kDeniedKey:
      return "NOPERM this user has no permissions to access one of the keys used as arguments";
    case Verdict::kDeniedChannel:
      return "NOPERM this user has no permissions to access one of the channels used as "
             "arguments";
  }
  return {};
}

Result check(const User& user, const CommandInfo& cmd, std::span<const std::string_view> args) {
  Result result;
  result.command = cmd.name;
  if (!user.can_run(cmd, args)) {
    result.verdict = Verdict::kDeniedCommand;
    return result;
  }

  if (!user.all_keys() && has_real_keys(cmd)) {
    proxy::KeyRefs keys;
    if (proxy::extract_keys_with_flags(cmd, args, keys) == proxy::KeyExtract::kMalformed) {
      result.verdict = Verdict::kDeniedKey;
      return result;
    }
    for (size_t i = 0; i < keys.size(); ++i) {
      // NOT_KEY positions (SPUBLISH's shard channel) are channels, checked below.
      if (keys[i].flags & proxy::kKeyNotKey) continue;
      if (!user.can_access_key(args[keys[i].pos], keys[i].flags)) {
        result.verdict = Verdict::kDeniedKey;
        result.arg = keys[i].pos;
        return result;
      }
    }
  }

  if (!user.all_channels()) {
    // The commands Redis 7.0 checks channels for; unsubscribing is always allowed.
    size_t first = 1, last = 0;
    bool is_pattern = false;
    if (cmd.name == "publish" || cmd.name == "spublish") {
      last = 1;
    } else if (cmd.name == "subscribe" || cmd.name == "ssubscribe") {
      last = args.size() - 1;
    } else if (cmd.name == "psubscribe") {
      last = args.size() - 1;
      is_pattern = true;
    }
    for (size_t i = first; i <= last && i < args.size(); ++i) {
      if (!user.can_access_channel(args[i], is_pattern)) {
        result.verdict = Verdict::kDeniedChannel;
        result.arg = static_cast<uint32_t>(i);
        return result;
      }
    }
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Acl

namespace {

// Redis' default user: everything allowed; a password makes it requirepass.
User builtin_default_user(std::string_view password) {
  User user("default");
  user.apply_rules("on ~* &* +@all");
  if (password.empty()) {
    user.apply("nopass");
  } else {
    user.add_password(password);
  }
  return user;
}

bool mentions_on_or_off(std::string_view rules) {
  size_t pos = 0;
  while (pos < rules.size()) {
    size_t end = pos;
    while (end < rules.size() && !is_space(rules[end])) ++end;
    const std::string_view rule = rules.substr(pos, end - pos);
    if (iequals(rule, "on") || iequals(rule, "off")) return true;
    pos = end + 1;
  }
  return false;
}

}  // namespace

std::optional<Acl> Acl::from_config(const config::Config& config, config::ConfigError& error,
                                    std::string_view file) {
  std::vector<User> users;
  users.reserve(config.users.size() + 1);
  for (size_t i = 0; i < config.users.size(); ++i) {
    const config::UserConfig& spec = config.users[i];
    auto fail = [&](std::string message) {
      error = config::ConfigError{
          fmt::format("users[{}].rules (user \"{}\"): {}", i, spec.name, message),
          std::string(file), spec.rules_line, spec.rules_column};
      return std::nullopt;
    };
    User user(spec.name);
    if (std::optional<RuleError> rule_error = user.apply_rules(spec.rules)) {
      return fail(rule_error->format());
    }
    // Like a new Redis user it starts off; a configuration that forgets `on` would lock the
    // user out without a word, so the state must be spelled out.
    if (!mentions_on_or_off(spec.rules)) {
      return fail("say `on` to enable the user, or `off` to keep it disabled");
    }
    const bool has_password = !spec.password.empty() || !spec.password_sha256.empty();
    if (user.nopass() && has_password) {
      return fail("the rules say nopass but the user also has a password; keep one of them");
    }
    if (!spec.password.empty()) user.add_password(spec.password);
    if (!spec.password_sha256.empty()) {
      std::optional<Digest> digest = parse_sha256_hex(spec.password_sha256);
      if (!digest) return fail("password_sha256 must be 64 hexadecimal digits");
      user.add_password_digest(*digest);
    }
    if (user.enabled() && !user.nopass() && user.password_count() == 0) {
      return fail(
          "the user is on but nobody could log in: give it a password or password_sha256, "
          "or say nopass in its rules");
    }
    for (const User& earlier : users) {
      if (earlier.name() == user.name()) return fail("duplicate user name");
    }
    users.push_back(std::move(user));
  }
  const bool has_default =
      std::any_of(users.begin(), users.end(), [](const User& u) { return u.name() == "default"; });
  if (has_default && !config.password.empty()) {
    error = config::ConfigError{
        "password: the top-level password is the default user's; with a user named "
        "\"default\" in users, give it that user's password instead",
        std::string(file), 0, 0};
    return std::nullopt;
  }
  if (!has_default) users.push_back(builtin_default_user(config.password));
  return from_users(std::move(users));
}

Acl Acl::from_users(std::vector<User> users) {
  Acl acl;
  for (User& user : users) {
    if (acl.find(user.name()) == nullptr) acl.users_.push_back(std::move(user));
  }
  if (acl.find("default") == nullptr) acl.users_.push_back(builtin_default_user(""));
  for (size_t i = 0; i < acl.users_.size(); ++i) {
    if (acl.users_[i].name() == "default") acl.default_index_ = i;
  }
  return acl;
}

const User* Acl::find(std::string_view name) const {
  for (const User& user : users_) {
    if (user.name() == name) return &user;
  }
  return nullptr;
}

const User* Acl::initial_user() const {
  const User& user = default_user();
  return user.enabled() && user.nopass() ? &user : nullptr;
}

const User* Acl::authenticate(std::string_view username, std::string_view password) const {
  const User* user = find(username);
  if (user == nullptr) {
    // Spend the hashing time anyway: the reply must not tell unknown users from bad passwords.
    const Digest ignored = sha256(password);
    (void)ignored;
    return nullptr;
  }
  return user->password_matches(password) ? user : nullptr;
}

}  // namespace lockstep::acl

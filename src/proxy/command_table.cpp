// The command table: generated Redis data (commands.inc) + Lockstep's routing policy
// (command_routes.cpp), and key extraction from Redis 7 key specs.

#include "lockstep/proxy/command_table.h"

#include <algorithm>
#include <array>
#include <cassert>

// Pure generated data in namespace lockstep::proxy::generated (see scripts/gen-command-table).
#include "commands.inc"

namespace lockstep::proxy {

namespace detail {
// Defined in command_routes.cpp: Lockstep's explicit routing decisions, one entry per command
// or "parent|sub" that does not take the default route. Only name, route and refuse_reason are
// set. (Declared here rather than in a header: only the table builder and its test use it.)
std::span<const CommandInfo> route_policy();
// Also there: Lockstep's traits of commands (name and traits set).
std::span<const CommandInfo> trait_policy();
}  // namespace detail

namespace {

constexpr char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c;
}

// Three-way comparison of a stored lower-case name with a client-supplied name in any case,
// byte-wise like the generator's sort (so binary search agrees with the table order).
int compare_lower(std::string_view stored, std::string_view query) {
  const size_t n = std::min(stored.size(), query.size());
  for (size_t i = 0; i < n; ++i) {
    const auto a = static_cast<unsigned char>(stored[i]);
    const auto b = static_cast<unsigned char>(ascii_lower(query[i]));
    if (a != b) return a < b ? -1 : 1;
  }
  if (stored.size() == query.size()) return 0;
  return stored.size() < query.size() ? -1 : 1;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

// Binary search in a name-sorted span; `skip` leading bytes of each stored name are ignored
// (the "parent|" prefix of subcommands).
const CommandInfo* search(std::span<const CommandInfo> sorted, size_t skip, std::string_view name) {
  size_t lo = 0, hi = sorted.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    std::string_view stored = sorted[mid].name;
    stored.remove_prefix(std::min(skip, stored.size()));
    const int c = compare_lower(stored, name);
    if (c == 0) return &sorted[mid];
    if (c < 0) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return nullptr;
}

// Mutable copy of the generated data, so the policy can fill in route/refuse_reason once at
// startup while commands.inc stays pure data. Key specs are immutable and stay shared.
// Lockstep's own commands (LOCK.*), served locally; they join the Redis table so routing,
// arity checks, ACL categories and statistics treat them like any other command.
constexpr CommandInfo extension(std::string_view name, int arity, uint32_t flags, uint32_t acl) {
  CommandInfo c;
  c.name = name;
  c.arity = arity;
  c.flags = flags;
  c.acl = acl;
  c.route = Route::kLocal;
  return c;
}
constexpr std::array<CommandInfo, 6> kExtensions = {
    extension("lock.acquire", -3, kFlagWrite, kAclWrite | kAclSlow),
    extension("lock.extend", 4, kFlagWrite, kAclWrite | kAclSlow),
    extension("lock.guard", -4, kFlagWrite, kAclWrite | kAclSlow),
    extension("lock.release", 3, kFlagWrite, kAclWrite | kAclSlow),
    extension("lock.status", 2, kFlagReadonly, kAclRead | kAclSlow),
    // Replicated configuration (src/server/consensus/cluster_service.h). NOAUTH: its own access
    // rule (AUTH admin <admin_password>, or loopback when none is set) is checked by the handler.
    extension("lockstep", -2, kFlagNoAuth | kFlagAdmin, kAclAdmin | kAclDangerous | kAclSlow),
};

struct BuiltinStorage {
  std::array<CommandInfo, generated::kCommandCount + kExtensions.size()> commands;
  std::array<CommandInfo, generated::kSubcommandCount> subcommands;
};

// What a command without an explicit decision gets. Keyless commands must all be decided in
// command_routes.cpp (a unit test enforces it); this only covers a regenerated table that
// gained a command before the policy caught up: refusing is the safe answer.
constexpr std::string_view kUndecidedReason =
    "this command is not supported by Lockstep yet (no routing decision)";

void apply_default_route(CommandInfo& c) {
  if (!c.subcommands.empty()) {
    c.route = Route::kContainer;
  } else if (c.first_key > 0 || !c.key_specs.empty()) {
    c.route = Route::kKeyed;
  } else {
    c.route = Route::kRefused;
    c.refuse_reason = kUndecidedReason;
  }
}

CommandInfo* find_mutable(BuiltinStorage& s, std::string_view name) {
  const size_t bar = name.find('|');
  const CommandInfo* top = search(s.commands, 0, name.substr(0, bar));
  if (top == nullptr) return nullptr;
  const CommandInfo* hit =
      bar == std::string_view::npos ? top : CommandTable::find_sub(*top, name.substr(bar + 1));
  // The pointers come from `s`, which this function may modify.
  return const_cast<CommandInfo*>(hit);
}

// Fills `s` in place: the subcommand spans point into `s` itself, so it must not be copied.
void build_builtin(BuiltinStorage& s) {
  std::copy(std::begin(generated::kSubcommands), std::end(generated::kSubcommands),
            s.subcommands.begin());
  auto last = std::copy(std::begin(generated::kCommands), std::end(generated::kCommands),
                        s.commands.begin());
  std::copy(kExtensions.begin(), kExtensions.end(), last);
  for (CommandInfo& c : s.commands) {
    if (!c.subcommands.empty()) {
      // Re-point into the mutable copy: same offset, same length.
      const auto offset = c.subcommands.data() - generated::kSubcommands;
      c.subcommands =
          std::span<const CommandInfo>(s.subcommands.data() + offset, c.subcommands.size());
    }
    apply_default_route(c);
  }
  for (CommandInfo& c : s.subcommands) apply_default_route(c);

  // Lookups binary-search by name; the extensions join in order. (Subcommand spans point into
  // s.subcommands, which this does not move.)
  std::sort(s.commands.begin(), s.commands.end(),
            [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; });

  // Dense ids (commands, then subcommands) index per-command statistics without a hash lookup.
  uint16_t id = 0;
  for (CommandInfo& c : s.commands) c.id = id++;
  for (CommandInfo& c : s.subcommands) c.id = id++;

  for (const CommandInfo& p : detail::route_policy()) {
    CommandInfo* c = find_mutable(s, p.name);
    // A policy entry for a command this Redis does not have is a stale decision; the unit
    // test reports it by name, the running proxy just ignores it.
    if (c == nullptr) continue;
    c->route = p.route;
    c->refuse_reason = p.refuse_reason;
  }
  for (const CommandInfo& p : detail::trait_policy()) {
    CommandInfo* c = find_mutable(s, p.name);
    if (c != nullptr) c->traits |= p.traits;
  }
}

// Redis's string2ll, restricted to what a key count may be: a canonical non-negative decimal
// ("0" or no leading zero, no sign, no spaces). Returns -1 for anything else, including
// negative numbers; values beyond `cap` are clamped to cap + 1 (they are out of range anyway).
int64_t parse_count(std::string_view s, int64_t cap) {
  if (s.empty() || (s.size() > 1 && s[0] == '0')) return -1;
  int64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return -1;
    if (v <= cap) v = v * 10 + (ch - '0');
  }
  return std::min(v, cap + 1);
}

// SORT's STORE destination: Redis marks it 'unknown' in the key spec (STORE may appear
// anywhere among the options) and finds it with a getkeys proc. We parse the options the way
// SORT does: LIMIT takes 2 arguments, BY/GET 1, STORE 1 (its destination; the last STORE wins).
template <class Push>
void sort_store_key(std::span<const std::string_view> args, Push& push) {
  size_t dest = 0;
  for (size_t i = 2; i < args.size(); ++i) {
    if (iequals(args[i], "limit")) {
      i += 2;
    } else if (iequals(args[i], "by") || iequals(args[i], "get")) {
      i += 1;
    } else if (iequals(args[i], "store") && i + 1 < args.size()) {
      dest = ++i;
    }
  }
  // Flags as Redis' sortGetKeys reports the destination.
  if (dest != 0) push(static_cast<uint32_t>(dest), kKeyOW | kKeyUpdate);
}

// MIGRATE host port key|"" db timeout [COPY] [REPLACE] [AUTH pw | AUTH2 user pw] [KEYS k...].
// Its KEYS spec is flagged incomplete (it searches backwards from the end, so a key named
// "keys" fools it) and its index-3 spec reports the empty placeholder of the KEYS form as a
// key. Redis resolves both with a getkeys proc; we parse forwards like it does, skipping the
// AUTH/AUTH2 arguments so a password cannot pass for the KEYS keyword.
// Every key is flagged RW|ACCESS|DELETE, as Redis' migrateGetKeys and MIGRATE's key spec say.
template <class Push>
KeyExtract migrate_keys(std::span<const std::string_view> args, Push& push) {
  constexpr uint32_t kFlags = kKeyRW | kKeyAccess | kKeyDelete;
  for (size_t i = 6; i < args.size(); ++i) {
    if (iequals(args[i], "keys")) {
      // The KEYS form needs the key argument empty and at least one key (else Redis errors).
      if (!args[3].empty() || i + 1 >= args.size()) return KeyExtract::kMalformed;
      for (size_t k = i + 1; k < args.size(); ++k) push(static_cast<uint32_t>(k), kFlags);
      return KeyExtract::kOk;
    }
    if (iequals(args[i], "auth")) {
      i += 1;
    } else if (iequals(args[i], "auth2")) {
      i += 2;
    }
  }
  push(3, kFlags);
  return KeyExtract::kOk;
}

// Where a keyword spec's keys begin, or 0 if the keyword is absent. Like Redis: a positive
// startfrom searches forwards up to the second-to-last argument (a keyword in last place has
// no key after it), a negative one backwards from argc + startfrom down to argument 1.
int keyword_begin(const KeySpec& spec, int argc, std::span<const std::string_view> args) {
  if (spec.keyword_startfrom > 0) {
    for (int i = spec.keyword_startfrom; i < argc - 1; ++i) {
      if (iequals(args[i], spec.keyword)) return i + 1;
    }
  } else {
    for (int i = argc + spec.keyword_startfrom; i >= 1; --i) {
      if (i >= argc) break;
      if (iequals(args[i], spec.keyword)) return i + 1;
    }
  }
  return 0;
}

}  // namespace

void KeyPositions::push(uint32_t pos) {
  if (size_ < kInline) {
    inline_[size_] = pos;
  } else {
    heap_.push_back(pos);
  }
  ++size_;
}

CommandTable::CommandTable(std::span<const CommandInfo> commands) : commands_(commands) {
  assert(
      std::is_sorted(commands.begin(), commands.end(),
                     [](const CommandInfo& a, const CommandInfo& b) { return a.name < b.name; }));
}

const CommandTable& CommandTable::builtin() {
  // Built on first use (thread-safe static init), in place since it refers to itself.
  static BuiltinStorage storage;
  static const CommandTable table = [] {
    build_builtin(storage);
    return CommandTable(storage.commands);
  }();
  return table;
}

size_t CommandTable::id_count() const {
  size_t n = commands_.size();
  for (const CommandInfo& c : commands_) n += c.subcommands.size();
  return n;
}

const CommandInfo* CommandTable::find(std::string_view name) const {
  return search(commands_, 0, name);
}

const CommandInfo* CommandTable::find_sub(const CommandInfo& parent, std::string_view sub) {
  // Subcommands are named "parent|sub" and sorted by that full name, which orders them by
  // `sub` too since they share the prefix.
  return search(parent.subcommands, parent.name.size() + 1, sub);
}

namespace {

// Interprets the key specs like Redis's getKeysUsingKeySpecs (keys in spec order, absolute
// indices, NOT_KEY specs included). Where Redis's COMMAND GETKEYS falls back to a command's
// own getkeys proc, we follow what the command actually accepts instead, so that anything the
// command would reject is kMalformed (the proxy then lets a backend answer the error):
//   - numkeys must be a canonical non-negative integer that fits the arguments; 0 only for
//     commands whose keys are optional (EVAL/FCALL);
//   - MSET-style key/value groups must be complete; XREAD's key/ID list must be balanced;
//   - a keyed command that yields no key at all is malformed unless its keys are optional;
//   - SORT's STORE destination (an 'unknown' spec) and MIGRATE (an 'incomplete' spec) are
//     parsed like the commands parse them.
// `push(pos, flags)` receives each key in order and counts them in `push.count`.
template <class Push>
KeyExtract extract_impl(const CommandInfo& cmd, std::span<const std::string_view> args,
                        Push& push) {
  const int argc = static_cast<int>(args.size());

  if ((cmd.flags & kFlagMovableKeys) && cmd.name == "migrate") {
    if (argc < 6) return KeyExtract::kMalformed;  // short of MIGRATE's arity
    return migrate_keys(args, push);
  }

  if (cmd.key_specs.empty()) {
    // Legacy first/last/step (no Redis 7.0 built-in command with keys lacks specs, but a
    // regenerated table might have one). last_key < 0 counts from the end.
    if (cmd.first_key <= 0) return KeyExtract::kOk;
    const int first = cmd.first_key;
    const int last = cmd.last_key < 0 ? argc + cmd.last_key : cmd.last_key;
    const int step = std::max(cmd.key_step, 1);
    if (first >= argc || last >= argc || last < first) return KeyExtract::kMalformed;
    // Without specs nothing says how the keys are used: assume the most (read and write).
    for (int i = first; i <= last; i += step) {
      push(static_cast<uint32_t>(i), kKeyRW | kKeyAccess | kKeyUpdate);
    }
    return KeyExtract::kOk;
  }

  bool unknown_spec = false;
  for (const KeySpec& spec : cmd.key_specs) {
    // NOT_KEY specs (SPUBLISH's shard channel) are kept on purpose: the proxy hashes them
    // like keys to pick the backend.
    int first = 0;
    switch (spec.begin) {
      case KeySpec::Begin::kIndex:
        first = spec.begin_index;
        break;
      case KeySpec::Begin::kKeyword:
        first = keyword_begin(spec, argc, args);
        if (first == 0) continue;  // optional keyword absent: this spec has no keys
        break;
      case KeySpec::Begin::kUnknown:
        unknown_spec = true;
        continue;
    }

    int last = 0;
    int step = 1;
    switch (spec.find) {
      case KeySpec::Find::kRange:
        step = std::max(spec.range_keystep, 1);
        if (spec.range_lastkey >= 0) {
          last = first + spec.range_lastkey;
        } else if (spec.range_limit == 0) {
          last = argc + spec.range_lastkey;
          // Keys that come in groups (MSET's key/value pairs) must end on a whole group,
          // else Redis rejects the command; splitting it per backend would be wrong.
          if (step > 1 && last >= first && (last - first + 1) % step != 0) {
            return KeyExtract::kMalformed;
          }
        } else {
          // lastkey -1 with limit N: the keys are the first 1/N of what follows (XREAD's
          // STREAMS k1 k2 id1 id2). Redis's XREAD rejects an unbalanced list, so do we.
          if (first >= argc || (argc - first) % spec.range_limit != 0) {
            return KeyExtract::kMalformed;
          }
          last = first + (argc - first) / spec.range_limit + spec.range_lastkey;
        }
        break;
      case KeySpec::Find::kKeynum: {
        step = std::max(spec.keynum_keystep, 1);
        const int count_pos = first + spec.keynum_idx;
        if (count_pos < 1 || count_pos >= argc) return KeyExtract::kMalformed;
        const int64_t numkeys = parse_count(args[count_pos], argc);
        if (numkeys < 0) return KeyExtract::kMalformed;  // not a number, or negative
        if (numkeys == 0) {
          // Redis accepts zero keys only where keys are optional (EVAL, FCALL); elsewhere
          // (ZUNIONSTORE d 0, LMPOP 0 ...) the command fails and so does COMMAND GETKEYS.
          if (cmd.flags & kFlagNoMandatoryKeys) continue;
          return KeyExtract::kMalformed;
        }
        first = count_pos + spec.keynum_firstkey;
        last = first + static_cast<int>(numkeys - 1) * step;
        break;
      }
      case KeySpec::Find::kUnknown:
        unknown_spec = true;
        continue;
    }

    // Out of bounds: the arguments do not hold the keys the spec promises.
    if (first < 1 || first >= argc || last >= argc || last < first) {
      return KeyExtract::kMalformed;
    }
    for (int i = first; i <= last; i += step) push(static_cast<uint32_t>(i), spec.flags);
  }

  // SORT/SORT_RO: BY/GET patterns name keys derived from the sorted values, which no proxy
  // can route: they are not reported (they resolve on the sorted key's own backend). Only
  // SORT's STORE destination is a real key argument. Other 'unknown' specs (none in Redis
  // 7.0) are skipped: the specs that do resolve still route the command, and if none does,
  // the zero-key rule below hands it to Redis.
  if (unknown_spec && cmd.name == "sort") sort_store_key(args, push);

  // A command with key specs that found no key at all (XREAD ... STREAMS with nothing after
  // it) is one Redis rejects too, unless its keys are optional (EVAL/FCALL with numkeys 0,
  // which then run on any backend). Same rule as COMMAND GETKEYS.
  if (push.count == 0 && !(cmd.flags & kFlagNoMandatoryKeys)) return KeyExtract::kMalformed;
  return KeyExtract::kOk;
}

// BITFIELD's flags as Redis' bitfieldGetKeys derives them: read-only while every operation is
// a complete GET or OVERFLOW; SET/INCRBY, or anything it does not understand, means write.
uint32_t bitfield_flags(std::span<const std::string_view> args) {
  for (size_t i = 2; i < args.size(); ++i) {
    const size_t remaining = args.size() - i - 1;
    if (iequals(args[i], "get") && remaining >= 2) {
      i += 2;
    } else if (iequals(args[i], "overflow") && remaining >= 1) {
      i += 1;
    } else {
      return kKeyRW | kKeyAccess | kKeyUpdate;
    }
  }
  return kKeyRO | kKeyAccess;
}

// SET's flags as Redis' setGetKeys derives them: with the GET option (anywhere after the value)
// the old value is read, otherwise the key is only overwritten.
uint32_t set_flags(std::span<const std::string_view> args) {
  for (size_t i = 3; i < args.size(); ++i) {
    if (iequals(args[i], "get")) return kKeyRW | kKeyAccess | kKeyUpdate;
  }
  return kKeyOW | kKeyUpdate;
}

// Collects positions only (the router's hot path).
struct PushPosition {
  KeyPositions& out;
  size_t count = 0;
  void operator()(uint32_t pos, uint32_t) {
    out.push(pos);
    ++count;
  }
};

struct PushRef {
  KeyRefs& out;
  size_t count = 0;
  void operator()(uint32_t pos, uint32_t flags) {
    out.push(KeyRef{pos, flags});
    ++count;
  }
};

}  // namespace

KeyExtract extract_keys(const CommandInfo& cmd, std::span<const std::string_view> args,
                        KeyPositions& out) {
  out.clear();
  PushPosition push{out};
  return extract_impl(cmd, args, push);
}

void KeyRefs::push(KeyRef ref) {
  if (size_ < kInline) {
    inline_[size_] = ref;
  } else {
    heap_.push_back(ref);
  }
  ++size_;
}

KeyExtract extract_keys_with_flags(const CommandInfo& cmd, std::span<const std::string_view> args,
                                   KeyRefs& out) {
  out.clear();
  PushRef push{out};
  const KeyExtract result = extract_impl(cmd, args, push);
  for (size_t i = 0; i < out.size(); ++i) {
    if (!(out[i].flags & kKeyVariableFlags)) continue;
    // Redis resolves VARIABLE_FLAGS specs with the command's getkeys proc. A command this code
    // does not know keeps its spec flags, which describe the most the command may do.
    uint32_t flags = out[i].flags & ~kKeyVariableFlags;
    if (cmd.name == "set") {
      flags = set_flags(args);
    } else if (cmd.name == "bitfield") {
      flags = bitfield_flags(args);
    }
    out[i].flags = flags;
  }
  return result;
}

}  // namespace lockstep::proxy

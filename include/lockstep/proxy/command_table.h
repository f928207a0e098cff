// The command table: every Redis 7.0 command with its arity, flags, ACL categories and key
// specs, plus Lockstep's own decision of how to serve it (the Route).
//
// The Redis part is generated from a real redis-server 7.0 (`COMMAND` reply) by
// scripts/gen-command-table into src/proxy/commands.inc; the Route column is Lockstep policy,
// kept in src/proxy/command_routes.cpp so that regenerating the data never loses a decision.
//
// Lookups are case-insensitive and allocate nothing: they run once per request.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace lockstep::proxy {

// Redis command flags (COMMAND reply, element 3).
enum CmdFlag : uint32_t {
  kFlagWrite = 1u << 0,
  kFlagReadonly = 1u << 1,
  kFlagDenyOom = 1u << 2,
  kFlagAdmin = 1u << 3,
  kFlagPubsub = 1u << 4,
  kFlagNoscript = 1u << 5,
  kFlagBlocking = 1u << 6,
  kFlagLoading = 1u << 7,
  kFlagStale = 1u << 8,
  kFlagSkipMonitor = 1u << 9,
  kFlagSkipSlowlog = 1u << 10,
  kFlagAsking = 1u << 11,
  kFlagFast = 1u << 12,
  kFlagNoAuth = 1u << 13,
  kFlagMayReplicate = 1u << 14,
  kFlagNoMandatoryKeys = 1u << 15,
  kFlagNoAsyncLoading = 1u << 16,
  kFlagNoMulti = 1u << 17,
  kFlagMovableKeys = 1u << 18,
  kFlagAllowBusy = 1u << 19,
};

// Redis ACL categories (COMMAND reply, element 7), used by per-user access control.
enum AclCategory : uint32_t {
  kAclKeyspace = 1u << 0,
  kAclRead = 1u << 1,
  kAclWrite = 1u << 2,
  kAclSet = 1u << 3,
  kAclSortedSet = 1u << 4,
  kAclList = 1u << 5,
  kAclHash = 1u << 6,
  kAclString = 1u << 7,
  kAclBitmap = 1u << 8,
  kAclHyperLogLog = 1u << 9,
  kAclGeo = 1u << 10,
  kAclStream = 1u << 11,
  kAclPubsub = 1u << 12,
  kAclAdmin = 1u << 13,
  kAclFast = 1u << 14,
  kAclSlow = 1u << 15,
  kAclBlocking = 1u << 16,
  kAclDangerous = 1u << 17,
  kAclConnection = 1u << 18,
  kAclTransaction = 1u << 19,
  kAclScripting = 1u << 20,
};

// Key-spec flags (subset that matters to a proxy: read vs write access).
enum KeySpecFlag : uint32_t {
  kKeyRO = 1u << 0,
  kKeyRW = 1u << 1,
  kKeyOW = 1u << 2,
  kKeyRM = 1u << 3,
  kKeyAccess = 1u << 4,
  kKeyUpdate = 1u << 5,
  kKeyInsert = 1u << 6,
  kKeyDelete = 1u << 7,
  kKeyNotKey = 1u << 8,  // e.g. the channel of SPUBLISH: hashed like a key, not a key
  kKeyIncomplete = 1u << 9,
  kKeyVariableFlags = 1u << 10,
};

// Redis 7 key specification: where the keys start (begin_search), and how many there are
// (find_keys). Indices count from 0 = the command name (as Redis does).
struct KeySpec {
  enum class Begin : uint8_t { kIndex, kKeyword, kUnknown };
  enum class Find : uint8_t { kRange, kKeynum, kUnknown };
  uint32_t flags = 0;
  Begin begin = Begin::kUnknown;
  int begin_index = 0;        // kIndex: absolute position
  std::string_view keyword;   // kKeyword: e.g. "STREAMS" (case-insensitive match)
  int keyword_startfrom = 0;  // kKeyword: where to start searching; negative = from the end
  Find find = Find::kUnknown;
  int range_lastkey = 0;  // kRange: relative to the first key; -1 = last arg, -2 = ...
  int range_keystep = 1;
  int range_limit = 0;      // kRange with lastkey -1: 0 = all, N = 1/N of the remaining
  int keynum_idx = 0;       // kKeynum: relative position of the count
  int keynum_firstkey = 1;  // kKeynum: relative position of the first key (from the count)
  int keynum_keystep = 1;
};

// How Lockstep serves a command. Chosen per command (and per subcommand for containers).
enum class Route : uint8_t {
  kKeyed,        // every key must map to one backend (same node); else -CROSSSLOT
  kSplitMget,    // MGET: split per backend, replies merged in key order
  kSplitMset,    // MSET: split per backend, +OK when all parts are OK
  kSplitMsetnx,  // MSETNX: one backend forwarded; several: one two-phase transaction
  kSplitSum,     // DEL / UNLINK / EXISTS / TOUCH: split per backend, integer replies summed
  kAnyBackend,   // keyless, the answer does not depend on which backend (e.g. COMMAND DOCS)
  kFanoutSum,    // DBSIZE: sent to all backends, integers summed
  kFanoutAllOk,  // FLUSHDB / FLUSHALL / SCRIPT FLUSH / FUNCTION FLUSH ...: all must succeed
  kFanoutSame,   // SCRIPT LOAD / FUNCTION LOAD / FUNCTION DELETE: all must succeed with one answer
  kFanoutAnd,    // SCRIPT EXISTS: array of 0/1, element-wise AND over backends
  kFanoutUnion,  // KEYS: arrays concatenated
  kFanoutUnionDistinct,  // PUBSUB CHANNELS: arrays merged without duplicates
  kFanoutSumPairs,       // PUBSUB NUMSUB: [name, count, ...] arrays, counts summed by name
  kRandomKey,            // RANDOMKEY: a random backend first, the others if it is empty
  kLocal,      // answered by Lockstep itself (PING, HELLO, AUTH, CLIENT, INFO, SELECT, ...)
  kContainer,  // has subcommands: look up the subcommand's own entry
  kRefused,    // refused with refuse_reason
};

// Lockstep's own traits of a command (command_routes.cpp): what the connection layer must know
// about it beyond its route, so that it tests a bit instead of comparing names.
enum CmdTrait : uint16_t {
  // Blocks the connection (WAIT): runs alone, after every earlier reply, nothing after it until
  // it completes. (Blocking data commands are found by the router: Plan::blocking.)
  kTraitExclusive = 1u << 0,
  // HELLO, RESET: may switch the protocol, which moves the client to other backend connections,
  // so every earlier reply must be in first.
  kTraitProtocolSwitch = 1u << 1,
  kTraitSubscribedOk = 1u << 2,  // allowed in RESP2 subscribed mode (Redis' list)
  // EVAL/EVALSHA/FCALL and their _RO forms: MONITOR shows them, as Redis does, although
  // COMMAND flags them skip_monitor.
  kTraitScript = 1u << 3,
  // May write although COMMAND does not flag it a write (EVAL, EVALSHA, FCALL): guarded by
  // transactions.isolation=writes and held by CLIENT PAUSE WRITE.
  kTraitUndeclaredWrite = 1u << 4,
  // Replicated although COMMAND does not flag it (Redis' internal may-replicate: PUBLISH,
  // SPUBLISH, PFCOUNT): held by CLIENT PAUSE WRITE.
  kTraitReplicates = 1u << 5,
  kTraitTxnControl = 1u << 6,    // MULTI, EXEC, DISCARD, WATCH, UNWATCH: never queued by MULTI
  kTraitRunsInMulti = 1u << 7,   // RESET, QUIT: act at once inside MULTI, as in Redis
  kTraitReplyControl = 1u << 8,  // CLIENT REPLY: its own reply mode decides whether it answers
};

struct CommandInfo {
  std::string_view name;  // lower case; a subcommand is "parent|sub" as Redis names it
  int arity = 0;          // Redis arity: N exact, -N at least N (including the name)
  uint32_t flags = 0;     // CmdFlag bits
  uint32_t acl = 0;       // AclCategory bits
  int first_key = 0, last_key = 0, key_step = 0;  // legacy key positions
  std::span<const KeySpec> key_specs;
  std::span<const CommandInfo> subcommands;
  Route route = Route::kRefused;
  std::string_view refuse_reason;  // for kRefused: the why, shown to the client
  uint16_t id = 0;                 // dense index over commands and subcommands (statistics)
  uint16_t traits = 0;             // CmdTrait bits
};

// Small, allocation-free list of key argument positions.
class KeyPositions {
 public:
  static constexpr size_t kInline = 16;
  void clear() {
    size_ = 0;
    heap_.clear();
  }
  void push(uint32_t pos);
  size_t size() const { return size_; }
  uint32_t operator[](size_t i) const { return i < kInline ? inline_[i] : heap_[i - kInline]; }

 private:
  uint32_t inline_[kInline] = {};
  std::basic_string<uint32_t> heap_;  // only for commands with more than kInline keys
  size_t size_ = 0;
};

enum class KeyExtract : uint8_t {
  kOk,         // positions filled (may be empty for commands with optional keys)
  kMalformed,  // the arguments do not fit the key spec (bad numkeys ...): let Redis answer
};

class CommandTable {
 public:
  // The built-in Redis 7.0 table with Lockstep's routes.
  static const CommandTable& builtin();

  // Case-insensitive; nullptr when unknown. No allocation.
  const CommandInfo* find(std::string_view name) const;
  // For containers (CLIENT, CONFIG, SCRIPT, OBJECT, ...): the subcommand's entry, or nullptr.
  static const CommandInfo* find_sub(const CommandInfo& parent, std::string_view sub);

  std::span<const CommandInfo> all() const { return commands_; }
  // Number of distinct ids (commands plus subcommands).
  size_t id_count() const;

  explicit CommandTable(std::span<const CommandInfo> commands);

 private:
  std::span<const CommandInfo> commands_;  // sorted by name for binary search
};

// Arity check as Redis does it (args includes the command name).
inline bool arity_ok(const CommandInfo& c, size_t nargs) {
  return c.arity >= 0 ? nargs == static_cast<size_t>(c.arity)
                      : nargs >= static_cast<size_t>(-c.arity);
}

// Finds the key positions of one request using its key specs (falling back to the legacy
// first/last/step). args[0] is the command name (or, for subcommands, args[1] the subcommand).
KeyExtract extract_keys(const CommandInfo& cmd, std::span<const std::string_view> args,
                        KeyPositions& out);

// One key argument with the key-spec flags Redis 7.0 reports for it (COMMAND GETKEYSANDFLAGS):
// what per-user access control needs to tell reads from writes.
struct KeyRef {
  uint32_t pos = 0;    // argument index (0 = the command name)
  uint32_t flags = 0;  // KeySpecFlag bits
};

// Like KeyPositions: allocation-free for up to kInline keys.
class KeyRefs {
 public:
  static constexpr size_t kInline = 16;
  void clear() {
    size_ = 0;
    heap_.clear();
  }
  void push(KeyRef ref);
  size_t size() const { return size_; }
  const KeyRef& operator[](size_t i) const { return i < kInline ? inline_[i] : heap_[i - kInline]; }
  KeyRef& operator[](size_t i) { return i < kInline ? inline_[i] : heap_[i - kInline]; }

 private:
  KeyRef inline_[kInline] = {};
  std::vector<KeyRef> heap_;  // only for commands with more than kInline keys
  size_t size_ = 0;
};

// The same positions as extract_keys (same order, same kMalformed cases), each with the flags
// Redis' getKeysFromCommandWithSpecs gives it, which is what Redis' ACL checks use:
//   - normally the flags of the key spec that found the key (NOT_KEY specs included, flagged
//     kKeyNotKey, so callers can skip them as Redis' ACL does);
//   - for specs flagged VARIABLE_FLAGS, the flags Redis' getkeys procs compute from the
//     arguments: SET is OW|UPDATE, or RW|ACCESS|UPDATE with the GET option; BITFIELD is
//     RO|ACCESS when it only has GET (and OVERFLOW) operations, else RW|ACCESS|UPDATE;
//   - SORT's STORE destination is OW|UPDATE; MIGRATE's keys are RW|ACCESS|DELETE.
KeyExtract extract_keys_with_flags(const CommandInfo& cmd, std::span<const std::string_view> args,
                                   KeyRefs& out);

}  // namespace lockstep::proxy

#include "lockstep/proxy/command_support.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <vector>

namespace lockstep::proxy {
namespace {

// Restrictions of individual commands that the route alone does not explain.
struct Note {
  std::string_view name;
  std::string_view text;
};
constexpr Note kNotes[] = {
    {"publish",
     "the count is of Lockstep subscriber connections (one per worker with subscribers), "
     "not of clients; messages on different channels may be reordered"},
    {"pubsub|numsub", "counts Lockstep subscriber connections, not clients"},
    {"pubsub|shardnumsub", "counts Lockstep subscriber connections, not clients"},
    {"pubsub|numpat", "counts patterns per Lockstep subscriber connection"},
    {"hello", "RESP3 is served by Redis itself on RESP3 backend connections"},
    {"select", "only database 0"},
    {"info", "Lockstep's own sections; keyspace summed over backends"},
    {"scan", "one backend after another; the cursor also names the backend"},
    {"randomkey", "a random backend's random key (not uniform over all keys)"},
    {"wait", "asks every backend; returns the smallest count"},
    {"slowlog|get", "Lockstep's slow log: command name and argument count, not the arguments"},
    {"client|list", "Lockstep's clients"},
    {"client|kill", "Lockstep's clients"},
    {"client|pause", "pauses Lockstep's clients (all workers)"},
    {"command", "answered by a backend (the Redis 7.0 command set)"},
    {"command|count", "answered by a backend (the Redis 7.0 command set)"},
    {"command|info", "answered by a backend (the Redis 7.0 command set)"},
    {"command|docs", "answered by a backend (the Redis 7.0 command set)"},
    {"command|list", "answered by a backend (the Redis 7.0 command set)"},
    {"config|get", "answered by one backend: backends should share their configuration"},
};

bool may_have_several_keys(const CommandInfo& c) {
  if (c.flags & kFlagMovableKeys) return true;
  if (c.key_specs.size() > 1) return true;
  for (const auto& ks : c.key_specs)
    if (ks.find == KeySpec::Find::kKeynum ||
        (ks.find == KeySpec::Find::kRange && ks.range_lastkey != 0))
      return true;
  return false;
}

}  // namespace

Support support_of(const CommandInfo& cmd, std::string& note) {
  note.clear();
  for (const Note& n : kNotes)
    if (n.name == cmd.name) note = n.text;
  switch (cmd.route) {
    case Route::kRefused:
      note = cmd.refuse_reason;
      return Support::kRefused;
    case Route::kKeyed:
      if ((cmd.flags & kFlagBlocking) && note.empty())
        note = "served on a backend connection of its own while blocked";
      if (note.empty() && may_have_several_keys(cmd))
        note = "all keys on one backend (use {hash tags}), else CROSSSLOT";
      break;
    case Route::kSplitMget:
    case Route::kSplitMset:
    case Route::kSplitSum:
      if (note.empty()) note = "split per backend and merged; not atomic across backends";
      break;
    case Route::kSplitMsetnx:
      if (note.empty())
        note = "atomic across backends: one two-phase transaction sets every key or none";
      break;
    case Route::kFanoutSum:
    case Route::kFanoutAllOk:
    case Route::kFanoutSame:
    case Route::kFanoutAnd:
    case Route::kFanoutUnion:
    case Route::kFanoutUnionDistinct:
    case Route::kFanoutSumPairs:
    case Route::kRandomKey:
      if (note.empty()) note = "sent to every backend, replies merged";
      break;
    case Route::kAnyBackend:
    case Route::kLocal:
    case Route::kContainer:
      break;
  }
  return note.empty() ? Support::kSupported : Support::kRestricted;
}

std::string_view command_group(const CommandInfo& c) {
  struct G {
    uint32_t bit;
    std::string_view name;
  };
  static constexpr G kGroups[] = {
      {kAclPubsub, "pubsub"},
      {kAclTransaction, "transactions"},
      {kAclScripting, "scripting"},
      {kAclStream, "stream"},
      {kAclGeo, "geo"},
      {kAclHyperLogLog, "hyperloglog"},
      {kAclBitmap, "bitmap"},
      {kAclSortedSet, "sorted-set"},
      {kAclSet, "set"},
      {kAclHash, "hash"},
      {kAclList, "list"},
      {kAclString, "string"},
      {kAclConnection, "connection"},
      {kAclKeyspace, "generic"},
  };
  for (const G& g : kGroups)
    if (c.acl & g.bit) return g.name;
  return "server";
}

std::string command_support_markdown(const CommandTable& table) {
  struct Row {
    std::string name;
    Support support;
    std::string note;
  };
  std::map<std::string_view, std::vector<Row>> groups;
  auto add = [&](const CommandInfo& c) {
    Row r;
    r.name = c.name;
    for (char& ch : r.name) ch = ch == '|' ? ' ' : static_cast<char>(std::toupper(ch));
    r.support = support_of(c, r.note);
    groups[command_group(c)].push_back(std::move(r));
  };
  for (const CommandInfo& c : table.all()) {
    if (c.route == Route::kContainer || c.subcommands.empty() || c.route == Route::kLocal)
      if (c.subcommands.empty()) add(c);
    for (const CommandInfo& s : c.subcommands) add(s);
  }
  std::string out;
  out += "| group | supported | supported with a restriction | refused (why) |\n";
  out += "| --- | --- | --- | --- |\n";
  for (auto& [group, rows] : groups) {
    // Commands sharing a note are listed together: "A, B (why); C (why else)".
    auto cell = [&](Support kind) {
      std::vector<std::pair<std::string, std::string>> by_note;  // note -> names, first-seen order
      for (const Row& r : rows) {
        if (r.support != kind) continue;
        auto it = std::find_if(by_note.begin(), by_note.end(),
                               [&](const auto& p) { return p.first == r.note; });
        if (it == by_note.end()) {
          by_note.emplace_back(r.note, r.name);
        } else {
          it->second += ", ";
          it->second += r.name;
        }
      }
      std::string text;
      for (const auto& [note, names] : by_note) {
        if (!text.empty()) text += "; ";
        text += note.empty() ? names : fmt::format("{} ({})", names, note);
      }
      return text;
    };
    const std::string plain = cell(Support::kSupported), restricted = cell(Support::kRestricted),
                      refused = cell(Support::kRefused);
    fmt::format_to(std::back_inserter(out), "| {} | {} | {} | {} |\n", group,
                   plain.empty() ? "-" : plain, restricted.empty() ? "-" : restricted,
                   refused.empty() ? "-" : refused);
  }
  return out;
}

}  // namespace lockstep::proxy

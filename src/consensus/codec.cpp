// Encodings of the consensus values (see codec.h) and the Membership helpers.
#include "lockstep/consensus/codec.h"

#include <algorithm>

#include "consensus/wire.h"

namespace lockstep::consensus {

using wire::Reader;
using wire::Writer;

// ---- Membership ---------------------------------------------------------------------------

const Member* Membership::find(NodeId id) const {
  auto it = std::lower_bound(members.begin(), members.end(), id,
                             [](const Member& m, NodeId v) { return m.id < v; });
  return it != members.end() && it->id == id ? &*it : nullptr;
}

bool Membership::is_voter(NodeId id) const {
  const Member* m = find(id);
  return m != nullptr && m->voter;
}

size_t Membership::voters() const {
  return static_cast<size_t>(
      std::count_if(members.begin(), members.end(), [](const Member& m) { return m.voter; }));
}

bool Membership::is_quorum(const std::vector<NodeId>& ids) const {
  size_t n = voters();
  if (n == 0) return false;
  size_t have = 0;
  for (NodeId id : ids)
    if (is_voter(id)) ++have;
  return have * 2 > n;
}

MembershipResult apply_change(const Membership& m, const MembershipChange& c) {
  MembershipResult r;
  if (c.id == 0) {
    r.error = "ERR replica id 0 is reserved";
    return r;
  }
  const Member* cur = m.find(c.id);
  bool retired = std::binary_search(m.retired.begin(), m.retired.end(), c.id);
  Membership next = m;
  switch (c.kind) {
    case MembershipChange::Kind::kAddLearner: {
      if (cur != nullptr || retired) {
        r.error = "ERR replica id " + std::to_string(c.id) +
                  (retired ? " was used before; ids are never reused" : " is already a member");
        return r;
      }
      Member add{c.id, c.address, false};
      auto at = std::lower_bound(next.members.begin(), next.members.end(), c.id,
                                 [](const Member& x, NodeId v) { return x.id < v; });
      next.members.insert(at, add);
      break;
    }
    case MembershipChange::Kind::kPromote: {
      if (cur == nullptr) {
        r.error = "ERR no replica " + std::to_string(c.id);
        return r;
      }
      if (cur->voter) {
        r.error = "ERR replica " + std::to_string(c.id) + " already votes";
        return r;
      }
      for (auto& x : next.members)
        if (x.id == c.id) x.voter = true;
      break;
    }
    case MembershipChange::Kind::kRemove: {
      if (cur == nullptr) {
        r.error = "ERR no replica " + std::to_string(c.id);
        return r;
      }
      if (cur->voter && m.voters() == 1) {
        r.error = "ERR cannot remove the last voting replica";
        return r;
      }
      next.members.erase(std::remove_if(next.members.begin(), next.members.end(),
                                        [&](const Member& x) { return x.id == c.id; }),
                         next.members.end());
      next.retired.insert(std::upper_bound(next.retired.begin(), next.retired.end(), c.id), c.id);
      break;
    }
  }
  r.membership = std::move(next);
  return r;
}

// ---- Encodings ------------------------------------------------------------------------------

namespace {

void put_ballot(Writer& w, const Ballot& b) {
  w.u64(b.round);
  w.u64(b.node);
}
Ballot get_ballot(Reader& r) {
  Ballot b;
  b.round = r.u64();
  b.node = r.u64();
  return b;
}

void put_entry(Writer& w, const Entry& e) {
  w.u64(e.index);
  put_ballot(w, e.ballot);
  w.u8(static_cast<uint8_t>(e.type));
  w.u64(e.id.origin);
  w.u64(e.id.seq);
  w.str(e.data);
}
constexpr size_t kMinEntryBytes = 8 + 16 + 1 + 16 + 4;

bool get_entry(Reader& r, Entry& e) {
  e.index = r.u64();
  e.ballot = get_ballot(r);
  uint8_t t = r.u8();
  if (t > static_cast<uint8_t>(EntryType::kMembership)) r.fail();
  e.type = static_cast<EntryType>(t);
  e.id.origin = r.u64();
  e.id.seq = r.u64();
  e.data = r.str();
  return r.ok();
}

void put_membership(Writer& w, const Membership& m) {
  w.u32(static_cast<uint32_t>(m.members.size()));
  for (const auto& x : m.members) {
    w.u64(x.id);
    w.str(x.address);
    w.u8(x.voter ? 1 : 0);
  }
  w.u32(static_cast<uint32_t>(m.retired.size()));
  for (NodeId id : m.retired) w.u64(id);
}

bool get_membership(Reader& r, Membership& m) {
  uint32_t n = r.count(8 + 4 + 1);
  m.members.clear();
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Member x;
    x.id = r.u64();
    x.address = r.str();
    x.voter = r.u8() != 0;
    if (!m.members.empty() && m.members.back().id >= x.id) r.fail();
    m.members.push_back(std::move(x));
  }
  uint32_t k = r.count(8);
  m.retired.clear();
  for (uint32_t i = 0; i < k && r.ok(); ++i) m.retired.push_back(r.u64());
  if (!std::is_sorted(m.retired.begin(), m.retired.end())) r.fail();
  return r.ok();
}

void put_snapshot(Writer& w, const Snapshot& s) {
  w.u64(s.index);
  put_membership(w, s.membership);
  w.str(s.data);
}

bool get_snapshot(Reader& r, Snapshot& s) {
  s.index = r.u64();
  get_membership(r, s.membership);
  s.data = r.str();
  return r.ok();
}

}  // namespace

std::string encode_entry(const Entry& e) {
  Writer w;
  put_entry(w, e);
  return w.take();
}

std::optional<Entry> decode_entry(std::string_view bytes) {
  Reader r(bytes);
  Entry e;
  if (!get_entry(r, e) || !r.done()) return std::nullopt;
  return e;
}

std::string encode_membership(const Membership& m) {
  Writer w;
  put_membership(w, m);
  return w.take();
}

std::optional<Membership> decode_membership(std::string_view bytes) {
  Reader r(bytes);
  Membership m;
  if (!get_membership(r, m) || !r.done()) return std::nullopt;
  return m;
}

std::string encode_snapshot(const Snapshot& s) {
  Writer w;
  put_snapshot(w, s);
  return w.take();
}

std::optional<Snapshot> decode_snapshot(std::string_view bytes) {
  Reader r(bytes);
  Snapshot s;
  if (!get_snapshot(r, s) || !r.done()) return std::nullopt;
  return s;
}

std::string encode_hard_state(const HardState& h) {
  Writer w;
  put_ballot(w, h.promised);
  w.u64(h.commit);
  return w.take();
}

std::optional<HardState> decode_hard_state(std::string_view bytes) {
  Reader r(bytes);
  HardState h;
  h.promised = get_ballot(r);
  h.commit = r.u64();
  if (!r.done()) return std::nullopt;
  return h;
}

std::string encode_message(const Message& m) {
  Writer w;
  w.u8(static_cast<uint8_t>(m.type));
  w.u64(m.from);
  w.u64(m.to);
  put_ballot(w, m.ballot);
  w.u64(m.index);
  w.u64(m.commit);
  w.u64(m.read_seq);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) put_entry(w, e);
  w.u8(m.snapshot ? 1 : 0);
  if (m.snapshot) put_snapshot(w, *m.snapshot);
  return w.take();
}

std::optional<Message> decode_message(std::string_view bytes) {
  Reader r(bytes);
  Message m;
  uint8_t t = r.u8();
  if (t < static_cast<uint8_t>(MsgType::kPrepare) || t > static_cast<uint8_t>(MsgType::kLearn))
    return std::nullopt;
  m.type = static_cast<MsgType>(t);
  m.from = r.u64();
  m.to = r.u64();
  m.ballot = get_ballot(r);
  m.index = r.u64();
  m.commit = r.u64();
  m.read_seq = r.u64();
  uint32_t n = r.count(kMinEntryBytes);
  m.entries.reserve(n);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    Entry e;
    if (get_entry(r, e)) m.entries.push_back(std::move(e));
  }
  if (r.u8() != 0) {
    Snapshot s;
    if (get_snapshot(r, s)) m.snapshot = std::move(s);
  }
  if (!r.done()) return std::nullopt;
  return m;
}

}  // namespace lockstep::consensus

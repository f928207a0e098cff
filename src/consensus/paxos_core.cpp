// PaxosCore: Multi-Paxos with a stable leader, one replica's half, as a pure state machine.
//
// What it guarantees
//   - Safety (whatever the network does: loss, duplication, delay, reordering, partitions,
//     and crashes that lose unsynced writes): at most one value is chosen per log slot, and
//     every replica hands the same chosen entries to its state machine in slot order
//     (Ready::committed has consecutive indexes; a snapshot stands in for a prefix).
//   - Liveness once a majority of voters can talk and ticks keep coming: a leader emerges
//     (randomised election timeouts, from PaxosOptions::random_seed) and proposals commit.
//   - A proposal is acknowledged only once chosen: its ProposalId shows up in Ready::committed.
//     A queued proposal that never got a slot is reported in Ready::dropped (safe to retry).
//     One that got a slot but whose leader died has an unknown outcome until a later leader
//     re-proposes it (it then commits) or fills the slot with a no-op (the caller times out).
//
// Data flow
//   inputs:  step(Message) | tick() | propose() | propose_membership() | read_index()
//   outputs: ready() -> Ready { snapshot, hard_state, entries, messages, committed, reads }
//            persist snapshot/hard_state/entries (durably) -> send messages -> apply committed
//            -> advance().  Nothing this replica promises or accepts leaves it before it is on
//            disk, because the driver persists a Ready before sending its messages.
//
//   Phase 1 (once per leadership): a voter whose leader went silent for its election timeout
//   picks ballot (highest round seen + 1, own id) and sends Prepare(ballot, from = its commit
//   + 1) to the voters. Each acceptor that has not promised a higher ballot promises and
//   reports every entry it accepted from that slot on (entries it knows are chosen are
//   learned as chosen; a compacted range comes as its snapshot). With promises from a
//   majority the candidate leads: it re-proposes, slot by slot, the highest-ballot value
//   reported for every slot (a no-op for holes), then one no-op of its own.
//   Phase 2 (per entry): the leader accepts the entry itself, sends Accept(ballot, entries,
//   commit) to the voters, and marks a slot chosen when a majority accepted it in its ballot.
//   Followers learn commits from the commit index piggybacked on Accept and Heartbeat (an
//   entry they accepted in the leader's ballot at or below it is chosen); the leader sends a
//   heartbeat as soon as an Accepted moves its commit index (unless the Accepts it sends next
//   carry it), not only every heartbeat_ticks, so followers apply a change one round trip
//   after the leader; anything else they
//   miss comes as Learn (chosen entries, or the leader's snapshot) after a heartbeat ack
//   shows they lag.
//
//   Membership: Membership entries hold the whole replica set; a replica uses the set of the
//   last membership entry it knows chosen. Changes go one at a time: the leader proposes one
//   only when every earlier slot is chosen, and proposes nothing after it until it is chosen
//   (so all slots in flight share one configuration). After a change the leader needs
//   promises from a majority of the new voters before it proposes further, and asks the
//   missing ones. New replicas join as learners (no vote, no campaign) and the leader
//   promotes each once its commit index caught up. Removed ids are remembered and can never
//   come back; a replica that lost its disk must rejoin under a new id (it forgot what it
//   promised, so its old identity could break a quorum's promises).
//
//   Reads: read_index() records max(commit, own no-op slot), confirms the leadership with a
//   heartbeat round acknowledged by a majority, and settles once that index is applied.
//
//   Leader stability: a replica that heard from its leader within the minimum election
//   timeout ignores other replicas' Prepare, and a leader ignores Prepare while leading; a
//   leader steps down when it has not heard from a majority for an election timeout, or when
//   any acceptor rejects its ballot for a higher one.
//
// What it does not do
//   No I/O, timers or threads: the driver owns sockets, disk, the clock and the tick rate.
//   No forwarding of proposals (kNotLeader names the leader; the driver forwards). No
//   authentication of peers (the transport's job). No leader leases. No flow control beyond
//   max_inflight and max_batch. It keeps the uncompacted log in memory (fine for a
//   configuration log; call compact()).
#include "lockstep/consensus/paxos_core.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "lockstep/consensus/codec.h"

namespace lockstep::consensus {

namespace {

bool contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}

void add_unique(std::vector<NodeId>& v, NodeId id) {
  if (!contains(v, id)) v.push_back(id);
}

// Invariant checks stay on in release builds: a broken invariant here means a replica might
// diverge, which is worse than stopping.
void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "PaxosCore invariant violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

PaxosCore::PaxosCore(const PaxosOptions& options, const RecoveredState& recovered)
    : opt_(options), rng_(options.random_seed ^ (options.id * 0x9E3779B97F4A7C15ULL)) {
  require(opt_.id != 0, "node id 0");
  opt_.heartbeat_ticks = std::max<uint32_t>(opt_.heartbeat_ticks, 1);
  opt_.election_ticks = std::max<uint32_t>(opt_.election_ticks, opt_.heartbeat_ticks + 1);
  opt_.max_batch = std::max<size_t>(opt_.max_batch, 1);
  opt_.max_inflight = std::max<size_t>(opt_.max_inflight, 1);
  promised_ = recovered.hard_state.promised;
  max_round_ = promised_.round;
  snapshot_ = recovered.snapshot;
  membership_ = snapshot_.membership;
  for (const auto& e : recovered.entries)
    if (e.index > snapshot_.index) log_[e.index] = e;
  commit_ = snapshot_.index;
  for (uint64_t i = commit_ + 1; i <= recovered.hard_state.commit && log_.count(i); ++i)
    chosen_above_.insert(i);
  advance_commit();
  handed_ = applied_ = snapshot_.index;
  reset_timeout();
}

uint64_t PaxosCore::next_random() {
  // splitmix64: deterministic, seeded by the caller.
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

void PaxosCore::reset_timeout() {
  timeout_ = opt_.election_ticks + static_cast<uint32_t>(next_random() % opt_.election_ticks);
}

Message PaxosCore::to(NodeId peer, MsgType t) const {
  Message m;
  m.type = t;
  m.from = opt_.id;
  m.to = peer;
  return m;
}

// ---- Inputs -------------------------------------------------------------------------------

void PaxosCore::tick() {
  ++ticks_;
  if (role_ == Role::kLeader) {
    if (++heartbeat_elapsed_ >= opt_.heartbeat_ticks) {
      heartbeat_elapsed_ = 0;
      broadcast_heartbeat();
      resend_accepts();
      if (!has_promise_quorum()) request_promises();
    }
    // Check quorum: a leader cut off from the majority stops claiming leadership.
    if (ticks_ - leader_since_ > opt_.election_ticks) {
      std::vector<NodeId> live{opt_.id};
      for (const auto& [id, p] : peers_)
        if (ticks_ - p.last_heard <= opt_.election_ticks) live.push_back(id);
      if (!membership_.is_quorum(live)) step_down();
    }
    return;
  }
  ++elapsed_;
  if (role_ == Role::kCandidate && ++heartbeat_elapsed_ >= opt_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    request_promises();
  }
  if (elapsed_ >= timeout_ && is_voter()) campaign();
}

void PaxosCore::step(const Message& m) {
  if (m.to != opt_.id || m.from == opt_.id) return;
  switch (m.type) {
    case MsgType::kPrepare:
      on_prepare(m);
      break;
    case MsgType::kPromise:
      on_promise(m);
      break;
    case MsgType::kAccept:
      on_accept(m);
      break;
    case MsgType::kAccepted:
      on_accepted(m);
      break;
    case MsgType::kReject:
      on_reject(m);
      break;
    case MsgType::kHeartbeat:
      on_heartbeat(m);
      break;
    case MsgType::kHeartbeatAck:
      on_heartbeat_ack(m);
      break;
    case MsgType::kLearn:
      on_learn(m);
      break;
  }
}

void PaxosCore::campaign() {
  if (!is_voter()) return;
  if (role_ != Role::kFollower) step_down();
  role_ = Role::kCandidate;
  leader_ = 0;
  ballot_ = Ballot{max_round_ + 1, opt_.id};
  max_round_ = ballot_.round;
  promised_ = ballot_;
  hard_state_dirty_ = true;
  from_index_ = commit_ + 1;
  promisers_ = {opt_.id};
  recovered_.clear();
  for (auto it = log_.lower_bound(from_index_); it != log_.end(); ++it)
    recovered_[it->first] = it->second;
  votes_.clear();
  elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_timeout();
  request_promises();
  if (has_promise_quorum()) become_leader();
}

ProposeResult PaxosCore::propose(ProposalId id, std::string data) {
  if (role_ != Role::kLeader) return ProposeResult{ProposeResult::Status::kNotLeader, leader_, {}};
  Entry e;
  e.type = EntryType::kCommand;
  e.id = id;
  e.data = std::move(data);
  queue_.push_back(Queued{std::move(e), std::nullopt});
  pump();
  return {};
}

ProposeResult PaxosCore::propose_membership(ProposalId id, const MembershipChange& change) {
  if (role_ != Role::kLeader) return ProposeResult{ProposeResult::Status::kNotLeader, leader_, {}};
  bool busy = barrier_ != 0 || std::any_of(queue_.begin(), queue_.end(),
                                           [](const Queued& q) { return q.change.has_value(); });
  if (busy)
    return ProposeResult{ProposeResult::Status::kRejected, leader_,
                         "ERR a membership change is already in progress; retry when it is done"};
  auto r = apply_change(membership_, change);
  if (!r.membership) return ProposeResult{ProposeResult::Status::kRejected, leader_, r.error};
  Entry e;
  e.type = EntryType::kMembership;
  e.id = id;
  queue_.push_back(Queued{std::move(e), change});
  pump();
  return {};
}

ProposeResult PaxosCore::read_index(uint64_t read_id) {
  if (role_ != Role::kLeader) return ProposeResult{ProposeResult::Status::kNotLeader, leader_, {}};
  if (own_noop_ == 0)
    return ProposeResult{ProposeResult::Status::kRejected, leader_,
                         "ERR the leader is still recovering; retry"};
  PendingRead r;
  r.id = read_id;
  r.index = std::max(commit_, own_noop_);
  r.seq = ++read_seq_;
  r.acks = {opt_.id};
  reads_.push_back(std::move(r));
  broadcast_heartbeat();
  check_reads();
  return {};
}

Snapshot PaxosCore::compact(uint64_t index, std::string app_data) {
  index = std::min(index, applied_);
  if (index <= snapshot_.index) return snapshot_;
  Snapshot s;
  s.index = index;
  s.membership = membership_at(index);
  s.data = std::move(app_data);
  snapshot_ = s;
  log_.erase(log_.begin(), log_.upper_bound(index));
  membership_log_.erase(std::remove_if(membership_log_.begin(), membership_log_.end(),
                                       [&](const auto& x) { return x.first <= index; }),
                        membership_log_.end());
  return s;
}

// ---- Outputs ------------------------------------------------------------------------------

bool PaxosCore::has_ready() const {
  if (out_snapshot_ || hard_state_dirty_ || !out_entries_.empty() || !out_messages_.empty() ||
      handed_ < commit_ || !out_reads_.empty() || !out_dropped_.empty())
    return true;
  return std::any_of(confirmed_reads_.begin(), confirmed_reads_.end(),
                     [&](const ReadState& r) { return r.index <= handed_; });
}

Ready PaxosCore::ready() {
  Ready r;
  r.snapshot = std::move(out_snapshot_);
  out_snapshot_.reset();
  if (hard_state_dirty_ || !out_entries_.empty() || r.snapshot)
    r.hard_state = HardState{promised_, commit_};
  hard_state_dirty_ = false;
  r.entries = std::move(out_entries_);
  out_entries_.clear();
  r.messages = std::move(out_messages_);
  out_messages_.clear();
  for (uint64_t i = handed_ + 1; i <= commit_; ++i) {
    auto it = log_.find(i);
    require(it != log_.end(), "committed entry missing from the log");
    r.committed.push_back(it->second);
  }
  handed_ = std::max(handed_, commit_);
  r.reads = std::move(out_reads_);
  out_reads_.clear();
  for (auto it = confirmed_reads_.begin(); it != confirmed_reads_.end();) {
    if (it->index <= handed_) {
      r.reads.push_back(*it);
      it = confirmed_reads_.erase(it);
    } else {
      ++it;
    }
  }
  r.dropped = std::move(out_dropped_);
  out_dropped_.clear();
  return r;
}

void PaxosCore::advance() {
  applied_ = handed_;
}

std::string PaxosCore::describe() const {
  static const char* roles[] = {"follower", "candidate", "leader"};
  std::string s =
      "id=" + std::to_string(opt_.id) + " role=" + roles[static_cast<int>(role_)] +
      " leader=" + std::to_string(leader_) + " promised=" + std::to_string(promised_.round) + "." +
      std::to_string(promised_.node) + " commit=" + std::to_string(commit_) +
      " applied=" + std::to_string(applied_) + " snapshot=" + std::to_string(snapshot_.index) +
      " log=" + std::to_string(log_.size()) + " voters=" + std::to_string(membership_.voters()) +
      "/" + std::to_string(membership_.members.size());
  if (role_ != Role::kFollower)
    s += " promisers=" + std::to_string(promisers_.size()) +
         " next=" + std::to_string(next_index_) + " noop=" + std::to_string(own_noop_) +
         " barrier=" + std::to_string(barrier_) + " queue=" + std::to_string(queue_.size()) +
         " inflight=" + std::to_string(votes_.size()) +
         " recovered=" + std::to_string(recovered_.size());
  return s;
}

// ---- Acceptor -----------------------------------------------------------------------------

bool PaxosCore::adopt_ballot(const Message& m) {
  if (m.ballot < promised_) {
    Message rej = to(m.from, MsgType::kReject);
    rej.ballot = promised_;
    send(std::move(rej));
    return false;
  }
  if (m.ballot > promised_) {
    promised_ = m.ballot;
    hard_state_dirty_ = true;
  }
  max_round_ = std::max(max_round_, m.ballot.round);
  if (role_ != Role::kFollower && m.ballot != ballot_) step_down();
  if (m.ballot.node == m.from) follow(m.from);
  return true;
}

void PaxosCore::follow(NodeId leader) {
  leader_ = leader;
  elapsed_ = 0;
}

void PaxosCore::on_prepare(const Message& m) {
  if (m.ballot < promised_) {
    Message rej = to(m.from, MsgType::kReject);
    rej.ballot = promised_;
    send(std::move(rej));
    return;
  }
  if (m.ballot > promised_) {
    // Stay with a leader we heard from recently; a voter our configuration does not know
    // cannot lead us yet. Ignoring a Prepare is always safe.
    bool leader_alive = role_ == Role::kLeader ||
                        (leader_ != 0 && leader_ != m.from && elapsed_ < opt_.election_ticks);
    if (leader_alive) return;
    if (!membership_.members.empty() && !membership_.is_voter(m.from)) return;
    promised_ = m.ballot;
    hard_state_dirty_ = true;
    max_round_ = std::max(max_round_, m.ballot.round);
    if (role_ != Role::kFollower) step_down();
    leader_ = 0;
    elapsed_ = 0;
  }
  Message p = to(m.from, MsgType::kPromise);
  p.ballot = m.ballot;
  p.commit = commit_;
  uint64_t from = std::max(m.index, snapshot_.index + 1);
  if (m.index <= snapshot_.index && snapshot_.index > 0) p.snapshot = snapshot_;
  for (auto it = log_.lower_bound(from); it != log_.end(); ++it) p.entries.push_back(it->second);
  send(std::move(p));
}

void PaxosCore::on_accept(const Message& m) {
  if (!adopt_ballot(m)) return;
  Message ack = to(m.from, MsgType::kAccepted);
  ack.ballot = m.ballot;
  for (const auto& e : m.entries) {
    if (e.index > commit_ && e.index > snapshot_.index && !chosen_above_.count(e.index)) {
      Entry x = e;
      x.ballot = m.ballot;
      store(x);
    }
    Entry idx;
    idx.index = e.index;
    ack.entries.push_back(std::move(idx));
  }
  apply_commit_hint(m.ballot, m.commit);
  ack.commit = commit_;
  send(std::move(ack));
}

void PaxosCore::on_heartbeat(const Message& m) {
  if (!adopt_ballot(m)) return;
  apply_commit_hint(m.ballot, m.commit);
  Message ack = to(m.from, MsgType::kHeartbeatAck);
  ack.ballot = m.ballot;
  ack.commit = commit_;
  ack.read_seq = m.read_seq;
  send(std::move(ack));
}

void PaxosCore::on_learn(const Message& m) {
  // Chosen entries are facts whoever sends them; the ballot only tells us who leads.
  if (m.ballot >= promised_) {
    if (m.ballot > promised_) {
      promised_ = m.ballot;
      hard_state_dirty_ = true;
    }
    max_round_ = std::max(max_round_, m.ballot.round);
    if (role_ != Role::kFollower && m.ballot != ballot_) step_down();
    if (m.ballot.node == m.from) follow(m.from);
  }
  if (m.snapshot && (m.snapshot->index > commit_ ||
                     (m.snapshot->index == commit_ && membership_.members.empty())))
    install_snapshot(*m.snapshot);
  for (const auto& e : m.entries) learn_chosen(e);
  advance_commit();
  Message ack = to(m.from, MsgType::kHeartbeatAck);
  ack.ballot = m.ballot;
  ack.commit = commit_;
  send(std::move(ack));
}

void PaxosCore::apply_commit_hint(Ballot b, uint64_t commit) {
  // An entry accepted in the leader's ballot, at or below the leader's commit index, is the
  // one the leader got chosen there: a leader proposes one value per slot per ballot.
  for (auto it = log_.upper_bound(commit_); it != log_.end() && it->first <= commit; ++it)
    if (it->second.ballot == b) chosen_above_.insert(it->first);
  advance_commit();
}

void PaxosCore::store(const Entry& e) {
  log_[e.index] = e;
  out_entries_.push_back(e);
}

bool PaxosCore::is_chosen(uint64_t index) const {
  return index <= commit_ || chosen_above_.count(index) != 0;
}

void PaxosCore::learn_chosen(const Entry& e) {
  if (e.index <= commit_ || e.index <= snapshot_.index) return;
  auto it = log_.find(e.index);
  if (it != log_.end() && chosen_above_.count(e.index)) {
    require(it->second.same_value(e), "two different values learned as chosen for one slot");
    return;
  }
  // A chosen value replaces whatever unchosen value we accepted there; the same value keeps
  // the higher ballot.
  if (it == log_.end() || !it->second.same_value(e) || e.ballot > it->second.ballot) store(e);
  chosen_above_.insert(e.index);
}

void PaxosCore::install_snapshot(const Snapshot& s) {
  snapshot_ = s;
  out_snapshot_ = s;
  log_.erase(log_.begin(), log_.upper_bound(s.index));
  chosen_above_.erase(chosen_above_.begin(), chosen_above_.upper_bound(s.index));
  membership_log_.clear();
  commit_ = std::max(commit_, s.index);
  handed_ = std::max(handed_, s.index);
  if (role_ == Role::kLeader) {
    next_index_ = std::max(next_index_, s.index + 1);
    votes_.erase(votes_.begin(), votes_.upper_bound(s.index));
    recovered_.erase(recovered_.begin(), recovered_.upper_bound(s.index));
    if (barrier_ <= s.index) barrier_ = 0;
    if (own_noop_ != 0 && own_noop_ <= s.index) own_noop_ = s.index;
  }
  on_membership(s.membership, 0);
}

void PaxosCore::advance_commit() {
  for (;;) {
    auto c = chosen_above_.find(commit_ + 1);
    if (c == chosen_above_.end()) break;
    auto it = log_.find(commit_ + 1);
    if (it == log_.end()) break;
    chosen_above_.erase(c);
    commit_ = it->first;
    votes_.erase(commit_);
    if (it->second.type == EntryType::kMembership) {
      auto m = decode_membership(it->second.data);
      require(m.has_value(), "undecodable membership entry was chosen");
      on_membership(*m, commit_);
    }
  }
  if (barrier_ != 0 && commit_ >= barrier_) barrier_ = 0;
}

void PaxosCore::on_membership(const Membership& m, uint64_t index) {
  membership_ = m;
  membership_index_ = std::max(index, snapshot_.index);
  if (index != 0) {
    membership_log_.emplace_back(index, m);
    // Make the commit index durable now: a replica that restarted believing in an older
    // membership could wait forever for promises from a replica that has since left.
    hard_state_dirty_ = true;
  }
  if (role_ == Role::kFollower) return;
  if (!is_voter()) {
    step_down();
    return;
  }
  if (role_ == Role::kLeader) {
    for (const auto& x : membership_.members)
      if (x.id != opt_.id && !peers_.count(x.id)) peers_[x.id].last_heard = ticks_;
    for (auto it = peers_.begin(); it != peers_.end();)
      it = membership_.find(it->first) ? std::next(it) : peers_.erase(it);
  }
  if (!has_promise_quorum()) request_promises();
}

Membership PaxosCore::membership_at(uint64_t index) const {
  const Membership* m = &snapshot_.membership;
  for (const auto& [i, ms] : membership_log_)
    if (i <= index) m = &ms;
  return *m;
}

// ---- Proposer -----------------------------------------------------------------------------

bool PaxosCore::has_promise_quorum() const {
  return membership_.is_quorum(promisers_);
}

void PaxosCore::request_promises() {
  uint64_t from = role_ == Role::kLeader ? next_index_ : from_index_;
  for (const auto& x : membership_.members) {
    if (!x.voter || x.id == opt_.id || contains(promisers_, x.id)) continue;
    Message p = to(x.id, MsgType::kPrepare);
    p.ballot = ballot_;
    p.index = from;
    send(std::move(p));
  }
}

void PaxosCore::on_promise(const Message& m) {
  if (role_ == Role::kFollower || m.ballot != ballot_) return;
  if (m.snapshot && m.snapshot->index > commit_) install_snapshot(*m.snapshot);
  if (role_ == Role::kFollower) return;  // the snapshot's membership dropped us
  for (const auto& e : m.entries) {
    if (e.index <= commit_) continue;
    if (e.index <= m.commit) {
      learn_chosen(e);
      continue;
    }
    if (role_ == Role::kLeader && e.index < next_index_) continue;
    auto it = recovered_.find(e.index);
    if (it == recovered_.end() || e.ballot > it->second.ballot) recovered_[e.index] = e;
  }
  add_unique(promisers_, m.from);
  advance_commit();
  if (role_ == Role::kCandidate && has_promise_quorum())
    become_leader();
  else if (role_ == Role::kLeader)
    pump();
}

void PaxosCore::become_leader() {
  role_ = Role::kLeader;
  leader_ = opt_.id;
  leader_since_ = ticks_;
  next_index_ = commit_ + 1;
  recovered_.erase(recovered_.begin(), recovered_.upper_bound(commit_));
  own_noop_ = 0;
  barrier_ = 0;
  votes_.clear();
  peers_.clear();
  for (const auto& x : membership_.members)
    if (x.id != opt_.id) peers_[x.id].last_heard = ticks_;
  heartbeat_elapsed_ = 0;
  broadcast_heartbeat();
  pump();
}

void PaxosCore::step_down() {
  if (role_ == Role::kLeader) {
    for (auto& q : queue_)
      out_dropped_.push_back(
          Dropped{q.entry.id, "ERR leadership changed before the change was proposed; retry"});
    for (auto& r : reads_) out_reads_.push_back(ReadState{r.id, r.index, false});
  }
  queue_.clear();
  reads_.clear();
  role_ = Role::kFollower;
  leader_ = 0;
  votes_.clear();
  recovered_.clear();
  promisers_.clear();
  peers_.clear();
  barrier_ = 0;
  own_noop_ = 0;
  elapsed_ = 0;
  reset_timeout();
}

void PaxosCore::pump() {
  for (;;) {
    if (role_ != Role::kLeader || !has_promise_quorum()) return;
    uint64_t max_recovered = recovered_.empty() ? 0 : recovered_.rbegin()->first;
    std::vector<Entry> batch;
    while (votes_.size() < opt_.max_inflight && (barrier_ == 0 || commit_ >= barrier_)) {
      uint64_t s = next_index_;
      if (is_chosen(s)) {  // learned from a late promise: nothing to propose there
        ++next_index_;
        continue;
      }
      Entry e;
      if (s <= max_recovered) {
        if (auto it = recovered_.find(s); it != recovered_.end()) {
          e = std::move(it->second);
          recovered_.erase(it);
        }
      } else if (own_noop_ == 0) {
        own_noop_ = s;
      } else if (!queue_.empty()) {
        Queued& q = queue_.front();
        if (q.change) {
          if (commit_ + 1 != s) break;  // a change goes in only after everything before it
          auto r = apply_change(membership_, *q.change);
          if (!r.membership) {
            out_dropped_.push_back(Dropped{q.entry.id, r.error});
            queue_.pop_front();
            continue;
          }
          q.entry.data = encode_membership(*r.membership);
        }
        e = std::move(q.entry);
        queue_.pop_front();
      } else {
        // Promote a learner that knows the current membership and caught up to within one
        // batch (one at a time, like any membership change; exactness is pointless while
        // proposals keep coming).
        NodeId learner = 0;
        for (const auto& x : membership_.members)
          if (!x.voter && peers_.count(x.id) && peers_[x.id].commit >= membership_index_ &&
              peers_[x.id].commit + opt_.max_batch >= commit_)
            learner = x.id;
        if (learner == 0 || commit_ + 1 != s) break;
        auto r = apply_change(membership_, {MembershipChange::Kind::kPromote, learner, {}});
        if (!r.membership) break;
        e.type = EntryType::kMembership;
        e.data = encode_membership(*r.membership);
      }
      e.index = s;
      e.ballot = ballot_;
      ++next_index_;
      store(e);
      votes_[s] = {opt_.id};
      if (e.type == EntryType::kMembership) barrier_ = s;
      batch.push_back(std::move(e));
    }
    if (batch.empty()) return;
    announced_commit_ = std::max(announced_commit_, commit_);
    for (const auto& x : membership_.members) {
      if (!x.voter || x.id == opt_.id) continue;
      for (size_t i = 0; i < batch.size(); i += opt_.max_batch) {
        Message a = to(x.id, MsgType::kAccept);
        a.ballot = ballot_;
        a.commit = commit_;
        size_t end = std::min(batch.size(), i + opt_.max_batch);
        a.entries.assign(batch.begin() + static_cast<ptrdiff_t>(i),
                         batch.begin() + static_cast<ptrdiff_t>(end));
        send(std::move(a));
      }
    }
    // A cluster with one voter chooses at once; otherwise wait for Accepted.
    uint64_t before = commit_;
    for (const auto& e : batch) {
      auto v = votes_.find(e.index);
      if (v != votes_.end() && membership_.is_quorum(v->second)) {
        chosen_above_.insert(e.index);
        votes_.erase(v);
      }
    }
    advance_commit();
    if (commit_ == before) return;
  }
}

void PaxosCore::on_accepted(const Message& m) {
  if (role_ != Role::kLeader || m.ballot != ballot_) return;
  auto p = peers_.find(m.from);
  if (p != peers_.end()) {
    p->second.last_heard = ticks_;
    p->second.commit = m.commit;
  }
  for (const auto& e : m.entries) {
    auto v = votes_.find(e.index);
    if (v == votes_.end()) continue;
    add_unique(v->second, m.from);
    if (membership_.is_quorum(v->second)) {
      chosen_above_.insert(e.index);
      votes_.erase(v);
    }
  }
  advance_commit();
  check_reads();
  pump();
  // Tell the other replicas about a new commit index at once rather than at the next
  // heartbeat: a follower then applies, and answers a change proposed through it, one round
  // trip after the leader instead of up to heartbeat_ticks later. When pump() just sent
  // Accepts, they carry it already.
  if (commit_ > announced_commit_) broadcast_heartbeat();
}

void PaxosCore::on_heartbeat_ack(const Message& m) {
  if (role_ != Role::kLeader || m.ballot != ballot_) return;
  auto p = peers_.find(m.from);
  if (p == peers_.end()) return;
  p->second.last_heard = ticks_;
  p->second.commit = m.commit;
  p->second.read_seq = std::max(p->second.read_seq, m.read_seq);
  check_reads();
  if (m.commit < commit_) send_catch_up(m.from, m.commit);
  pump();  // a learner may have caught up
}

void PaxosCore::on_reject(const Message& m) {
  max_round_ = std::max(max_round_, m.ballot.round);
  if (role_ != Role::kFollower && m.ballot > ballot_) step_down();
}

void PaxosCore::broadcast_heartbeat() {
  announced_commit_ = std::max(announced_commit_, commit_);
  for (const auto& x : membership_.members) {
    if (x.id == opt_.id) continue;
    Message h = to(x.id, MsgType::kHeartbeat);
    h.ballot = ballot_;
    h.commit = commit_;
    h.read_seq = read_seq_;
    send(std::move(h));
  }
}

void PaxosCore::resend_accepts() {
  if (votes_.empty()) return;
  for (const auto& x : membership_.members) {
    if (!x.voter || x.id == opt_.id) continue;
    Message a = to(x.id, MsgType::kAccept);
    a.ballot = ballot_;
    a.commit = commit_;
    for (const auto& [index, who] : votes_) {
      if (contains(who, x.id)) continue;
      auto it = log_.find(index);
      if (it == log_.end()) continue;
      a.entries.push_back(it->second);
      if (a.entries.size() == opt_.max_batch) break;
    }
    if (!a.entries.empty()) send(std::move(a));
  }
}

void PaxosCore::send_catch_up(NodeId peer, uint64_t their_commit) {
  Message l = to(peer, MsgType::kLearn);
  l.ballot = ballot_;
  l.commit = commit_;
  uint64_t from = their_commit + 1;
  if (their_commit < snapshot_.index || their_commit == 0) {
    l.snapshot = snapshot_;
    from = snapshot_.index + 1;
  }
  for (auto it = log_.lower_bound(from);
       it != log_.end() && it->first <= commit_ && l.entries.size() < opt_.max_batch; ++it)
    l.entries.push_back(it->second);
  if (!l.snapshot && l.entries.empty()) return;
  send(std::move(l));
}

void PaxosCore::check_reads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    for (const auto& [id, p] : peers_)
      if (p.read_seq >= it->seq) add_unique(it->acks, id);
    if (membership_.is_quorum(it->acks)) {
      confirmed_reads_.push_back(ReadState{it->id, it->index, true});
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace lockstep::consensus

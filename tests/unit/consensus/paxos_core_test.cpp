// PaxosCore in small, hand-driven scenarios over a perfect in-memory network: elections,
// proposals on leader and followers, the Ready contract, read-index, membership changes and
// restart from storage. The randomised fault coverage is in simulation_test.cpp.
#include <catch2/catch.hpp>

#include <deque>
#include <map>
#include <memory>

#include "lockstep/consensus/codec.h"
#include "lockstep/consensus/config_state_machine.h"
#include "lockstep/consensus/paxos_core.h"

using namespace lockstep::consensus;

namespace {

Membership voters(std::initializer_list<NodeId> ids) {
  Membership m;
  for (NodeId id : ids) m.members.push_back(Member{id, "n" + std::to_string(id), true});
  return m;
}

// A few replicas over a network that delivers everything, in order, when asked.
class Cluster {
 public:
  struct Replica {
    MemDisk disk;
    std::unique_ptr<LogStorage> storage;
    std::unique_ptr<PaxosCore> core;
    ConfigStateMachine sm;
    std::vector<Entry> applied;
    std::vector<ReadState> reads;
    std::vector<Ready> readies;
  };

  explicit Cluster(const Membership& initial) {
    for (const auto& m : initial.members) start(m.id, &initial);
  }

  void start(NodeId id, const Membership* initial) {
    auto& r = replicas_[id];
    if (!r) r = std::make_unique<Replica>();
    auto opened = LogStorage::open(r->disk, 1, id);
    REQUIRE(opened.storage);
    r->storage = std::move(opened.storage);
    RecoveredState rec = r->storage->recovered();
    if (rec.created && initial) {
      rec.snapshot = Snapshot{0, *initial, {}};
      REQUIRE(r->storage->save_snapshot(rec.snapshot).ok());
    }
    PaxosOptions o;
    o.id = id;
    o.random_seed = id;
    r->core = std::make_unique<PaxosCore>(o, rec);
    r->sm = ConfigStateMachine{};
    REQUIRE(r->sm.restore(rec.snapshot.data));
    r->applied.clear();
    drain(id);
  }

  void stop(NodeId id) { replicas_.at(id)->core.reset(); }

  PaxosCore& core(NodeId id) { return *replicas_.at(id)->core; }
  Replica& at(NodeId id) { return *replicas_.at(id); }

  void drain(NodeId id) {
    auto& r = *replicas_.at(id);
    while (r.core && r.core->has_ready()) {
      Ready rd = r.core->ready();
      if (rd.snapshot) {
        REQUIRE(r.storage->save_snapshot(*rd.snapshot).ok());
        REQUIRE(r.sm.restore(rd.snapshot->data));
      }
      REQUIRE(r.storage->save(rd.hard_state, rd.entries).ok());
      for (const auto& m : rd.messages) net_.push_back(m);
      for (const auto& e : rd.committed) {
        r.sm.apply_entry(e);
        r.applied.push_back(e);
      }
      for (const auto& rs : rd.reads) r.reads.push_back(rs);
      r.readies.push_back(rd);
      r.core->advance();
    }
  }

  // Delivers until the network is quiet.
  void settle() {
    for (int guard = 0; !net_.empty() && guard < 100000; ++guard) {
      Message m = net_.front();
      net_.pop_front();
      auto it = replicas_.find(m.to);
      if (it == replicas_.end() || !it->second->core || cut_.count(m.to) || cut_.count(m.from))
        continue;
      it->second->core->step(m);
      drain(m.to);
    }
  }

  void tick_all(int n) {
    for (int i = 0; i < n; ++i) {
      for (auto& [id, r] : replicas_)
        if (r->core && !cut_.count(id)) {
          r->core->tick();
          drain(id);
        }
      settle();
    }
  }

  void isolate(NodeId id) { cut_.insert(id); }
  void reconnect(NodeId id) { cut_.erase(id); }

  std::deque<Message> net_;

 private:
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::set<NodeId> cut_;
};

std::string cmd(const std::string& path, const std::string& value) {
  return encode_command(ConfigCommand::set_setting(path, value));
}

}  // namespace

TEST_CASE("A cluster of one commits at once and survives a restart", "[consensus][core]") {
  Cluster c(voters({1}));
  c.core(1).campaign();
  c.drain(1);
  REQUIRE(c.core(1).role() == Role::kLeader);
  REQUIRE(c.core(1).propose(ProposalId{1, 1}, cmd("timeouts.request_ms", "7")).queued());
  c.drain(1);
  auto& r = c.at(1);
  REQUIRE(r.applied.size() == 2);  // the leader's no-op, then the change
  CHECK(r.applied[0].type == EntryType::kNoop);
  CHECK(r.applied[1].id == ProposalId{1, 1});
  CHECK(r.sm.setting("timeouts.request_ms") == "7");
  REQUIRE(c.core(1).read_index(42).queued());
  c.drain(1);
  REQUIRE(r.reads.size() == 1);
  CHECK(r.reads[0].ok);
  CHECK(r.reads[0].index == 2);

  c.stop(1);
  c.start(1, nullptr);
  // Entries up to the durable commit index are handed out again on start.
  CHECK(c.at(1).sm.setting("timeouts.request_ms") == "7");
  c.tick_all(30);
  CHECK(c.core(1).role() == Role::kLeader);
  REQUIRE(c.core(1).propose(ProposalId{1, 2}, cmd("timeouts.request_ms", "8")).queued());
  c.drain(1);
  CHECK(c.at(1).sm.setting("timeouts.request_ms") == "8");
}

TEST_CASE("Three replicas elect, replicate and redirect proposals", "[consensus][core]") {
  Cluster c(voters({1, 2, 3}));
  c.core(1).campaign();
  c.drain(1);
  // The promise is persisted before it is sent: the Ready carrying a Promise also carries
  // the hard state with the new ballot.
  c.settle();
  bool promise_with_state = false;
  for (const auto& rd : c.at(2).readies)
    for (const auto& m : rd.messages)
      if (m.type == MsgType::kPromise)
        promise_with_state = rd.hard_state && rd.hard_state->promised == m.ballot;
  CHECK(promise_with_state);
  REQUIRE(c.core(1).role() == Role::kLeader);
  c.tick_all(2);
  CHECK(c.core(2).leader() == 1);

  auto r = c.core(2).propose(ProposalId{2, 1}, cmd("a", "1"));
  CHECK(r.status == ProposeResult::Status::kNotLeader);
  CHECK(r.leader == 1);
  REQUIRE(c.core(1).propose(ProposalId{2, 1}, cmd("a", "1")).queued());
  c.drain(1);
  c.settle();
  c.tick_all(2);
  for (NodeId id : {1, 2, 3}) {
    CHECK(c.at(id).sm.setting("a") == "1");
    CHECK(c.core(id).commit_index() == 2);
  }
}

TEST_CASE("Followers learn a commit at once, without waiting for a heartbeat tick",
          "[consensus][core]") {
  Cluster c(voters({1, 2, 3}));
  c.core(1).campaign();
  c.drain(1);
  c.settle();
  c.tick_all(2);
  REQUIRE(c.core(1).role() == Role::kLeader);
  const uint64_t before = c.core(2).commit_index();
  REQUIRE(c.core(1).propose(ProposalId{2, 7}, cmd("b", "2")).queued());
  c.drain(1);
  c.settle();  // no tick: only the messages the proposal itself causes
  CHECK(c.core(1).commit_index() == before + 1);
  for (NodeId id : {2, 3}) {
    CHECK(c.core(id).commit_index() == before + 1);
    CHECK(c.at(id).sm.setting("b") == "2");
  }
}

TEST_CASE("A new leader keeps what the old one got chosen", "[consensus][core]") {
  Cluster c(voters({1, 2, 3}));
  c.core(1).campaign();
  c.drain(1);
  c.settle();
  REQUIRE(c.core(1).propose(ProposalId{9, 1}, cmd("k", "v")).queued());
  c.drain(1);
  c.settle();
  c.isolate(1);
  c.tick_all(40);
  NodeId leader = c.core(2).role() == Role::kLeader ? 2 : 3;
  REQUIRE(c.core(leader).role() == Role::kLeader);
  REQUIRE(c.core(leader).propose(ProposalId{9, 2}, cmd("k", "w")).queued());
  c.drain(leader);
  c.settle();
  c.reconnect(1);
  c.tick_all(10);
  CHECK(c.core(1).role() == Role::kFollower);
  for (NodeId id : {1, 2, 3}) {
    CHECK(c.at(id).sm.setting("k") == "w");
    CHECK(c.at(id).applied.size() == c.at(leader).applied.size());
  }
}

TEST_CASE("Read-index confirms leadership with a quorum", "[consensus][core]") {
  Cluster c(voters({1, 2, 3}));
  c.core(1).campaign();
  c.drain(1);
  c.settle();
  CHECK(c.core(2).read_index(1).status == ProposeResult::Status::kNotLeader);
  REQUIRE(c.core(1).read_index(1).queued());
  c.drain(1);
  CHECK(c.at(1).reads.empty());  // not before the heartbeat round comes back
  c.settle();
  REQUIRE(c.at(1).reads.size() == 1);
  CHECK(c.at(1).reads[0].ok);

  // A leader cut off from everyone never confirms, and fails the read when it steps down.
  c.isolate(2);
  c.isolate(3);
  REQUIRE(c.core(1).read_index(2).queued());
  c.drain(1);
  c.tick_all(30);
  REQUIRE(c.at(1).reads.size() == 2);
  CHECK_FALSE(c.at(1).reads[1].ok);
  CHECK(c.core(1).role() != Role::kLeader);
}

TEST_CASE("Membership: learners join, get promoted, ids are never reused", "[consensus][core]") {
  Cluster c(voters({1, 2, 3}));
  c.core(1).campaign();
  c.drain(1);
  c.settle();
  c.start(4, nullptr);
  auto add = c.core(1).propose_membership(
      ProposalId{1, 1}, MembershipChange{MembershipChange::Kind::kAddLearner, 4, "n4"});
  REQUIRE(add.queued());
  auto second = c.core(1).propose_membership(
      ProposalId{1, 2}, MembershipChange{MembershipChange::Kind::kRemove, 3, {}});
  CHECK(second.status == ProposeResult::Status::kRejected);
  c.drain(1);
  c.settle();
  c.tick_all(10);
  CHECK(c.core(1).membership().is_voter(4));  // caught up, then promoted by the leader
  CHECK(c.core(4).is_voter());
  CHECK(c.at(4).sm.replicas().size() == 4);

  REQUIRE(c.core(1)
              .propose_membership(ProposalId{1, 3},
                                  MembershipChange{MembershipChange::Kind::kRemove, 3, {}})
              .queued());
  c.drain(1);
  c.settle();
  c.tick_all(2);
  CHECK(c.core(1).membership().find(3) == nullptr);
  auto again = c.core(1).propose_membership(
      ProposalId{1, 4}, MembershipChange{MembershipChange::Kind::kAddLearner, 3, "n3"});
  CHECK(again.status == ProposeResult::Status::kRejected);
  CHECK(again.error == "ERR replica id 3 was used before; ids are never reused");
  auto last = apply_change(voters({1}), {MembershipChange::Kind::kRemove, 1, {}});
  CHECK(last.error == "ERR cannot remove the last voting replica");
}

TEST_CASE("Messages round-trip through bytes; garbage does not decode", "[consensus][core]") {
  Message m;
  m.type = MsgType::kPromise;
  m.from = 3;
  m.to = 1;
  m.ballot = Ballot{7, 3};
  m.index = 5;
  m.commit = 4;
  m.read_seq = 9;
  Entry e;
  e.index = 5;
  e.ballot = Ballot{6, 2};
  e.type = EntryType::kCommand;
  e.id = ProposalId{2, 8};
  e.data = std::string("\0bin", 4);
  m.entries = {e, e};
  m.snapshot = Snapshot{4, voters({1, 2}), "state"};
  std::string bytes = encode_message(m);
  CHECK(decode_message(bytes) == m);
  for (size_t cut = 0; cut < bytes.size(); ++cut)
    CHECK_FALSE(decode_message(std::string_view(bytes).substr(0, cut)).has_value());
  std::string hostile = bytes;
  hostile[1 + 8 + 8 + 16 + 24] = '\xff';  // entry count's low byte: far more than present
  CHECK_FALSE(decode_message(hostile).has_value());
}

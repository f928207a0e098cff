// The failover executor; see group_reconciler.h.
#include "lockstep/failover/group_reconciler.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace lockstep::failover {

std::string_view reconcile_state_name(ReconcileState state) {
  switch (state) {
    case ReconcileState::kWaitingLease:
      return "waiting-lease";
    case ReconcileState::kCheckingCandidate:
      return "checking-candidate";
    case ReconcileState::kCandidateBehind:
      return "candidate-behind";
    case ReconcileState::kPrimaryUnreachable:
      return "primary-unreachable";
    case ReconcileState::kPromoting:
      return "promoting";
    case ReconcileState::kRepointing:
      return "repointing";
    case ReconcileState::kConverged:
      return "converged";
  }
  return "?";
}

GroupReconciler::GroupReconciler(std::string backend) : backend_(std::move(backend)) {}

void GroupReconciler::set_target(const Group& group, TimeMs promote_not_before) {
  bool changed = group.generation != group_.generation || group.primary != group_.primary;
  group_ = group;
  if (!changed) return;
  promote_not_before_ = promote_not_before;
  for (auto& [address, s] : servers_) {
    // What a command made of a server was relative to the old primary.
    s.assumed_role.reset();
    s.assumed_master.clear();
  }
}

void GroupReconciler::on_info(const std::string& address, TimeMs sent_at,
                              const ReplicationInfo& info) {
  Server& s = server(address);
  if (s.info && sent_at < s.info_sent_at) return;
  s.info = info;
  s.info_sent_at = sent_at;
  s.reachable = true;
}

void GroupReconciler::set_reachable(const std::string& address, bool reachable) {
  server(address).reachable = reachable;
}

void GroupReconciler::on_reply(const std::string& address, const CommandReply& reply, TimeMs now) {
  Server& s = server(address);
  bool current = s.in_flight_generation == group_.generation;
  s.in_flight = false;
  s.replied_at = now;
  s.assumed_role.reset();
  s.assumed_master.clear();
  if (!reply.is_ok() || !current) return;
  if (address == group_.primary) {
    s.assumed_role = Role::kPrimary;
  } else {
    s.assumed_role = Role::kReplica;
    s.assumed_master = group_.primary;
  }
}

std::optional<std::pair<Role, std::string>> GroupReconciler::known(const Server& s) const {
  if (fresh(s)) return std::make_pair(s.info->role, s.info->master_address());
  if (s.assumed_role) return std::make_pair(*s.assumed_role, s.assumed_master);
  return std::nullopt;
}

bool GroupReconciler::primary_promoted() const {
  auto it = servers_.find(group_.primary);
  if (it == servers_.end()) return false;
  auto k = known(it->second);
  return k && k->first == Role::kPrimary;
}

ReconcileStatus GroupReconciler::check_candidate(TimeMs now) const {
  ReconcileStatus st;
  const std::string& primary = group_.primary;
  if (now < promote_not_before_) {
    st.state = ReconcileState::kWaitingLease;
    st.detail = fmt::format(
        "{} is promoted in {} ms, once every configuration lease that let a "
        "Lockstep replica write to the old primary has run out",
        primary, promote_not_before_ - now);
    st.waiting_for = {primary};
    return st;
  }
  auto p = servers_.find(primary);
  if (p == servers_.end() || !p->second.reachable) {
    st.state = ReconcileState::kPrimaryUnreachable;
    st.detail = fmt::format("the new primary {} does not answer", primary);
    st.waiting_for = {primary};
    return st;
  }
  const Server& ps = p->second;
  if (!fresh(ps) || ps.info_sent_at < promote_not_before_) {
    st.state = ReconcileState::kCheckingCandidate;
    st.detail = fmt::format("reading {}'s replication offset before promoting it", primary);
    st.waiting_for = {primary};
    return st;
  }
  const std::string stream = ps.info->master_address();
  const int64_t offset = ps.info->offset();
  int64_t best = offset;
  for (const std::string& other : group_.replicas) {
    auto it = servers_.find(other);
    if (it == servers_.end() || !it->second.reachable) continue;  // down: nothing to compare
    const Server& s = it->second;
    if (!s.info || s.info_sent_at < promote_not_before_) {
      st.waiting_for.push_back(other);
      continue;
    }
    if (s.info->role != Role::kReplica || s.info->master_address() != stream) continue;
    if (s.info->offset() > best) {
      best = s.info->offset();
      st.better = other;
    }
  }
  if (!st.better.empty()) {
    st.state = ReconcileState::kCandidateBehind;
    st.detail = fmt::format(
        "{} (offset {}) is ahead of the decided primary {} (offset {}) on "
        "the stream of {}: re-deciding",
        st.better, best, primary, offset, stream);
    st.waiting_for.clear();
    return st;
  }
  if (!st.waiting_for.empty()) {
    st.state = ReconcileState::kCheckingCandidate;
    st.detail = fmt::format("reading the offsets of {} before promoting {}",
                            fmt::join(st.waiting_for, ", "), primary);
    return st;
  }
  st.state = ReconcileState::kPromoting;
  st.detail = fmt::format("promoting {} (offset {}, no reachable replica ahead)", primary, offset);
  st.waiting_for = {primary};
  return st;
}

std::vector<ReconcileAction> GroupReconciler::poll(TimeMs now) {
  std::vector<ReconcileAction> actions;
  if (group_.primary.empty() || group_.sentinel) return actions;
  const std::string& primary = group_.primary;
  if (!primary_promoted()) {
    Server& p = server(primary);
    if (p.in_flight || !p.reachable) return actions;
    // Without a fresh INFO saying "replica" there is nothing to act on yet (a server that never
    // answered, or whose last command's effect is not yet visible).
    auto k = known(p);
    if (!k || k->first != Role::kReplica) return actions;
    ReconcileStatus st = check_candidate(now);
    if (st.state != ReconcileState::kPromoting) return actions;
    p.in_flight = true;
    p.in_flight_generation = group_.generation;
    actions.push_back(
        {promote_command(primary),
         fmt::format("backend '{}' generation {}: {}", backend_, group_.generation, st.detail)});
    return actions;
  }
  for (const std::string& address : group_.replicas) {
    Server& s = server(address);
    if (!s.reachable || s.in_flight) continue;
    auto k = known(s);
    if (!k) continue;
    std::string why;
    if (k->first == Role::kPrimary) {
      why = fmt::format(
          "{} says it is a primary (the old primary back, or promoted by hand), but the "
          "primary of backend '{}' is {} (generation {}): making it a replica",
          address, backend_, primary, group_.generation);
    } else if (k->first == Role::kReplica && k->second != primary) {
      why = fmt::format(
          "{} replicates from {}, but the primary of backend '{}' is {} "
          "(generation {}): re-pointing it",
          address, k->second, backend_, primary, group_.generation);
    } else {
      continue;
    }
    s.in_flight = true;
    s.in_flight_generation = group_.generation;
    actions.push_back({replicate_command(address, primary), std::move(why)});
  }
  return actions;
}

ReconcileStatus GroupReconciler::status(TimeMs now) const {
  if (!primary_promoted()) {
    ReconcileStatus st = check_candidate(now);
    auto p = servers_.find(group_.primary);
    if (st.state == ReconcileState::kPromoting && p != servers_.end() && p->second.in_flight) {
      st.detail = fmt::format("REPLICAOF NO ONE sent to {}", group_.primary);
    }
    return st;
  }
  ReconcileStatus st;
  bool all_reachable_agree = true;
  for (const std::string& address : group_.replicas) {
    auto it = servers_.find(address);
    if (it == servers_.end() || !it->second.reachable) {
      st.waiting_for.push_back(address);
      continue;
    }
    auto k = known(it->second);
    if (!k || k->first != Role::kReplica || k->second != group_.primary) {
      st.waiting_for.push_back(address);
      all_reachable_agree = false;
    }
  }
  st.state = all_reachable_agree ? ReconcileState::kConverged : ReconcileState::kRepointing;
  st.detail = st.waiting_for.empty() ? fmt::format("every server follows {}", group_.primary)
                                     : fmt::format("{} is the primary; not yet following it: {}",
                                                   group_.primary, fmt::join(st.waiting_for, ", "));
  return st;
}

}  // namespace lockstep::failover

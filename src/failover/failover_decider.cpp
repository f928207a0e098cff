// The leader's failover decision; see failover_decider.h.
#include "lockstep/failover/failover_decider.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace lockstep::failover {

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kHealthy:
      return "healthy";
    case Verdict::kSuspected:
      return "suspected";
    case Verdict::kPending:
      return "pending";
    case Verdict::kRateLimited:
      return "rate-limited";
    case Verdict::kNoCandidate:
      return "no-candidate";
    case Verdict::kAllDown:
      return "all-down";
    case Verdict::kDecided:
      return "decided";
    case Verdict::kSentinel:
      return "sentinel";
  }
  return "?";
}

FailoverDecider::FailoverDecider(ReplicaId self, DeciderOptions options)
    : self_(self), options_(options) {}

void FailoverDecider::set_voters(std::vector<ReplicaId> voters) {
  voters_ = std::move(voters);
}

void FailoverDecider::on_report(HealthReport report, TimeMs now) {
  ReplicaId from = report.from;
  reports_[from] = Received{now, std::move(report)};
}

void FailoverDecider::on_primary_changed(const std::string& backend, uint64_t generation,
                                         TimeMs now, TimeMs age_ms) {
  age_ms = std::clamp<TimeMs>(age_ms, 0, options_.min_interval_ms);
  changed_at_[backend] = now - age_ms;
  auto it = pending_.find(backend);
  if (it != pending_.end() && it->second.generation < generation) pending_.erase(it);
}

void FailoverDecider::on_proposal_failed(const std::string& backend) {
  pending_.erase(backend);
}

std::vector<const ServerView*> FailoverDecider::views(const std::string& server, TimeMs now) const {
  std::vector<const ServerView*> out;
  for (ReplicaId voter : voters_) {
    auto it = reports_.find(voter);
    if (it == reports_.end() || now - it->second.at > options_.report_ttl_ms) continue;
    if (const ServerView* view = it->second.report.find(server)) out.push_back(view);
  }
  return out;
}

const ServerView* FailoverDecider::own_view(const std::string& server, TimeMs now) const {
  auto it = reports_.find(self_);
  if (it == reports_.end() || now - it->second.at > options_.report_ttl_ms) return nullptr;
  return it->second.report.find(server);
}

bool FailoverDecider::pending(const std::string& backend, const Group& group, TimeMs now) const {
  auto it = pending_.find(backend);
  return it != pending_.end() && it->second.generation == group.generation &&
         now - it->second.proposed_at < options_.proposal_retry_ms;
}

std::vector<Assessment> FailoverDecider::evaluate(const ReplicationGroups& groups, TimeMs now) {
  std::vector<Assessment> out;
  for (const auto& [backend, group] : groups.groups()) out.push_back(evaluate(backend, group, now));
  return out;
}

Assessment FailoverDecider::evaluate(const std::string& backend, const Group& group, TimeMs now) {
  Assessment a;
  a.backend = backend;
  if (group.sentinel) {
    a.verdict = Verdict::kSentinel;
    a.detail = "Sentinel decides this group's primary";
    return a;
  }
  std::vector<const ServerView*> primary_views = views(group.primary, now);
  size_t down = static_cast<size_t>(std::count_if(primary_views.begin(), primary_views.end(),
                                                  [](const ServerView* v) { return !v->up; }));
  if (down < majority()) {
    a.verdict = down > 0 ? Verdict::kSuspected : Verdict::kHealthy;
    a.detail = fmt::format("{} of {} Lockstep replicas see primary {} down ({} needed)", down,
                           voters_.size(), group.primary, majority());
    return a;
  }
  if (pending(backend, group, now)) {
    a.verdict = Verdict::kPending;
    a.detail = fmt::format("a failover of generation {} is being committed", group.generation);
    return a;
  }
  return decide(backend, group, now);
}

Assessment FailoverDecider::decide(const std::string& backend, const Group& group, TimeMs now) {
  Assessment a;
  a.backend = backend;

  std::vector<std::string> servers = group.servers();
  bool all_down = true;
  for (const std::string& server : servers) {
    const ServerView* view = own_view(server, now);
    if (view == nullptr || view->up) all_down = false;
  }
  if (all_down) {
    a.verdict = Verdict::kAllDown;
    a.detail = fmt::format("ERR backend '{}': every server of its group is down ({})", backend,
                           fmt::join(servers, ", "));
    return a;
  }

  auto changed = changed_at_.find(backend);
  if (changed != changed_at_.end() && now - changed->second < options_.min_interval_ms) {
    std::vector<const ServerView*> seen = views(group.primary, now);
    bool promoted = std::any_of(seen.begin(), seen.end(),
                                [](const ServerView* v) { return v->role == Role::kPrimary; });
    if (promoted) {
      a.verdict = Verdict::kRateLimited;
      a.detail = fmt::format(
          "primary {} is down for a majority, but backend '{}' failed over {} ms ago; the next "
          "failover may start in {} ms (failover.min_interval_ms)",
          group.primary, backend, now - changed->second,
          options_.min_interval_ms - (now - changed->second));
      return a;
    }
  }

  // Replicas of the primary hold its stream. If the primary was itself never promoted (it died
  // while a previous failover waited for leases), its siblings on its own master's stream do.
  std::vector<std::string> streams{group.primary};
  if (const ServerView* primary = own_view(group.primary, now);
      primary != nullptr && primary->role == Role::kReplica && !primary->master.empty()) {
    streams.push_back(primary->master);
  }
  const std::string* best = nullptr;
  int64_t best_offset = -1;
  std::vector<std::string> rejected;
  for (const std::string& replica : group.replicas) {
    const ServerView* view = own_view(replica, now);
    std::string why;
    if (view == nullptr) {
      why = "no view from the leader";
    } else if (!view->up) {
      why = "down";
    } else if (view->role != Role::kReplica) {
      why = fmt::format("role {}", role_name(view->role));
    } else if (std::find(streams.begin(), streams.end(), view->master) == streams.end()) {
      why = fmt::format("replicates from {}", view->master.empty() ? "?" : view->master);
    } else if (view->offset < 0) {
      why = "offset unknown";
    }
    if (!why.empty()) {
      rejected.push_back(fmt::format("{} {}", replica, why));
      continue;
    }
    if (view->offset > best_offset) {
      best = &replica;
      best_offset = view->offset;
    }
  }
  if (best == nullptr) {
    a.verdict = Verdict::kNoCandidate;
    a.detail = fmt::format("ERR backend '{}': primary {} is down and no replica can take over ({})",
                           backend, group.primary,
                           rejected.empty() ? std::string("no replicas")
                                            : fmt::format("{}", fmt::join(rejected, "; ")));
    return a;
  }
  a.verdict = Verdict::kDecided;
  a.decision = FailoverDecision{backend, group.primary, *best, group.generation,
                                fmt::format("primary {} down for a majority of Lockstep replicas; "
                                            "{} has the highest offset ({})",
                                            group.primary, *best, best_offset)};
  a.detail = a.decision->reason;
  pending_[backend] = Pending{group.generation, now};
  return a;
}

std::optional<FailoverDecision> FailoverDecider::redirect(const std::string& backend,
                                                          const Group& group,
                                                          const std::string& better, TimeMs now) {
  if (group.sentinel || pending(backend, group, now)) return std::nullopt;
  if (std::find(group.replicas.begin(), group.replicas.end(), better) == group.replicas.end()) {
    return std::nullopt;
  }
  const ServerView* view = own_view(better, now);
  if (view == nullptr || !view->up) return std::nullopt;
  pending_[backend] = Pending{group.generation, now};
  return FailoverDecision{backend, group.primary, better, group.generation,
                          fmt::format("{} was chosen but {} is further ahead ({}); promoting it "
                                      "instead so no write a replica confirmed is lost",
                                      group.primary, better, view->offset)};
}

}  // namespace lockstep::failover

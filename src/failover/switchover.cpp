// The planned switchover; see switchover.h for the sequence and why it loses no write.
#include "lockstep/failover/switchover.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "lockstep/failover/config_lease.h"

namespace lockstep::failover {
namespace {

ServerCommand info(const std::string& server) {
  return {server, {"INFO", "replication"}};
}

ServerCommand pause(const std::string& server, TimeMs pause_ms) {
  return {server, {"CLIENT", "PAUSE", std::to_string(pause_ms), "WRITE"}};
}

ServerCommand unpause(const std::string& server) {
  return {server, {"CLIENT", "UNPAUSE"}};
}

std::string describe(const CommandReply& reply) {
  return reply.kind == CommandReply::Kind::kNoReply ? fmt::format("no reply ({})", reply.text)
                                                    : reply.text;
}

void merge(SwitchoverEffects& into, SwitchoverEffects more) {
  for (ServerCommand& c : more.commands) into.commands.push_back(std::move(c));
  if (more.propose) into.propose = std::move(more.propose);
  if (more.wake_at) into.wake_at = more.wake_at;
}

}  // namespace

std::string_view switchover_state_name(SwitchoverState state) {
  switch (state) {
    case SwitchoverState::kPrecheck:
      return "precheck";
    case SwitchoverState::kPausing:
      return "pausing";
    case SwitchoverState::kReadingOffset:
      return "reading-offset";
    case SwitchoverState::kCatchingUp:
      return "catching-up";
    case SwitchoverState::kCommitting:
      return "committing";
    case SwitchoverState::kRepausing:
      return "repausing";
    case SwitchoverState::kPromoting:
      return "promoting";
    case SwitchoverState::kDemoting:
      return "demoting";
    case SwitchoverState::kUnpausing:
      return "unpausing";
    case SwitchoverState::kRepointing:
      return "repointing";
    case SwitchoverState::kAborting:
      return "aborting";
    case SwitchoverState::kDone:
      return "done";
    case SwitchoverState::kFailed:
      return "failed";
    case SwitchoverState::kHandedOver:
      return "handed-over";
  }
  return "?";
}

Switchover::Switchover(std::string backend, Group group, std::string target,
                       SwitchoverOptions options, TimeMs lease_wait_ms)
    : backend_(std::move(backend)),
      group_(std::move(group)),
      target_(std::move(target)),
      target_given_(!target_.empty()),
      options_(options),
      lease_wait_ms_(lease_wait_ms) {}

std::string Switchover::validate() const {
  if (group_.sentinel) {
    return fmt::format(
        "ERR backend '{}' is managed by Sentinel: switch it with SENTINEL "
        "FAILOVER",
        backend_);
  }
  if (group_.primary.empty()) return fmt::format("ERR backend '{}' has no primary", backend_);
  if (group_.replicas.empty()) {
    return fmt::format("ERR backend '{}' has no replica to switch to", backend_);
  }
  if (target_given_ && target_ == group_.primary) {
    return fmt::format("ERR {} is already the primary of backend '{}'", target_, backend_);
  }
  if (target_given_ &&
      std::find(group_.replicas.begin(), group_.replicas.end(), target_) == group_.replicas.end()) {
    return fmt::format("ERR {} is not a replica of backend '{}' (replicas: {})", target_, backend_,
                       fmt::join(group_.replicas, ", "));
  }
  if (options_.pause_ms <= lease_wait_ms_) {
    return fmt::format(
        "ERR the write pause ({} ms) must outlast the configuration lease wait "
        "({} ms)",
        options_.pause_ms, lease_wait_ms_);
  }
  if (options_.catch_up_timeout_ms >= options_.pause_ms) {
    return fmt::format(
        "ERR the catch-up timeout ({} ms) must be shorter than the write pause "
        "({} ms)",
        options_.catch_up_timeout_ms, options_.pause_ms);
  }
  return {};
}

TimeMs Switchover::pause_ms() const {
  if (pause_sent_at_ < 0 || unpause_sent_at_ < 0) return -1;
  return unpause_sent_at_ - pause_sent_at_;
}

std::vector<std::string> Switchover::candidates() const {
  if (target_given_) return {target_};
  return group_.replicas;
}

SwitchoverEffects Switchover::send(SwitchoverState next, std::vector<ServerCommand> commands,
                                   TimeMs now) {
  state_ = next;
  awaiting_.clear();
  for (const ServerCommand& c : commands) awaiting_.insert(c.server);
  step_deadline_ = now + options_.step_timeout_ms;
  SwitchoverEffects fx;
  fx.commands = std::move(commands);
  fx.wake_at = step_deadline_;
  return fx;
}

SwitchoverEffects Switchover::abort(std::string error, TimeMs now) {
  error_ = std::move(error);
  if (pause_sent_at_ < 0) {
    state_ = SwitchoverState::kFailed;
    awaiting_.clear();
    return {};
  }
  // The pause may be in effect even if its reply was lost: release it either way.
  unpause_sent_at_ = now;
  return send(SwitchoverState::kAborting, {unpause(group_.primary)}, now);
}

SwitchoverEffects Switchover::hand_over(std::string error) {
  state_ = SwitchoverState::kHandedOver;
  error_ = std::move(error);
  awaiting_.clear();
  return {};
}

SwitchoverEffects Switchover::start(TimeMs now) {
  if (std::string error = validate(); !error.empty()) {
    state_ = SwitchoverState::kFailed;
    error_ = std::move(error);
    return {};
  }
  std::vector<ServerCommand> probes{info(group_.primary)};
  for (const std::string& c : candidates()) probes.push_back(info(c));
  return send(SwitchoverState::kPrecheck, std::move(probes), now);
}

SwitchoverEffects Switchover::after_precheck(TimeMs now) {
  const std::string& primary = group_.primary;
  auto p = prechecked_.find(primary);
  if (p == prechecked_.end() || p->second.role != Role::kPrimary) {
    state_ = SwitchoverState::kFailed;
    error_ = fmt::format("ERR backend '{}': its primary {} {}", backend_, primary,
                         p == prechecked_.end()
                             ? fmt::format("did not answer INFO ({})", precheck_errors_[primary])
                             : std::string("does not say role master"));
    return {};
  }
  std::vector<std::string> refused;
  std::string best;
  int64_t best_offset = -1;
  for (const std::string& c : candidates()) {
    auto it = prechecked_.find(c);
    std::string why;
    if (it == prechecked_.end()) {
      why = fmt::format("did not answer ({})", precheck_errors_[c]);
    } else if (it->second.role != Role::kReplica || it->second.master_address() != primary) {
      why = fmt::format("does not replicate from {}", primary);
    } else if (!it->second.master_link_up) {
      why = "has its replication link down";
    }
    if (!why.empty()) {
      refused.push_back(fmt::format("{} {}", c, why));
      continue;
    }
    if (it->second.replica_offset > best_offset) {
      best = c;
      best_offset = it->second.replica_offset;
    }
  }
  if (best.empty()) {
    state_ = SwitchoverState::kFailed;
    error_ = fmt::format("ERR backend '{}': no replica can take over from {} ({})", backend_,
                         primary, fmt::join(refused, "; "));
    return {};
  }
  target_ = best;
  pause_sent_at_ = now;
  return send(SwitchoverState::kPausing, {pause(primary, options_.pause_ms)}, now);
}

SwitchoverEffects Switchover::on_reply(const std::string& server, const CommandReply& reply,
                                       TimeMs now) {
  if (!awaiting_.erase(server)) return {};  // late reply to a step that is over
  const std::string& primary = group_.primary;
  switch (state_) {
    case SwitchoverState::kPrecheck: {
      if (reply.is_ok()) {
        ParsedReplicationInfo parsed = parse_replication_info(reply.text);
        if (parsed.info) {
          prechecked_[server] = *parsed.info;
        } else {
          precheck_errors_[server] = parsed.error;
        }
      } else {
        precheck_errors_[server] = describe(reply);
      }
      if (!awaiting_.empty()) return {};
      return after_precheck(now);
    }
    case SwitchoverState::kPausing:
      if (!reply.is_ok()) {
        return abort(fmt::format("ERR CLIENT PAUSE on {} failed: {}", primary, describe(reply)),
                     now);
      }
      paused_ = true;
      return send(SwitchoverState::kReadingOffset, {info(primary)}, now);
    case SwitchoverState::kReadingOffset: {
      ParsedReplicationInfo parsed =
          reply.is_ok() ? parse_replication_info(reply.text) : ParsedReplicationInfo{};
      if (!parsed.info || parsed.info->role != Role::kPrimary) {
        return abort(fmt::format("ERR could not read {}'s replication offset: {}", primary,
                                 reply.is_ok() ? parsed.error : describe(reply)),
                     now);
      }
      target_offset_ = parsed.info->master_repl_offset;
      return send(SwitchoverState::kCatchingUp, {info(target_)}, now);
    }
    case SwitchoverState::kCatchingUp: {
      if (reply.is_ok()) {
        ParsedReplicationInfo parsed = parse_replication_info(reply.text);
        if (parsed.info && parsed.info->role == Role::kReplica &&
            parsed.info->master_address() == primary) {
          target_seen_offset_ = parsed.info->replica_offset;
          if (target_seen_offset_ >= target_offset_) {
            state_ = SwitchoverState::kCommitting;
            // The commit must land while the first pause still holds, with room for the
            // re-pause to reach the old primary.
            TimeMs pause_end = pause_sent_at_ + options_.pause_ms - options_.step_timeout_ms;
            step_deadline_ = std::min(now + options_.commit_timeout_ms, pause_end);
            SwitchoverEffects fx;
            fx.propose = FailoverDecision{
                backend_, primary, target_, group_.generation,
                fmt::format("planned switchover: {} caught up with {} at offset {}", target_,
                            primary, target_offset_)};
            fx.wake_at = step_deadline_;
            return fx;
          }
        }
      }
      if (now - pause_sent_at_ >= options_.catch_up_timeout_ms) {
        return abort(
            fmt::format("ERR {} did not catch up with {} within {} ms (offset {} of {})", target_,
                        primary, options_.catch_up_timeout_ms, target_seen_offset_, target_offset_),
            now);
      }
      SwitchoverEffects fx;
      step_deadline_ = now + options_.poll_interval_ms;
      fx.wake_at = step_deadline_;
      return fx;
    }
    case SwitchoverState::kRepausing: {
      if (!reply.is_ok()) {
        return hand_over(
            fmt::format("could not renew the write pause on {} ({}); the "
                        "reconciler finishes the switch with the lease wait",
                        primary, describe(reply)));
      }
      // The first pause surely held until the old primary executed the renewal only if this
      // reply came before it could have lapsed (1 % clock-rate error each side).
      double first_pause =
          static_cast<double>(options_.pause_ms) * (1 - 2 * ConfigLease::kClockRateError);
      if (static_cast<double>(now - pause_sent_at_) >= first_pause) {
        return hand_over(
            fmt::format("the write pause on {} may have lapsed before the commit; "
                        "the reconciler finishes the switch with the lease wait",
                        primary));
      }
      return send(SwitchoverState::kPromoting, {promote_command(target_)}, now);
    }
    case SwitchoverState::kPromoting:
      if (!reply.is_ok()) {
        return hand_over(
            fmt::format("REPLICAOF NO ONE on {} failed ({}); the reconciler "
                        "finishes the switch",
                        target_, describe(reply)));
      }
      return send(SwitchoverState::kDemoting, {replicate_command(primary, target_)}, now);
    case SwitchoverState::kDemoting:
      if (!reply.is_ok()) {
        return hand_over(
            fmt::format("REPLICAOF {} on the old primary {} failed ({}); it stays "
                        "paused until the reconciler re-points it",
                        target_, primary, describe(reply)));
      }
      unpause_sent_at_ = now;
      return send(SwitchoverState::kUnpausing, {unpause(primary)}, now);
    case SwitchoverState::kUnpausing: {
      // Whatever the reply: the old primary is a replica now, and its pause ends by itself.
      std::vector<ServerCommand> repoint;
      for (const std::string& r : group_.replicas) {
        if (r != target_) repoint.push_back(replicate_command(r, target_));
      }
      if (repoint.empty()) {
        state_ = SwitchoverState::kDone;
        return {};
      }
      return send(SwitchoverState::kRepointing, std::move(repoint), now);
    }
    case SwitchoverState::kRepointing:
      if (!reply.is_ok()) {
        error_ += fmt::format("{}{} not re-pointed ({}): left to the reconciler",
                              error_.empty() ? "" : "; ", server, describe(reply));
      }
      if (awaiting_.empty()) state_ = SwitchoverState::kDone;
      return {};
    case SwitchoverState::kAborting:
      state_ = SwitchoverState::kFailed;
      return {};
    case SwitchoverState::kCommitting:
    case SwitchoverState::kDone:
    case SwitchoverState::kFailed:
    case SwitchoverState::kHandedOver:
      break;
  }
  return {};
}

SwitchoverEffects Switchover::on_committed(bool ok, const std::string& error, TimeMs now) {
  if (state_ != SwitchoverState::kCommitting) return {};
  if (!ok) return abort(fmt::format("ERR the switch was not committed: {}", error), now);
  committed_ = true;
  committed_at_ = now;
  return send(SwitchoverState::kRepausing, {pause(group_.primary, options_.pause_ms)}, now);
}

SwitchoverEffects Switchover::on_timer(TimeMs now) {
  if (finished() || now < step_deadline_) return {};
  if (state_ == SwitchoverState::kCommitting) {
    return abort(fmt::format("ERR the switch was not committed before the write pause on {} "
                             "could lapse",
                             group_.primary),
                 now);
  }
  if (state_ == SwitchoverState::kCatchingUp && awaiting_.empty()) {
    return send(SwitchoverState::kCatchingUp, {info(target_)}, now);  // the next probe
  }
  // Every server the step still waits for timed out.
  SwitchoverEffects fx;
  std::vector<std::string> late(awaiting_.begin(), awaiting_.end());
  for (const std::string& server : late) {
    merge(fx, on_reply(server, CommandReply::no_reply("timed out"), now));
  }
  return fx;
}

}  // namespace lockstep::failover

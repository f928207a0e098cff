// The configuration lease; the rule and the safety argument are in config_lease.h.
#include "lockstep/failover/config_lease.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "failover/wire.h"

namespace lockstep::failover {
namespace {
constexpr uint8_t kFormat = 1;
}

ConfigLease::ConfigLease(ReplicaId self, TimeMs lease_ms) : self_(self), lease_ms_(lease_ms) {}

void ConfigLease::set_voters(std::vector<ReplicaId> voters) {
  voters_ = std::move(voters);
  evaluate();
}

void ConfigLease::set_applied_index(uint64_t index) {
  if (index <= applied_index_) return;
  applied_index_ = index;
  evaluate();  // acks held back by a newer fence may count now
}

void ConfigLease::set_own_fence_index(uint64_t index) {
  own_fence_index_ = std::max(own_fence_index_, index);
}

bool ConfigLease::is_voter(ReplicaId id) const {
  return std::find(voters_.begin(), voters_.end(), id) != voters_.end();
}

LeaseRequest ConfigLease::start_round(TimeMs now) {
  uint64_t seq = next_seq_++;
  Round& round = rounds_[seq];
  round.started_at = now;
  // This replica's own vote is cast now, with what it has accepted and applied now.
  round.self_vote = is_voter(self_) && own_fence_index_ <= applied_index_;
  while (rounds_.size() > kMaxOpenRounds) rounds_.erase(rounds_.begin());
  evaluate();
  return {self_, seq};
}

void ConfigLease::on_ack(const LeaseAck& ack) {
  if (ack.to != self_ || ack.from == self_) return;
  auto it = rounds_.find(ack.seq);
  if (it == rounds_.end()) return;  // closed or forgotten: a newer round already counted
  it->second.fences[ack.from] = ack.fence_index;
  evaluate();
}

void ConfigLease::evaluate() {
  if (voters_.empty()) return;
  // Newest first: the first round with a majority gives the latest expiry, and closes the rest.
  for (auto it = rounds_.rbegin(); it != rounds_.rend(); ++it) {
    const Round& round = it->second;
    size_t votes = round.self_vote && is_voter(self_) ? 1 : 0;
    for (const auto& [from, fence] : round.fences) {
      if (is_voter(from) && fence <= applied_index_) ++votes;
    }
    if (votes < majority()) continue;
    expires_at_ = std::max(expires_at_, round.started_at + lease_ms_);
    rounds_.erase(rounds_.begin(), it.base());  // this round and every older one
    return;
  }
}

std::string ConfigLease::refusal(TimeMs now) const {
  if (expires_at_ == 0) {
    return "TRYAGAIN this Lockstep replica has not yet heard from a majority of its cluster "
           "(configuration lease not held): writes wait until it has";
  }
  return fmt::format(
      "TRYAGAIN this Lockstep replica has not heard from a majority of its cluster for {} ms "
      "(configuration lease expired): it takes no writes, so a primary the others may have "
      "demoted cannot acknowledge any",
      now - expires_at_ + lease_ms_);
}

LeaseAck ConfigLease::answer(const LeaseRequest& request, ReplicaId self, uint64_t accepted_fence) {
  return {self, request.from, request.seq, accepted_fence};
}

TimeMs ConfigLease::promotion_not_before(TimeMs applied_at, TimeMs lease_ms, size_t members) {
  if (members <= 1) return applied_at;  // nobody else routes writes
  double wait = static_cast<double>(lease_ms) * (1 + kClockRateError) / (1 - kClockRateError);
  return applied_at + static_cast<TimeMs>(std::ceil(wait)) + 1;
}

std::string encode_lease_request(const LeaseRequest& request) {
  wire::Writer w;
  w.u8(kFormat);
  w.u64(request.from);
  w.u64(request.seq);
  return w.take();
}

std::optional<LeaseRequest> decode_lease_request(std::string_view bytes) {
  wire::Reader r(bytes);
  if (r.u8() != kFormat) return std::nullopt;
  LeaseRequest request{r.u64(), r.u64()};
  if (!r.done()) return std::nullopt;
  return request;
}

std::string encode_lease_ack(const LeaseAck& ack) {
  wire::Writer w;
  w.u8(kFormat);
  w.u64(ack.from);
  w.u64(ack.to);
  w.u64(ack.seq);
  w.u64(ack.fence_index);
  return w.take();
}

std::optional<LeaseAck> decode_lease_ack(std::string_view bytes) {
  wire::Reader r(bytes);
  if (r.u8() != kFormat) return std::nullopt;
  LeaseAck ack;
  ack.from = r.u64();
  ack.to = r.u64();
  ack.seq = r.u64();
  ack.fence_index = r.u64();
  if (!r.done()) return std::nullopt;
  return ack;
}

}  // namespace lockstep::failover

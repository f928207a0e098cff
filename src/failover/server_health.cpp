#include "lockstep/failover/server_health.h"

namespace lockstep::failover {

bool ping_reply_is_alive(std::string_view reply_line) {
  if (reply_line.starts_with("+")) return true;
  return reply_line.starts_with("-LOADING") || reply_line.starts_with("-MASTERDOWN");
}

ServerHealth::ServerHealth(TimeMs now, TimeMs down_after_ms)
    : down_after_ms_(down_after_ms), last_answer_at_(now) {}

void ServerHealth::answered(TimeMs now, int64_t rtt_us) {
  // Replies may be handled out of order across connections; time never goes back here.
  if (now > last_answer_at_) last_answer_at_ = now;
  ever_answered_ = true;
  ++answers_;
  consecutive_failures_ = 0;
  if (rtt_us >= 0) latency_us_ = latency_us_ < 0 ? rtt_us : (4 * latency_us_ + rtt_us) / 5;
}

void ServerHealth::on_reply(TimeMs now, int64_t rtt_us) {
  answered(now, rtt_us);
}

void ServerHealth::on_failure(TimeMs, std::string why) {
  ++failures_;
  ++consecutive_failures_;
  last_failure_ = std::move(why);
}

void ServerHealth::on_info(TimeMs sent_at, TimeMs now, ReplicationInfo info, int64_t rtt_us) {
  answered(now, rtt_us);
  // An older probe's reply arriving after a newer one's must not roll the view back.
  if (info_ && sent_at < info_sent_at_) return;
  info_ = std::move(info);
  info_sent_at_ = sent_at;
}

}  // namespace lockstep::failover

// Backend eligibility bookkeeping and fence re-seeding (see quarantine.h for the why).
#include "lockstep/lock/quarantine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

namespace lockstep::lock {

Quarantine::Quarantine(const LockSettings& settings, int total_backends)
    : settings_(settings), states_(static_cast<size_t>(std::max(total_backends, 0))) {}

int64_t Quarantine::window(int64_t now_ms) const {
  const int64_t w = effective_quarantine_ms(settings_);
  return now_ms < floor_until_ ? std::max(w, floor_ms_) : w;
}

void Quarantine::update(const LockSettings& settings, int64_t now_ms) {
  const int64_t before = window(now_ms);
  settings_ = settings;
  if (effective_quarantine_ms(settings_) < before) {
    floor_ms_ = before;
    floor_until_ = now_ms + before;
  }
}

const Quarantine::State* Quarantine::get(BackendId b) const {
  if (b < 0 || static_cast<size_t>(b) >= states_.size()) return nullptr;
  return &states_[static_cast<size_t>(b)];
}

void Quarantine::quarantine(State& s, int64_t until_ms, std::string reason) {
  s.until_ms = std::max(s.until_ms, until_ms);
  s.reason = std::move(reason);
}

void Quarantine::observe_run_id(BackendId b, std::string_view run_id, int64_t now_ms,
                                std::optional<int64_t> uptime_s) {
  if (get(b) == nullptr) return;
  State& s = states_[static_cast<size_t>(b)];
  const int64_t window = this->window(now_ms);
  if (!s.run_id.empty() && s.run_id != run_id) {
    quarantine(s, now_ms + window, "restarted (run_id changed)");
    s.needs_reseed = true;
  } else if (s.run_id.empty() && uptime_s && *uptime_s * 1000 < window) {
    // Up for less than the window: it may have lost holds and counters just before we came.
    // Uptime has a resolution of one second, so round the remaining window up.
    quarantine(s, now_ms + window - *uptime_s * 1000 + 1000, "started recently");
    s.needs_reseed = true;
  }
  s.run_id.assign(run_id);
  s.verified = true;
}

void Quarantine::observe_time(BackendId b, int64_t backend_time_us, int64_t sent_ms,
                              int64_t received_ms) {
  if (get(b) == nullptr) return;
  State& s = states_[static_cast<size_t>(b)];
  const int64_t rtt = received_ms - sent_ms;
  if (rtt < 0 || rtt > settings_.clock_jump_tolerance_ms) return;  // too imprecise to judge
  // Offset of the backend's wall clock against our monotonic clock, at the round trip's middle.
  const int64_t offset_us = backend_time_us - (sent_ms + received_ms) * 500;
  if (s.has_offset) {
    const int64_t gap_ms = std::max<int64_t>(0, received_ms - s.sampled_ms);
    const int64_t allowed_us =
        settings_.clock_jump_tolerance_ms * 1000 + (rtt + s.rtt_ms) * 500 +
        static_cast<int64_t>(static_cast<double>(gap_ms) * settings_.drift_factor * 1000.0);
    const int64_t moved_us = offset_us - s.offset_us;
    if (std::llabs(moved_us) > allowed_us)
      quarantine(s, received_ms + window(received_ms),
                 fmt::format("clock jumped by {} ms", moved_us / 1000));
  }
  s.has_offset = true;
  s.offset_us = offset_us;
  s.rtt_ms = rtt;
  s.sampled_ms = received_ms;
}

void Quarantine::on_disconnected(BackendId b) {
  if (get(b) == nullptr) return;
  states_[static_cast<size_t>(b)].verified = false;
}

void Quarantine::mark_reseeded(BackendId b) {
  if (get(b) == nullptr) return;
  states_[static_cast<size_t>(b)].needs_reseed = false;
}

Quarantine::Status Quarantine::status(BackendId b, int64_t now_ms) const {
  const State* s = get(b);
  if (s == nullptr || !s->verified) return Status::kUnverified;
  if (now_ms < s->until_ms) return Status::kQuarantined;
  if (s->needs_reseed) return Status::kNeedsReseed;
  return Status::kEligible;
}

Backends Quarantine::backends(int64_t now_ms) const {
  Backends out;
  out.total = static_cast<int>(states_.size());
  for (BackendId b = 0; b < out.total; ++b)
    if (eligible(b, now_ms)) out.eligible.push_back(b);
  return out;
}

std::string_view Quarantine::reason(BackendId b) const {
  const State* s = get(b);
  return s ? std::string_view(s->reason) : std::string_view();
}

int64_t Quarantine::quarantined_until(BackendId b) const {
  const State* s = get(b);
  return s ? s->until_ms : 0;
}

bool Quarantine::needs_reseed(BackendId b) const {
  const State* s = get(b);
  return s != nullptr && s->needs_reseed;
}

std::optional<int64_t> Quarantine::next_change(int64_t now_ms) const {
  std::optional<int64_t> next;
  for (const State& s : states_)
    if (s.until_ms > now_ms && (!next || s.until_ms < *next)) next = s.until_ms;
  return next;
}

// ---------------------------------------------------------------------------------------------

FenceReseed::FenceReseed(BackendId target, int total_backends)
    : target_(target), total_(total_backends) {}

bool FenceReseed::add(BackendId source, std::string_view key, int64_t counter) {
  const std::string prefix = fence_key("");
  if (source == target_ || key.substr(0, prefix.size()) != prefix || counter < 0) return false;
  const std::string_view name = key.substr(prefix.size());
  auto it = max_.find(name);
  if (it == max_.end())
    max_.emplace(std::string(name), counter);
  else
    it->second = std::max(it->second, counter);
  return true;
}

void FenceReseed::source_complete(BackendId source) {
  if (source == target_ || source < 0 || source >= total_) return;
  if (std::find(complete_.begin(), complete_.end(), source) == complete_.end())
    complete_.push_back(source);
}

bool FenceReseed::ready() const {
  return static_cast<int>(complete_.size()) >= quorum(total_);
}

std::vector<std::string> FenceReseed::requests(uint64_t config_epoch) const {
  std::vector<std::string> out;
  out.reserve(max_.size());
  for (const auto& [name, value] : max_) {
    const std::string key = fence_key(name);
    const std::string v = fmt::format("{}", value);
    const std::string cfg = lockcfg_key();
    const std::string epoch = fmt::format("{}", config_epoch);
    const std::string_view keys[] = {key, cfg};
    const std::string_view args[] = {v, "0", epoch};
    out.push_back(script_request(kFenceWriteScript, ScriptMode::kEval, keys, args));
  }
  return out;
}

}  // namespace lockstep::lock

#include "lockstep/lock/reconfig.h"

#include <fmt/format.h>

#include <algorithm>

#include "lockstep/lock/redlock.h"
#include "lockstep/lock/scripts.h"

namespace lockstep::lock {

Reconfig::Reconfig(uint64_t epoch, std::vector<std::vector<int>> old_sets, std::vector<int> new_set,
                   int64_t drain_ms, bool bounded_by_holds, std::set<int> untrusted,
                   int64_t retry_ms)
    : epoch_(epoch),
      old_(std::move(old_sets)),
      new_(std::move(new_set)),
      drain_ms_(drain_ms),
      bounded_by_holds_(bounded_by_holds),
      untrusted_(std::move(untrusted)),
      retry_ms_(retry_ms) {}

int64_t Reconfig::drained_at() const {
  if (!fenced_) return 0;
  const bool trusted =
      bounded_by_holds_ &&
      std::none_of(fence_ok_.begin(), fence_ok_.end(), [&](int b) { return untrusted_.count(b); });
  if (!trusted) return fenced_at_ + drain_ms_;
  // Clock-rate margin on the keys' remaining life: 2% (twice the default drift factor) + 5 ms.
  return fenced_at_ + std::min(drain_ms_, live_ms_ + live_ms_ / 50 + 5);
}

std::string_view Reconfig::phase_name() const {
  switch (phase_) {
    case Phase::kFencing:
      return "fencing the old lock backends";
    case Phase::kSeeding:
      return "copying fence counters to the new lock backends";
    case Phase::kDraining:
      return "waiting for grants on the old lock backends to expire";
    case Phase::kDone:
      return "done";
  }
  return "";
}

namespace {
std::string epoch_request(uint64_t epoch, bool done) {
  const std::string key = lockcfg_key(), done_key = lockcfg_done_key();
  const std::string e = fmt::format("{}", epoch);
  const std::string_view keys[] = {key, done_key};
  const std::string_view args[] = {e, done ? "1" : "0"};
  return script_request(kLockEpochScript, ScriptMode::kEval, keys, args);
}
}  // namespace

void Reconfig::send_fences(const std::vector<int>& to, Kind kind, Effects& fx) const {
  const std::string req = epoch_request(epoch_, false);
  for (int b : to) fx.sends.push_back(Send{b, kind, req});
}

std::vector<Reconfig::Send> Reconfig::completion_requests() const {
  std::vector<Send> out;
  const std::string req = epoch_request(epoch_, true);
  for (int b : new_) out.push_back(Send{b, Kind::kSeed, req});
  return out;
}

void Reconfig::send_seeds(int backend, Effects& fx) {
  // The new backend gets the epoch too (so a replica still on an older set cannot use it
  // either), then every counter; all raise-only, so repeating them is harmless.
  send_fences({backend}, Kind::kSeed, fx);
  int n = 1;
  const std::string cfg = lockcfg_key();
  const std::string epoch = fmt::format("{}", epoch_);
  for (const auto& [key, value] : max_) {
    const std::string v = fmt::format("{}", value);
    const std::string_view keys[] = {key, cfg};
    const std::string_view args[] = {v, "0", epoch};
    fx.sends.push_back(Send{backend, Kind::kSeed,
                            script_request(kFenceWriteScript, ScriptMode::kEval, keys, args)});
    ++n;
  }
  seed_pending_[backend] = n;
}

Reconfig::Effects Reconfig::start(int64_t now) {
  Effects fx;
  std::set<int> all(new_.begin(), new_.end());
  for (const auto& set : old_) all.insert(set.begin(), set.end());
  // Only the old sets' answers matter for the fence; the new set's backends are fenced again
  // with their seed, but raising the epoch there early shuts out stale replicas sooner.
  std::vector<int> to(all.begin(), all.end());
  fence_waiting_.insert(to.begin(), to.end());
  send_fences(to, Kind::kFence, fx);
  fx.timer_ms = retry_ms_;
  advance(now, fx);
  return fx;
}

bool Reconfig::fenced() const {
  for (const auto& set : old_) {
    const int have = static_cast<int>(
        std::count_if(set.begin(), set.end(), [&](int b) { return fence_ok_.count(b) > 0; }));
    if (have < quorum(static_cast<int>(set.size()))) return false;
  }
  return true;
}

bool Reconfig::seeded() const {
  return static_cast<int>(seed_ok_.size()) >= quorum(static_cast<int>(new_.size()));
}

Reconfig::Effects Reconfig::on_reply(int backend, Kind kind, const Reply& reply, int64_t now) {
  if (reply.is_error()) return on_failure(backend, kind, now);
  Effects fx;
  if (phase_ == Phase::kDone) return fx;
  if (kind == Kind::kFence) {
    if (fence_waiting_.erase(backend) == 0) return fx;  // late: asked again since
    if (reply.type != Reply::Type::kArray || reply.elements.size() < 3 ||
        reply.elements.size() % 2 != 1 || !reply.elements[2].as_int())
      return on_failure(backend, kind, now);
    // Some replica already completed this change (or a later one): the new set is seeded and
    // the old ones drained, nothing is left to wait for. The mark is written only after
    // completion, and a backend that lost its data has no mark, so it can only be missed.
    if (phase_ == Phase::kFencing &&
        reply.elements[1].as_int().value_or(0) >= static_cast<int64_t>(epoch_)) {
      phase_ = Phase::kDone;
      fx.done = true;
      skipped_ = true;
      return fx;
    }
    // A backend that has already seen a newer epoch answers with it: a later change is under
    // way and will replace this one; its counters are still good to read. Counters read after
    // the seeds went out only add higher, real values to later re-sends: still safe.
    for (size_t i = 3; i + 1 < reply.elements.size(); i += 2) {
      const auto v = reply.elements[i + 1].as_int();
      const std::string& key = reply.elements[i].text;
      if (!v || !key.starts_with("__lockstep:fence:")) continue;
      auto [it, fresh] = max_.emplace(key, *v);
      if (!fresh) it->second = std::max(it->second, *v);
    }
    if (phase_ == Phase::kFencing) {
      fence_ok_.insert(backend);
      live_ms_ = std::max(live_ms_, *reply.elements[2].as_int());
    }
  } else {
    auto it = seed_pending_.find(backend);
    if (it != seed_pending_.end() && --it->second == 0) {
      seed_pending_.erase(it);
      if (!seed_failed_.count(backend)) seed_ok_.insert(backend);
    }
  }
  advance(now, fx);
  return fx;
}

Reconfig::Effects Reconfig::on_failure(int backend, Kind kind, int64_t now) {
  Effects fx;
  if (phase_ == Phase::kDone) return fx;
  if (kind == Kind::kFence) {
    fence_waiting_.erase(backend);  // asked again at the next retry while still fencing
  } else if (seed_pending_.count(backend)) {
    seed_failed_.insert(backend);
    if (--seed_pending_[backend] == 0) seed_pending_.erase(backend);
  }
  advance(now, fx);
  return fx;
}

Reconfig::Effects Reconfig::on_timer(int64_t now) {
  Effects fx;
  if (phase_ == Phase::kDone) return fx;
  // Ask again whoever has not answered usefully: requests may have been lost with a
  // connection, and every step is idempotent.
  if (phase_ == Phase::kFencing) {
    std::set<int> all;
    for (const auto& set : old_) all.insert(set.begin(), set.end());
    std::vector<int> again;
    for (int b : all)
      if (!fence_ok_.count(b)) again.push_back(b);
    fence_waiting_.insert(again.begin(), again.end());
    send_fences(again, Kind::kFence, fx);
  } else {
    for (int b : new_)
      if (!seed_ok_.count(b) && !seed_pending_.count(b)) {
        seed_failed_.erase(b);
        send_seeds(b, fx);
      }
  }
  fx.timer_ms = retry_ms_;
  advance(now, fx);
  return fx;
}

void Reconfig::advance(int64_t now, Effects& fx) {
  if (phase_ == Phase::kFencing && fenced()) {
    fenced_at_ = now;
    fenced_ = true;
    phase_ = Phase::kSeeding;
    for (int b : new_) send_seeds(b, fx);
  }
  if (phase_ == Phase::kSeeding && seeded()) phase_ = Phase::kDraining;
  if (phase_ == Phase::kDraining) {
    if (now >= drained_at()) {
      phase_ = Phase::kDone;
      fx.done = true;
      fx.timer_ms.reset();
      return;
    }
    fx.timer_ms = std::min(drained_at() - now, fx.timer_ms.value_or(drained_at() - now));
  }
}

}  // namespace lockstep::lock

#include "lockstep/failover/read_selector.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <climits>
#include <cstdint>
#include <vector>

namespace lockstep::failover {

std::optional<ReadFrom> parse_read_from(std::string_view text) {
  if (text == "primary") return ReadFrom::kPrimary;
  if (text == "prefer-replica") return ReadFrom::kPreferReplica;
  if (text == "replica") return ReadFrom::kReplica;
  if (text == "nearest") return ReadFrom::kNearest;
  return std::nullopt;
}

std::string_view read_from_name(ReadFrom policy) {
  switch (policy) {
    case ReadFrom::kPrimary:
      return "primary";
    case ReadFrom::kPreferReplica:
      return "prefer-replica";
    case ReadFrom::kReplica:
      return "replica";
    case ReadFrom::kNearest:
      return "nearest";
  }
  return "?";
}

ReadChoice ReadSelector::pick(std::string_view backend, ReadFrom policy,
                              std::span<const ReadCandidate> candidates, TimeMs max_lag_ms) {
  std::vector<std::string> why_not;
  auto replica_ok = [&](const ReadCandidate& c) {
    if (!c.up) {
      why_not.push_back(fmt::format("{} down", c.server));
    } else if (!c.replicating) {
      why_not.push_back(fmt::format("{} not replicating from the primary", c.server));
    } else if (!c.staleness_ms) {
      why_not.push_back(fmt::format("{} lag unknown", c.server));
    } else if (*c.staleness_ms > max_lag_ms) {
      why_not.push_back(
          fmt::format("{} lags {} ms > {} ms", c.server, *c.staleness_ms, max_lag_ms));
    } else {
      return true;
    }
    return false;
  };
  auto primary_ok = [&](const ReadCandidate& c) {
    if (c.up) return true;
    why_not.push_back(fmt::format("{} (primary) down", c.server));
    return false;
  };

  std::vector<int> allowed;
  auto collect = [&](bool replicas, bool primary) {
    for (size_t i = 0; i < candidates.size(); ++i) {
      const ReadCandidate& c = candidates[i];
      bool ok = c.is_primary ? (primary && primary_ok(c)) : (replicas && replica_ok(c));
      if (ok) allowed.push_back(static_cast<int>(i));
    }
  };
  switch (policy) {
    case ReadFrom::kPrimary:
      collect(false, true);
      break;
    case ReadFrom::kReplica:
      collect(true, false);
      break;
    case ReadFrom::kPreferReplica:
      collect(true, false);
      if (allowed.empty()) collect(false, true);
      break;
    case ReadFrom::kNearest:
      collect(true, true);
      break;
  }
  if (allowed.empty()) {
    bool all_down = true;
    for (const ReadCandidate& c : candidates) all_down = all_down && !c.up;
    if (all_down) {
      std::vector<std::string_view> names;
      for (const ReadCandidate& c : candidates) names.push_back(c.server);
      return {-1, fmt::format("ERR backend '{}' unavailable: every server of its group is down "
                              "({})",
                              backend, fmt::join(names, ", "))};
    }
    return {-1, fmt::format("ERR backend '{}': no server can serve this read (read_from {}): {}",
                            backend, read_from_name(policy), fmt::join(why_not, "; "))};
  }

  // Best first by the policy's measure, then a rotating start among equals.
  auto better = [&](int a, int b) {
    const ReadCandidate& x = candidates[static_cast<size_t>(a)];
    const ReadCandidate& y = candidates[static_cast<size_t>(b)];
    if (policy == ReadFrom::kNearest) {
      // Unknown latency sorts last: a server never measured is not known to be near.
      int64_t lx = x.latency_us < 0 ? INT64_MAX : x.latency_us;
      int64_t ly = y.latency_us < 0 ? INT64_MAX : y.latency_us;
      if (lx != ly) return lx < ly ? -1 : 1;
    }
    if (x.outstanding != y.outstanding) return x.outstanding < y.outstanding ? -1 : 1;
    return 0;
  };
  size_t start = rotation_++ % allowed.size();
  int best = allowed[start];
  for (size_t k = 1; k < allowed.size(); ++k) {
    int i = allowed[(start + k) % allowed.size()];
    if (better(i, best) < 0) best = i;
  }
  return {best, {}};
}

}  // namespace lockstep::failover

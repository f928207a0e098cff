#include "lockstep/txn/failpoint.h"

#include "lockstep/resp/resp.h"

namespace lockstep::txn {

std::optional<std::string> Failpoints::parse(std::string_view spec, Failpoints& out) {
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t end = spec.find(',', pos);
    if (end == std::string_view::npos) end = spec.size();
    std::string_view item = spec.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0)
      return "failpoint '" + std::string(item) + "' is not point=action";
    Point p;
    p.name.assign(item.substr(0, eq));
    std::string_view act = item.substr(eq + 1);
    if (const size_t at = act.find('@'); at != std::string_view::npos) {
      int64_t n = 0;
      if (!resp::parse_int64(act.substr(at + 1), n) || n <= 0)
        return "failpoint '" + std::string(item) + "': @n needs a positive count";
      p.nth = static_cast<uint64_t>(n);
      act = act.substr(0, at);
    }
    if (act == "crash") {
      p.action.kind = FailAction::Kind::kCrash;
    } else if (act == "drop") {
      p.action.kind = FailAction::Kind::kDrop;
    } else if (act.starts_with("stall:")) {
      int64_t ms = 0;
      if (!resp::parse_int64(act.substr(6), ms) || ms < 0)
        return "failpoint '" + std::string(item) + "': stall:<ms> needs a duration";
      p.action.kind = FailAction::Kind::kStall;
      p.action.stall_ms = static_cast<uint64_t>(ms);
    } else {
      return "failpoint '" + std::string(item) + "': action must be crash, stall:<ms> or drop";
    }
    out.points_.push_back(std::move(p));
  }
  return std::nullopt;
}

std::optional<FailAction> Failpoints::hit(std::string_view point) {
  for (auto& p : points_) {
    if (p.name != point) continue;
    const uint64_t n = p.hits->fetch_add(1, std::memory_order_relaxed) + 1;
    if (p.nth == 0 || p.nth == n) return p.action;
  }
  return std::nullopt;
}

}  // namespace lockstep::txn

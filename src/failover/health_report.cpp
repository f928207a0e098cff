#include "lockstep/failover/health_report.h"

#include "failover/wire.h"

namespace lockstep::failover {
namespace {
constexpr uint8_t kFormat = 1;
}

const ServerView* HealthReport::find(std::string_view server) const {
  for (const ServerView& view : servers) {
    if (view.server == server) return &view;
  }
  return nullptr;
}

ServerView make_view(const std::string& server, const ServerHealth& health, TimeMs now) {
  ServerView view;
  view.server = server;
  view.up = health.up(now);
  if (const auto& info = health.info()) {
    view.role = info->role;
    view.master = info->master_address();
    view.link_up = info->master_link_up;
    view.offset = info->offset();
  }
  return view;
}

std::string encode_report(const HealthReport& report) {
  wire::Writer w;
  w.u8(kFormat);
  w.u64(report.from);
  w.u32(static_cast<uint32_t>(report.servers.size()));
  for (const ServerView& v : report.servers) {
    w.str(v.server);
    w.u8(v.up ? 1 : 0);
    w.u8(static_cast<uint8_t>(v.role));
    w.str(v.master);
    w.u8(v.link_up ? 1 : 0);
    w.i64(v.offset);
  }
  return w.take();
}

std::optional<HealthReport> decode_report(std::string_view bytes) {
  wire::Reader r(bytes);
  if (r.u8() != kFormat) return std::nullopt;
  HealthReport report;
  report.from = r.u64();
  uint32_t n = r.count(4 + 1 + 1 + 4 + 1 + 8);
  for (uint32_t i = 0; i < n && r.ok(); ++i) {
    ServerView v;
    v.server = r.str();
    uint8_t up = r.u8();
    uint8_t role = r.u8();
    v.master = r.str();
    uint8_t link = r.u8();
    v.offset = r.i64();
    if (up > 1 || role > 2 || link > 1) return std::nullopt;
    v.up = up == 1;
    v.role = static_cast<Role>(role);
    v.link_up = link == 1;
    report.servers.push_back(std::move(v));
  }
  if (!r.done()) return std::nullopt;
  return report;
}

}  // namespace lockstep::failover

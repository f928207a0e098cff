// The client side of LOCKSTEP (the replicated configuration's admin commands): the access rule
// is checked here, on the client's worker; the command runs on the ClusterService's thread,
// which answers through deliver_external.
//
// Access: a connection that sent AUTH admin <admin_password>; when no admin_password is
// configured, any connection from loopback. Everyone else: -NOPERM.
#include <netinet/in.h>

#include "server/consensus/cluster_service.h"
#include "server/net/worker.h"

namespace lockstep::server {

bool Client::from_loopback() const {
  if (peer_.sa.sa_family == AF_INET) return (ntohl(peer_.v4.sin_addr.s_addr) >> 24) == 127;
  if (peer_.sa.sa_family == AF_INET6) {
    const in6_addr& a = peer_.v6.sin6_addr;
    if (IN6_IS_ADDR_LOOPBACK(&a)) return true;
    return IN6_IS_ADDR_V4MAPPED(&a) && a.s6_addr[12] == 127;
  }
  return peer_.sa.sa_family == AF_UNIX;
}

void Client::cmd_lockstep(std::span<const std::string_view> args) {
  SharedState& sh = worker_.shared();
  const bool allowed = admin_ || (sh.cfg.admin_password.empty() && from_loopback());
  if (!allowed) {
    reply_error(sh.cfg.admin_password.empty()
                    ? "NOPERM LOCKSTEP admin commands are only allowed from loopback when no "
                      "admin_password is configured"
                    : "NOPERM LOCKSTEP admin commands need AUTH admin <admin_password> first");
    return;
  }
  if (sh.cluster == nullptr) {
    reply_error("ERR the replicated configuration is not running");
    return;
  }
  uint64_t seq;
  new_slot(seq);
  ++slots_[static_cast<size_t>(seq - head_seq_)].waiting;  // answered by deliver_external
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (rest.size() >= 2 && proxy::iequals(rest[0], "CONFIG") && proxy::iequals(rest[1], "WATCH"))
    config_watcher_ = true;  // close() tells the cluster service to drop the wait
  sh.cluster->submit(AdminReplyTo{&worker_, id_, seq}, std::move(rest));
}

}  // namespace lockstep::server

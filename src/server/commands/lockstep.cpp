// The client side of LOCKSTEP (the replicated configuration's admin commands): the access rule
// is checked here, on the client's worker; the command runs on the ClusterService's thread,
// which answers through deliver_external.
//
// Access: a connection that sent AUTH admin <admin_password>; when no admin_password is
// configured, any connection from loopback. Everyone else: -NOPERM.
#include "server/commands/handlers.h"
#include "server/consensus/cluster_service.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

// A client waiting in LOCKSTEP CONFIG WATCH (a client part): closing it tells the cluster
// service to drop the wait.
class ClientAdmin final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kAdmin;
  void close(Client& c) override {
    if (c.shared().cluster != nullptr) c.shared().cluster->client_closed(&c.worker(), c.id());
  }
};

void lockstep(Client& c, const Request& r) {
  SharedState& sh = c.shared();
  const bool allowed = c.admin() || (sh.cfg.admin_password.empty() && c.from_loopback());
  if (!allowed) {
    c.reply_error(sh.cfg.admin_password.empty()
                      ? "NOPERM LOCKSTEP admin commands are only allowed from loopback when no "
                        "admin_password is configured"
                      : "NOPERM LOCKSTEP admin commands need AUTH admin <admin_password> first");
    return;
  }
  if (sh.cluster == nullptr) {
    c.reply_error("ERR the replicated configuration is not running");
    return;
  }
  const uint64_t seq = c.open_external_slot();
  std::vector<std::string> rest(r.args.begin() + 1, r.args.end());
  if (rest.size() >= 2 && proxy::iequals(rest[0], "CONFIG") && proxy::iequals(rest[1], "WATCH"))
    c.part<ClientAdmin>();
  sh.cluster->submit(AdminReplyTo{&c.worker(), c.id(), seq}, std::move(rest));
}

}  // namespace

void register_lockstep_commands(HandlerTable& t) {
  t.add("lockstep", lockstep);
}

}  // namespace lockstep::server

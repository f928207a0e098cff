// WAIT through a proxy: each backend is asked, on a connection of its own, to PUBLISH once (a
// replicated write that orders after everything this client wrote there, since those replies
// are already in: WAIT runs alone, kTraitExclusive) and then WAIT, so the count covers the
// client's earlier writes. The answer is the smallest count over the backends: that many
// replicas have everything, everywhere.
#include "server/commands/handlers.h"
#include "server/net/client_blocking.h"
#include "server/net/worker.h"

namespace lockstep::server {
namespace {

class WaitJob final : public Job {
 public:
  explicit WaitJob(size_t backends) : pending_(backends * 2) {}
  void on_reply(Client&, uint64_t, size_t part, std::string_view reply) override {
    --pending_;
    if (resp::is_error_reply(reply)) {
      if (error_.empty()) error_.assign(reply);
      return;
    }
    if (part % 2 == 0) return;  // the PUBLISH
    int64_t v = 0;
    if (resp::parse_integer_reply(reply, v) && (min_ < 0 || v < min_)) min_ = v;
  }
  bool done() const override { return pending_ == 0; }
  void finish(std::string& out) override {
    if (!error_.empty())
      out.append(error_);
    else
      resp::append_integer(out, min_ < 0 ? 0 : min_);
  }

 private:
  size_t pending_;
  int64_t min_ = -1;
  std::string error_;
};

void wait(Client& c, const Request& r) {
  int64_t v = 0;
  if (!resp::parse_int64(r.args[1], v)) {
    c.reply_error("ERR value is not an integer or out of range");
    return;
  }
  if (!resp::parse_int64(r.args[2], v)) {
    c.reply_error("ERR timeout is not an integer or out of range");
    return;
  }
  if (v < 0) {
    c.reply_error("ERR timeout is negative");
    return;
  }
  auto& blocking = c.part<ClientBlocking>();
  if (!blocking.begin(c)) return;
  const int n = c.worker().backend_count();
  uint64_t seq;
  c.start_job(std::make_unique<WaitJob>(static_cast<size_t>(n)), seq);
  static constexpr std::string_view kPublish =
      "*3\r\n$7\r\nPUBLISH\r\n$15\r\n__lockstep:wait\r\n$1\r\n1\r\n";
  for (int b = 0; b < n; ++b) {
    BackendConn& conn = blocking.connect(c, b);
    c.send_on(conn, seq, static_cast<size_t>(2 * b), kPublish);
    c.send_on(conn, seq, static_cast<size_t>(2 * b + 1), r.raw);
  }
  c.hold_later_requests();
}

}  // namespace

void register_wait_commands(HandlerTable& t) {
  t.add("wait", wait);
}

}  // namespace lockstep::server

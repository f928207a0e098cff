// The acceptor. It owns the listening socket (watched with uv_poll so accepted descriptors can be
// passed to any worker's loop), enforces limits.max_clients before a worker ever sees the
// connection, and turns SIGTERM/SIGINT into a drain of every worker.
#include "lockstep/server/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <functional>

#include "admin/metrics_http.h"
#include "server/consensus/cluster_service.h"
#include "server/lock/lock_service.h"
#include "lockstep/admin/logging.h"
#include "server/net/loop_util.h"
#include "server/txn/txn_service.h"
#include "server/net/worker.h"

namespace lockstep::server {

bool resolve_address(const config::HostPort& hp, sockaddr_storage& out, std::string& error);

namespace {

bool resolve(const config::HostPort& hp, sockaddr_storage& out, std::string& error) {
  return resolve_address(hp, out, error);
}

}  // namespace

bool resolve_address(const config::HostPort& hp, sockaddr_storage& out, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp.port);
  int rc = getaddrinfo(hp.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || res == nullptr) {
    error = gai_strerror(rc);
    return false;
  }
  std::memcpy(&out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

namespace {

class Acceptor {
 public:
  Acceptor(SharedState& shared, std::vector<std::unique_ptr<Worker>>& workers)
      : shared_(shared), workers_(workers) {}

  int listen_on(const config::HostPort& hp) {
    sockaddr_storage ss{};
    std::string err;
    if (!resolve(hp, ss, err)) {
      spdlog::critical("cannot resolve listen address {}: {}", hp.str(), err);
      return -1;
    }
    fd_ = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    socklen_t len = ss.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 511) != 0) {
      spdlog::critical("cannot listen on {}: {}", hp.str(), std::strerror(errno));
      ::close(fd_);
      fd_ = -1;
      return -1;
    }
    return 0;
  }

  int run() {
    uv_loop_init(&loop_);
    uv_poll_init(&loop_, &poll_, fd_);
    poll_.data = this;
    uv_poll_start(&poll_, UV_READABLE, on_readable);
    for (int signum : {SIGINT, SIGTERM}) {
      auto& s = signals_.emplace_back(std::make_unique<uv_signal_t>());
      uv_signal_init(&loop_, s.get());
      s->data = this;
      uv_signal_start(s.get(), on_signal, signum);
    }
    // SIGHUP: reopen log.file by name, after logrotate (or anyone) moved it away.
    auto& hup = signals_.emplace_back(std::make_unique<uv_signal_t>());
    uv_signal_init(&loop_, hup.get());
    uv_signal_start(hup.get(), on_hup, SIGHUP);
    uv_async_init(&loop_, &done_, [](uv_async_t* a) { uv_stop(a->loop); });
    uv_run(&loop_, UV_RUN_DEFAULT);
    // Drained (or drain deadline passed in every worker): tidy up.
    close_all_handles(&loop_);
    uv_loop_close(&loop_);
    if (fd_ >= 0) ::close(fd_);
    return 0;
  }

 private:
  static void on_readable(uv_poll_t* p, int status, int /*events*/) {
    auto* self = static_cast<Acceptor*>(p->data);
    if (status < 0) return;
    for (int i = 0; i < 256; ++i) {  // bounded so signals are not starved by a connect storm
      int fd = ::accept4(self->fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE)
          spdlog::error("accept: {} (raise the file descriptor limit)", std::strerror(errno));
        return;
      }
      self->shared_.stats.connections_received.fetch_add(1, std::memory_order_relaxed);
      if (self->shared_.stats.connected_clients.load() >= self->shared_.cfg.limits.max_clients) {
        static constexpr char kMsg[] = "-ERR max number of clients reached\r\n";
        (void)!::write(fd, kMsg, sizeof(kMsg) - 1);
        ::close(fd);
        self->shared_.stats.rejected_connections.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      self->shared_.stats.connected_clients.fetch_add(1);
      self->workers_[self->next_++ % self->workers_.size()]->post_connection(fd);
    }
  }

  static void on_hup(uv_signal_t*, int) {
    if (admin::reopen_log_file()) spdlog::info("SIGHUP: log file reopened");
  }

  static void on_signal(uv_signal_t* s, int signum) {
    auto* self = static_cast<Acceptor*>(s->data);
    if (self->draining_) {
      spdlog::warn("second signal {}: exiting without waiting for the drain", signum);
      std::_Exit(0);
    }
    self->draining_ = true;
    spdlog::info("signal {}: no new connections; finishing in-flight requests (up to {} ms)",
                 signum, self->shared_.cfg.timeouts.shutdown_ms);
    uv_poll_stop(&self->poll_);
    ::close(self->fd_);  // new connections are refused from now on
    self->fd_ = -1;
    // Workers are joined on a helper thread so this loop stays responsive to a second signal.
    self->joiner_ = std::thread([self] {
      for (auto& w : self->workers_) w->post_drain();
      if (self->before_join_) self->before_join_();
      for (auto& w : self->workers_) w->join();
      uv_async_send(&self->done_);
    });
  }

 public:
  // Runs on the drain thread after the workers were told to drain, before they are joined
  // (the cluster service stops there: it posts to the workers, so it must stop first).
  void set_before_join(std::function<void()> f) { before_join_ = std::move(f); }
  ~Acceptor() {
    if (joiner_.joinable()) joiner_.join();
  }

 private:
  SharedState& shared_;
  std::vector<std::unique_ptr<Worker>>& workers_;
  uv_loop_t loop_{};
  uv_poll_t poll_{};
  uv_async_t done_{};
  std::vector<std::unique_ptr<uv_signal_t>> signals_;
  int fd_ = -1;
  size_t next_ = 0;
  bool draining_ = false;
  std::thread joiner_;
  std::function<void()> before_join_;
};

}  // namespace

std::string check(const config::Config& cfg) {
  if (auto e = validate_locks(cfg)) return "locks: " + *e;
  txn::Failpoints fp;
  if (auto e = txn::Failpoints::parse(cfg.transactions.failpoints, fp))
    return "transactions.failpoints: " + *e;
  return {};
}

int run(const config::Config& cfg, const std::string& config_path) {
  signal(SIGPIPE, SIG_IGN);
  SharedState shared;
  shared.cfg = cfg;
  {
    config::ConfigError error;
    shared.acl = acl::Acl::from_config(cfg, error, config_path);
    if (!shared.acl) {
      spdlog::critical("invalid configuration: {}", error.format());
      return 1;
    }
  }
  shared.config_path = config_path;
  shared.table = &proxy::CommandTable::builtin();
  shared.limits.max_bulk_bytes = cfg.limits.max_bulk_bytes;
  shared.limits.max_request_bytes = cfg.limits.max_request_bytes;
  shared.limits.max_args = cfg.limits.max_args;
  shared.limits.max_inline_bytes = cfg.limits.max_inline_bytes;

  auto topo = std::make_shared<Topology>();
  for (const auto& b : cfg.backends) {
    BackendInfo info;
    info.name = b.name;
    info.address = b.address.str();
    info.cfg = b;
    std::string err;
    if (!resolve(b.address, info.sockaddr, err)) {
      spdlog::critical("cannot resolve backend {} ({}): {}", b.name, info.address, err);
      return 1;
    }
    topo->backends.push_back(std::move(info));
  }
  const int n = static_cast<int>(topo->backends.size());
  if (cfg.slots.empty()) {
    topo->slots = proxy::SlotMap::even(n);
  } else {
    std::vector<proxy::SlotRangeIdx> ranges;
    for (const auto& r : cfg.slots) {
      int idx = -1;
      for (int i = 0; i < n; ++i)
        if (topo->backends[i].name == r.backend) idx = i;
      ranges.push_back({r.from, r.to, idx});
    }
    std::string err;
    auto map = proxy::SlotMap::from_ranges(ranges, n, err);
    if (!map) {
      spdlog::critical("slot map: {}", err);
      return 1;
    }
    topo->slots = *map;
  }
  shared.topology = topo;
  shared.live_cfg = std::make_shared<const config::Config>(cfg);
  shared.isolation = SharedState::isolation_level(cfg.transactions.isolation);
  // The replicated configuration (a cluster of one, in memory, without `cluster`): what the
  // data dir holds is applied before the data plane starts, and may replace the YAML's map.
  std::vector<std::unique_ptr<Worker>> workers;
  auto cluster = std::make_unique<ClusterService>(shared, cfg);
  if (std::string e = cluster->open(); !e.empty()) {
    spdlog::critical("{}", e);
    return 1;
  }
  shared.topology = cluster->initial_topology(topo);
  if (auto e = init_failpoints(cfg)) {
    spdlog::critical("failpoints: {}", *e);
    return 1;
  }
  if (!check_backend_durability(cfg)) return 1;
  if (topo->backends.size() > kMaxBackends) {
    spdlog::critical("at most {} backends", kMaxBackends);
    return 1;
  }
  shared.backend_stats = std::make_unique<BackendStats[]>(kMaxBackends);

  const int nworkers = cfg.effective_workers();
  for (int i = 0; i < nworkers; ++i) workers.push_back(std::make_unique<Worker>(shared, i));
  for (auto& w : workers) shared.workers.push_back(w.get());

  Acceptor acceptor(shared, workers);
  if (acceptor.listen_on(cfg.listen) != 0) return 1;
  shared.cluster = cluster.get();
  acceptor.set_before_join([&cluster] { cluster->stop(); });
  // Declared after the workers, so it stops (and stops reading their counters) before they go.
  std::unique_ptr<admin::MetricsHttpServer> metrics;
  if (cfg.metrics.enabled()) {
    metrics = std::make_unique<admin::MetricsHttpServer>(
        [&shared] { return admin::render_metrics(gather_metrics(shared)); });
    std::string err;
    if (!metrics->start(cfg.metrics.listen.host, cfg.metrics.listen.port, err)) {
      spdlog::critical("metrics: {}", err);
      return 1;
    }
    spdlog::info("metrics on http://{}/metrics", cfg.metrics.listen.str());
  }
  cluster->start();
  for (auto& w : workers) w->start();
  spdlog::info("lockstep {} listening on {} with {} worker(s) over {} backend(s)", LOCKSTEP_VERSION,
               cfg.listen.str(), nworkers, n);
  int rc = acceptor.run();
  spdlog::info("drained; exiting");
  return rc;
}

}  // namespace lockstep::server

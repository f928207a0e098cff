#include "server/net/acceptor.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "lockstep/admin/logging.h"
#include "server/net/loop_util.h"
#include "server/net/worker.h"

namespace lockstep::server {

int Acceptor::listen_on(const config::HostPort& hp) {
  sockaddr_storage ss{};
  std::string err;
  if (!resolve_address(hp, ss, err)) {
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

int Acceptor::run() {
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

void Acceptor::on_readable(uv_poll_t* p, int status, int /*events*/) {
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

void Acceptor::on_hup(uv_signal_t*, int) {
  if (admin::reopen_log_file()) spdlog::info("SIGHUP: log file reopened");
}

void Acceptor::on_signal(uv_signal_t* s, int signum) {
  auto* self = static_cast<Acceptor*>(s->data);
  if (self->draining_) {
    spdlog::warn("second signal {}: exiting without waiting for the drain", signum);
    std::_Exit(0);
  }
  self->draining_ = true;
  spdlog::info("signal {}: no new connections; finishing in-flight requests (up to {} ms)", signum,
               self->shared_.cfg.timeouts.shutdown_ms);
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

Acceptor::~Acceptor() {
  if (joiner_.joinable()) joiner_.join();
}

}  // namespace lockstep::server

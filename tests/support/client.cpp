#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

#include "support/harness.h"

namespace lockstep::test {

// ---------------------------------------------------------------------------------------------
// Client

void Client::Free::operator()(redisContext* c) const {
  redisFree(c);
}

Client::Client(uint16_t port, Millis timeout, const std::string& host) : port_(port) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  ctx_.reset(redisConnectWithTimeout(host.c_str(), port, tv));
  if (ctx_ && !ctx_->err) redisSetTimeout(ctx_.get(), tv);
}

Client::~Client() = default;
Client::Client(Client&&) noexcept = default;
Client& Client::operator=(Client&&) noexcept = default;

bool Client::connected() const {
  return ctx_ && !ctx_->err;
}

std::string Client::error() const {
  if (!ctx_) return "no context (allocation failed)";
  return ctx_->err ? std::string(ctx_->errstr) : std::string();
}

Reply Client::command(const std::vector<std::string>& argv) {
  append(argv);
  return read_reply();
}

void Client::append(const std::vector<std::string>& argv) {
  if (!connected()) return;
  std::vector<const char*> ptrs;
  std::vector<size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), ptrs.data(), lens.data());
}

Reply Client::read_reply() {
  if (!connected()) return Reply::io_error(error());
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) {
    return Reply::io_error(error().empty() ? "no reply" : error());
  }
  std::unique_ptr<redisReply, void (*)(void*)> reply(static_cast<redisReply*>(raw),
                                                     freeReplyObject);
  return Reply::from_hiredis(reply.get());
}

std::vector<Reply> Client::pipeline(const std::vector<std::vector<std::string>>& commands) {
  for (const auto& c : commands) append(c);
  std::vector<Reply> out;
  out.reserve(commands.size());
  for (size_t i = 0; i < commands.size(); ++i) out.push_back(read_reply());
  return out;
}

// ---------------------------------------------------------------------------------------------
// RawConn

namespace {

int poll_fd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
    if (left < 0) left = 0;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r;
    return p.revents;
  }
}

}  // namespace

std::optional<RawConn> RawConn::try_connect(uint16_t port, Millis timeout, std::string* why) {
  RawConn c;
  c.fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (c.fd_ < 0) {
    if (why) *why = std::strerror(errno);
    return std::nullopt;
  }
  int one = 1;
  ::setsockopt(c.fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(c.fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EINPROGRESS) {
      if (why) *why = std::strerror(errno);
      return std::nullopt;
    }
    int ev = poll_fd(c.fd_, POLLOUT, Clock::now() + timeout);
    if (ev <= 0) {
      if (why) *why = "connect timeout";
      return std::nullopt;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(c.fd_, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      if (why) *why = std::strerror(err);
      return std::nullopt;
    }
  }
  return c;
}

RawConn::RawConn(uint16_t port, Millis timeout) {
  std::string why;
  auto c = try_connect(port, timeout, &why);
  if (!c) throw std::runtime_error("RawConn: connect to port " + std::to_string(port) + ": " + why);
  *this = std::move(*c);
}

RawConn::~RawConn() {
  close();
}

RawConn::RawConn(RawConn&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      buf_(std::move(other.buf_)),
      off_(std::exchange(other.off_, 0)),
      eof_(std::exchange(other.eof_, false)) {}

RawConn& RawConn::operator=(RawConn&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    buf_ = std::move(other.buf_);
    off_ = std::exchange(other.off_, 0);
    eof_ = std::exchange(other.eof_, false);
  }
  return *this;
}

void RawConn::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void RawConn::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool RawConn::send(std::string_view bytes, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      int ev = poll_fd(fd_, POLLOUT, deadline);
      if (ev <= 0) return false;  // timeout
      if (ev & (POLLERR | POLLHUP | POLLNVAL)) return false;
      continue;
    }
    return false;
  }
  return true;
}

size_t RawConn::send_some(std::string_view bytes) {
  ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  return n > 0 ? static_cast<size_t>(n) : 0;
}

bool RawConn::read_more(Millis timeout) {
  if (fd_ < 0 || eof_) return false;
  const auto deadline = Clock::now() + timeout;
  char chunk[64 * 1024];
  for (;;) {
    ssize_t n = ::recv(fd_, chunk, sizeof(chunk), 0);
    if (n > 0) {
      buf_.append(chunk, static_cast<size_t>(n));
      return true;
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      int ev = poll_fd(fd_, POLLIN, deadline);
      if (ev <= 0) return false;  // timeout
      continue;                   // readable, hangup or error: recv tells which
    }
    eof_ = true;  // ECONNRESET and friends: the peer is gone
    return false;
  }
}

void RawConn::consume(size_t n) {
  off_ += n;
  if (off_ >= buf_.size()) {
    buf_.clear();
    off_ = 0;
  } else if (off_ > (256u << 10) && off_ * 2 > buf_.size()) {
    buf_.erase(0, off_);
    off_ = 0;
  }
}

std::string& RawConn::buffer() {
  buf_.erase(0, off_);
  off_ = 0;
  return buf_;
}

bool RawConn::read_until(const std::function<bool(std::string_view)>& pred, Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!pred(pending())) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0 || !read_more(left)) return pred(pending());
  }
  return true;
}

std::optional<std::string> RawConn::read_exact(size_t n, Millis timeout) {
  if (!read_until([n](std::string_view b) { return b.size() >= n; }, timeout)) {
    return std::nullopt;
  }
  std::string out(pending().substr(0, n));
  consume(n);
  return out;
}

std::optional<std::string> RawConn::read_line(Millis timeout) {
  if (!read_until([](std::string_view b) { return b.find("\r\n") != std::string_view::npos; },
                  timeout)) {
    return std::nullopt;
  }
  size_t end = pending().find("\r\n") + 2;
  std::string out(pending().substr(0, end));
  consume(end);
  return out;
}

std::optional<std::string> RawConn::read_raw_reply(Millis timeout) {
  size_t consumed = 0;
  Reply r;
  ParseStatus st = ParseStatus::kIncomplete;
  auto complete = [&](std::string_view b) {
    st = parse_reply(b, consumed, r);
    return st != ParseStatus::kIncomplete;
  };
  if (!read_until(complete, timeout) || st != ParseStatus::kOk) return std::nullopt;
  std::string out(pending().substr(0, consumed));
  consume(consumed);
  return out;
}

std::optional<Reply> RawConn::read_reply(Millis timeout) {
  size_t consumed = 0;
  Reply r;
  ParseStatus st = ParseStatus::kIncomplete;
  auto complete = [&](std::string_view b) {
    st = parse_reply(b, consumed, r);
    return st != ParseStatus::kIncomplete;
  };
  if (!read_until(complete, timeout) || st != ParseStatus::kOk) return std::nullopt;
  consume(consumed);
  return r;
}

bool RawConn::closed_by_peer(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!eof_) {
    auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    read_more(left);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// pipeline_raw

std::vector<Reply> pipeline_raw(uint16_t port, const std::string& payload, size_t count,
                                Millis timeout) {
  RawConn conn(port);
  const auto deadline = Clock::now() + timeout;
  std::vector<Reply> replies;
  replies.reserve(count);
  {
    std::jthread writer([&conn, &payload, timeout] { conn.send(payload, timeout); });
    while (replies.size() < count) {
      auto r = conn.read_reply(std::chrono::duration_cast<Millis>(deadline - Clock::now()));
      if (!r) break;
      replies.push_back(std::move(*r));
    }
    // Makes a writer still blocked on a full socket fail now instead of at its deadline.
    ::shutdown(conn.fd(), SHUT_RDWR);
  }
  return replies;
}

}  // namespace lockstep::test

// Peer transport: see peer_transport.h for the protocol and what it guarantees.
#include "server/consensus/peer_transport.h"

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <vector>

namespace lockstep::server {
namespace {

constexpr size_t kHandshakeFrameLimit = 4096;      // before authentication
constexpr size_t kFrameLimit = 256 * 1024 * 1024;  // after (a snapshot fits)
constexpr uint64_t kMinBackoffMs = 50;
constexpr uint64_t kMaxBackoffMs = 2000;

std::string random_nonce() {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    spdlog::critical("peer transport: no randomness for a handshake nonce");
    std::abort();
  }
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

bool parse_u64(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

bool equal_macs(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// One RESP array of bulk strings from the front of `in`: 1 = parsed (and consumed), 0 = needs
// more bytes, -1 = malformed or over `limit`.
int parse_frame(std::string& in, size_t& pos, size_t limit, std::vector<std::string>& out) {
  auto line = [&](size_t from, uint64_t& value) -> long {
    size_t end = in.find("\r\n", from);
    if (end == std::string::npos) return in.size() - from > 24 ? -1 : 0;
    if (!parse_u64(std::string_view(in).substr(from + 1, end - from - 1), value)) return -1;
    return static_cast<long>(end + 2);
  };
  size_t p = pos;
  if (p >= in.size()) return 0;
  if (in[p] != '*') return -1;
  uint64_t n = 0;
  long next = line(p, n);
  if (next <= 0) return static_cast<int>(next);
  if (n == 0 || n > 8) return -1;
  p = static_cast<size_t>(next);
  std::vector<std::string> parts;
  size_t total = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (p >= in.size()) return 0;
    if (in[p] != '$') return -1;
    uint64_t len = 0;
    next = line(p, len);
    if (next <= 0) return static_cast<int>(next);
    total += len;
    if (total > limit) return -1;
    p = static_cast<size_t>(next);
    if (in.size() < p + len + 2) return 0;
    parts.emplace_back(in, p, len);
    p += len + 2;
  }
  pos = p;
  out = std::move(parts);
  return 1;
}

}  // namespace

struct PeerTransport::Conn {
  enum class State { kConnecting, kWaitChallenge, kWaitHello, kWaitProof, kReady };
  PeerTransport* owner = nullptr;
  uv_tcp_t tcp{};
  uv_connect_t connect_req{};
  uv_write_t write_req{};
  bool outbound = false;
  bool closing = false;
  bool write_in_flight = false;
  State state = State::kConnecting;
  uint64_t accepted_ms = 0;  // inbound: when; it must prove the secret soon after
  uint64_t peer = 0;         // outbound: who we dialled; inbound: who proved to be
  std::string my_nonce, their_nonce;
  std::string session;
  uint64_t send_seq = 0, recv_seq = 0;
  std::string in, out, writing;
  std::unique_ptr<char[]> read_buf = std::make_unique<char[]>(64 * 1024);
};

PeerTransport::PeerTransport(uv_loop_t* loop, uint64_t self, std::string secret, size_t buffer_cap,
                             Receiver receiver)
    : loop_(loop),
      self_(self),
      secret_(std::move(secret)),
      buffer_cap_(buffer_cap),
      receiver_(std::move(receiver)) {}

PeerTransport::~PeerTransport() = default;

std::string PeerTransport::mac(std::string_view key, std::string_view data) const {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

bool PeerTransport::listen(const std::string& host, uint16_t port, std::string& error) {
  sockaddr_storage ss{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    error = "cluster.listen must be an IP address, got " + host;
    return false;
  }
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  listening_ = true;
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<sockaddr*>(&ss), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 64, on_accept);
  if (rc != 0) {
    error = std::string("cannot listen for peers: ") + uv_strerror(rc);
    return false;
  }
  return true;
}

void PeerTransport::on_accept(uv_stream_t* server, int status) {
  auto* self = static_cast<PeerTransport*>(server->data);
  if (status < 0 || self->closed_) return;
  auto conn = std::make_unique<Conn>();
  Conn* c = conn.get();
  c->owner = self;
  uv_tcp_init(self->loop_, &c->tcp);
  c->tcp.data = c;
  self->conns_[c] = std::move(conn);
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
    self->drop_conn(c, "accept failed");
    return;
  }
  // Strangers cost a connection and a read buffer until they prove the secret: a few at a
  // time, for a few seconds each (tick() drops the slow ones).
  constexpr size_t kMaxUnproven = 16;
  size_t unproven = 0;
  for (const auto& [p, other] : self->conns_)
    if (!other->outbound && other->state != Conn::State::kReady) ++unproven;
  if (unproven > kMaxUnproven) {
    self->drop_conn(c, "too many unauthenticated peer connections");
    return;
  }
  c->accepted_ms = uv_now(self->loop_);
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = Conn::State::kWaitHello;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
}

void PeerTransport::set_peers(const std::map<uint64_t, std::string>& peers) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto want = peers.find(it->first);
    if (want == peers.end() || want->second != it->second.address) {
      if (it->second.conn) drop_conn(it->second.conn, "no longer a peer");
      it = targets_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [id, address] : peers) {
    if (id == self_ || targets_.count(id)) continue;
    targets_[id].address = address;
  }
}

void PeerTransport::tick(uint64_t now_ms) {
  if (closed_) return;
  constexpr uint64_t kHandshakeMs = 5000;
  std::vector<Conn*> slow;
  for (const auto& [p, c] : conns_)
    if (!c->outbound && c->state != Conn::State::kReady && !c->closing &&
        now_ms > c->accepted_ms + kHandshakeMs)
      slow.push_back(c.get());
  for (Conn* c : slow) drop_conn(c, "no authenticated handshake in time");
  for (auto& [id, t] : targets_)
    if (t.conn == nullptr && now_ms >= t.next_attempt_ms) dial(id, t, now_ms);
}

void PeerTransport::dial(uint64_t peer, Target& t, uint64_t now_ms) {
  t.backoff_ms = t.backoff_ms == 0 ? kMinBackoffMs : std::min(t.backoff_ms * 2, kMaxBackoffMs);
  t.next_attempt_ms = now_ms + t.backoff_ms;
  // host:port, [v6]:port
  size_t colon = t.address.rfind(':');
  if (colon == std::string::npos) return;
  std::string host = t.address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = t.address.substr(colon + 1);
  sockaddr_storage ss{};
  int p = std::atoi(port.c_str());
  if (uv_ip4_addr(host.c_str(), p, reinterpret_cast<sockaddr_in*>(&ss)) != 0 &&
      uv_ip6_addr(host.c_str(), p, reinterpret_cast<sockaddr_in6*>(&ss)) != 0) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0 || res == nullptr) return;
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
  }
  auto conn = std::make_unique<Conn>();
  Conn* c = conn.get();
  c->owner = this;
  c->outbound = true;
  c->peer = peer;
  uv_tcp_init(loop_, &c->tcp);
  c->tcp.data = c;
  c->connect_req.data = c;
  conns_[c] = std::move(conn);
  t.conn = c;
  if (uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<sockaddr*>(&ss), on_connect) != 0)
    drop_conn(c, "connect failed");
}

void PeerTransport::on_connect(uv_connect_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  PeerTransport* self = c->owner;
  if (c->closing) return;
  if (status < 0) {
    self->drop_conn(c, uv_strerror(status));
    return;
  }
  uv_tcp_nodelay(&c->tcp, 1);
  c->state = Conn::State::kWaitChallenge;
  c->my_nonce = random_nonce();
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp), on_alloc, on_read);
  self->write_frame(c, {"HELLO", std::to_string(self->self_), c->my_nonce});
}

void PeerTransport::on_alloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(h->data);
  *buf = uv_buf_init(c->read_buf.get(), 64 * 1024);
}

void PeerTransport::on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Conn*>(s->data);
  if (c->closing) return;
  if (nread < 0) {
    c->owner->drop_conn(c,
                        nread == UV_EOF ? "closed by peer" : uv_strerror(static_cast<int>(nread)));
    return;
  }
  c->in.append(buf->base, static_cast<size_t>(nread));
  c->owner->handle_frames(c);
}

void PeerTransport::handle_frames(Conn* c) {
  size_t pos = 0;
  while (!c->closing) {
    std::vector<std::string> frame;
    size_t limit = c->state == Conn::State::kReady ? kFrameLimit : kHandshakeFrameLimit;
    int rc = parse_frame(c->in, pos, limit, frame);
    if (rc == 0) break;
    if (rc < 0 || !handle_frame(c, frame)) {
      ++rejected_;
      drop_conn(c, "malformed or unauthenticated frame");
      return;
    }
  }
  if (!c->closing) c->in.erase(0, pos);
}

bool PeerTransport::handle_frame(Conn* c, const std::vector<std::string>& f) {
  using S = Conn::State;
  auto transcript = [&](uint64_t dialer, uint64_t acceptor, const std::string& n_dialer,
                        const std::string& n_acceptor) {
    return n_dialer + n_acceptor + std::to_string(dialer) + "|" + std::to_string(acceptor);
  };
  switch (c->state) {
    case S::kWaitHello: {  // inbound: ["HELLO", id, nonce]
      uint64_t id = 0;
      if (f.size() != 3 || f[0] != "HELLO" || !parse_u64(f[1], id) || id == 0 || id == self_ ||
          f[2].size() != 16)
        return false;
      c->peer = id;
      c->their_nonce = f[2];
      c->my_nonce = random_nonce();
      std::string t = transcript(id, self_, c->their_nonce, c->my_nonce);
      c->state = S::kWaitProof;
      write_frame(c, {"CHALLENGE", std::to_string(self_), c->my_nonce, mac(secret_, "B" + t)});
      return true;
    }
    case S::kWaitChallenge: {  // outbound: ["CHALLENGE", id, nonce, mac]
      uint64_t id = 0;
      if (f.size() != 4 || f[0] != "CHALLENGE" || !parse_u64(f[1], id) || id != c->peer ||
          f[2].size() != 16)
        return false;
      c->their_nonce = f[2];
      std::string t = transcript(self_, id, c->my_nonce, c->their_nonce);
      if (!equal_macs(f[3], mac(secret_, "B" + t))) return false;
      write_frame(c, {"PROOF", mac(secret_, "A" + t)});
      c->session = mac(secret_, "session" + c->my_nonce + c->their_nonce);
      c->state = S::kReady;
      spdlog::info("cluster: connected to replica {}", c->peer);
      return true;
    }
    case S::kWaitProof: {  // inbound: ["PROOF", mac]
      std::string t = transcript(c->peer, self_, c->their_nonce, c->my_nonce);
      if (f.size() != 2 || f[0] != "PROOF" || !equal_macs(f[1], mac(secret_, "A" + t)))
        return false;
      c->session = mac(secret_, "session" + c->their_nonce + c->my_nonce);
      c->state = S::kReady;
      return true;
    }
    case S::kReady: {  // inbound only: ["M", seq, payload, mac]
      uint64_t seq = 0;
      if (c->outbound || f.size() != 4 || f[0] != "M" || !parse_u64(f[1], seq) ||
          seq != c->recv_seq + 1 || !equal_macs(f[3], mac(c->session, f[1] + "|" + f[2])))
        return false;
      c->recv_seq = seq;
      receiver_(c->peer, f[2]);
      return true;
    }
    case S::kConnecting:
      return false;
  }
  return false;
}

bool PeerTransport::connected(uint64_t peer) const {
  auto it = targets_.find(peer);
  return it != targets_.end() && it->second.conn != nullptr &&
         it->second.conn->state == Conn::State::kReady;
}

void PeerTransport::send(uint64_t to, std::string_view payload) {
  auto it = targets_.find(to);
  Conn* c = it == targets_.end() ? nullptr : it->second.conn;
  if (c == nullptr || c->closing || c->state != Conn::State::kReady ||
      c->out.size() + c->writing.size() + payload.size() > buffer_cap_) {
    ++dropped_;
    return;
  }
  std::string seq = std::to_string(++c->send_seq);
  std::string m = mac(c->session, seq + "|" + std::string(payload));
  write_frame(c, {"M", seq, payload, m});
}

void PeerTransport::write_frame(Conn* c, std::initializer_list<std::string_view> parts) {
  c->out += "*" + std::to_string(parts.size()) + "\r\n";
  for (std::string_view p : parts) {
    c->out += "$" + std::to_string(p.size()) + "\r\n";
    c->out.append(p);
    c->out += "\r\n";
  }
  flush(c);
}

void PeerTransport::flush(Conn* c) {
  if (c->write_in_flight || c->out.empty() || c->closing) return;
  c->writing.swap(c->out);
  c->out.clear();
  uv_buf_t buf = uv_buf_init(c->writing.data(), static_cast<unsigned>(c->writing.size()));
  c->write_req.data = c;
  if (uv_write(&c->write_req, reinterpret_cast<uv_stream_t*>(&c->tcp), &buf, 1, on_write) != 0) {
    c->writing.clear();
    drop_conn(c, "write failed");
    return;
  }
  c->write_in_flight = true;
}

void PeerTransport::on_write(uv_write_t* req, int status) {
  auto* c = static_cast<Conn*>(req->data);
  c->write_in_flight = false;
  c->writing.clear();
  if (c->closing) return;
  if (status < 0) {
    c->owner->drop_conn(c, uv_strerror(status));
    return;
  }
  c->owner->flush(c);
}

void PeerTransport::drop_conn(Conn* c, const std::string& why) {
  if (c->closing) return;
  c->closing = true;
  if (c->outbound) {
    auto it = targets_.find(c->peer);
    if (it != targets_.end() && it->second.conn == c) {
      it->second.conn = nullptr;
      if (c->state == Conn::State::kReady) {
        it->second.backoff_ms = 0;  // it worked once: try again soon
        spdlog::warn("cluster: lost connection to replica {}: {}", c->peer, why);
      }
    }
  } else if (c->state != Conn::State::kReady && why != "closed by peer") {
    spdlog::warn("cluster: refused a peer connection: {}", why);
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_closed);
}

void PeerTransport::on_closed(uv_handle_t* h) {
  auto* c = static_cast<Conn*>(h->data);
  c->owner->conns_.erase(c);
}

void PeerTransport::close() {
  if (closed_) return;
  closed_ = true;
  std::vector<Conn*> all;
  for (auto& [c, owned] : conns_) all.push_back(c);
  for (Conn* c : all) drop_conn(c, "shutting down");
  if (listening_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
}

}  // namespace lockstep::server

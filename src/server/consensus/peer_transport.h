// The consensus replicas' network: TCP on cluster.listen, RESP-framed (arrays of bulk strings).
//
// Each replica dials every other member and sends only on the connections it dialled; it only
// receives on the connections it accepted. Two connections per pair, and no tie-breaking.
//
// Authentication (nobody without cluster.secret can join or inject):
//   dialer A -> B   ["HELLO", A, nA]
//   B -> A          ["CHALLENGE", B, nB, HMAC(secret, "B" | nA | nB | A | B)]
//   A -> B          ["PROOF", HMAC(secret, "A" | nA | nB | A | B)]
// with fresh 16-byte random nonces on both sides, so a recorded handshake cannot be replayed.
// After it every frame is ["M", seq, payload, HMAC(session, seq | payload)] where session =
// HMAC(secret, "session" | nA | nB) and seq counts up from 1: a frame altered, replayed,
// reordered or inserted by anyone on the path closes the connection. Traffic is not encrypted
// (configuration is not secret; backend passwords are never replicated).
//
// Back-pressure: a peer whose queued output exceeds cluster.peer_buffer_bytes gets no more
// messages until it drains (they are dropped: Paxos retransmits). Lost connections are dialled
// again with exponential backoff (50 ms doubling to 2 s).
//
// Single-threaded: every call and callback happens on the loop's thread.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

namespace lockstep::server {

class PeerTransport {
 public:
  // A payload from an authenticated peer.
  using Receiver = std::function<void(uint64_t from, std::string_view payload)>;

  PeerTransport(uv_loop_t* loop, uint64_t self, std::string secret, size_t buffer_cap,
                Receiver receiver);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  // Starts accepting peers; false with `error` set when the address cannot be bound.
  bool listen(const std::string& host, uint16_t port, std::string& error);
  // The members to dial (id -> host:port); others' connections are closed.
  void set_peers(const std::map<uint64_t, std::string>& peers);
  // Queues `payload` for `to`; dropped (counted) when not connected or over the buffer cap.
  void send(uint64_t to, std::string_view payload);
  // Redials lost peers whose backoff expired; call every tick.
  void tick(uint64_t now_ms);
  // Closes every handle; run the loop afterwards until it has no more handles.
  void close();

  bool connected(uint64_t peer) const;
  uint64_t dropped() const { return dropped_; }
  uint64_t rejected() const { return rejected_; }  // connections that failed authentication

 private:
  struct Conn;
  struct Target {
    std::string address;
    Conn* conn = nullptr;
    uint64_t next_attempt_ms = 0;
    uint64_t backoff_ms = 0;
  };
  static void on_accept(uv_stream_t* server, int status);
  static void on_connect(uv_connect_t* req, int status);
  static void on_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void on_read(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void on_write(uv_write_t* req, int status);
  static void on_closed(uv_handle_t* h);
  void dial(uint64_t peer, Target& t, uint64_t now_ms);
  void drop_conn(Conn* c, const std::string& why);
  void handle_frames(Conn* c);
  bool handle_frame(Conn* c, const std::vector<std::string>& f);
  void write_frame(Conn* c, std::initializer_list<std::string_view> parts);
  void flush(Conn* c);
  std::string mac(std::string_view key, std::string_view data) const;

  uv_loop_t* loop_;
  uint64_t self_;
  std::string secret_;
  size_t buffer_cap_;
  Receiver receiver_;
  uv_tcp_t listener_{};
  bool listening_ = false;
  bool closed_ = false;
  std::map<Conn*, std::unique_ptr<Conn>> conns_;
  std::map<uint64_t, Target> targets_;
  uint64_t dropped_ = 0;
  uint64_t rejected_ = 0;
};

}  // namespace lockstep::server

// Pub/sub through Lockstep. Each worker has one PubSubHub: one subscriber connection per backend,
// shared by all of the worker's subscribed clients, with a reference count per channel and
// pattern. A channel (and a shard channel) lives on the backend its name hashes to, where
// PUBLISH/SPUBLISH through Lockstep send it; patterns are subscribed on every backend, so a
// message published on any one backend reaches each pattern subscriber exactly once.
//
// A client's SUBSCRIBE is confirmed only once the backend has confirmed the hub's own
// subscription, so a message published after the client saw its confirmation is delivered.
// Messages go through the client's reply slots, so they never overtake a confirmation.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/net/backend_conn.h"
#include "server/net/conn_observer.h"
#include "server/net/reply_sink.h"

namespace lockstep::server {

class Client;
class Worker;

enum class SubKind : uint8_t { kChannel = 0, kPattern = 1, kShard = 2 };

class PubSubHub final : public ReplySink, public ConnObserver {
 public:
  explicit PubSubHub(Worker& worker);
  ~PubSubHub();
  // Opens subscriber connections to backends the topology gained since.
  void grow();

  // Adds `client` as a subscriber. Returns true when the backend subscription is already live;
  // otherwise the client receives a reply for `cookie` (via on_backend_reply) once the backend
  // has confirmed, or an error if it could not.
  bool subscribe(SubKind kind, std::string_view name, Client* client, uint64_t cookie);
  void unsubscribe(SubKind kind, std::string_view name, Client* client);

  void on_backend_reply(uint64_t cookie, std::string_view reply) override;
  // A message pushed by subscriber connection `backend`.
  void on_push(int backend, std::string_view message) override;
  // Subscriber connection `backend` (re)connected: subscribe again to everything it carries.
  void on_conn_ready(int backend) override;
  void shutdown();

 private:
  struct Entry {
    std::vector<Client*> clients;
    int pending = 0;  // backend confirmations still expected for the first subscription
    std::vector<std::pair<Client*, uint64_t>> waiters;
  };
  struct Request {
    SubKind kind;
    std::string name;
    bool counts;  // a confirmation that Entry::pending waits for
  };
  std::vector<int> backends_of(SubKind kind, std::string_view name) const;
  void send(int backend, SubKind kind, std::string_view name, bool subscribe, bool counts);
  void maybe_drop(SubKind kind, const std::string& name);

  Worker& worker_;
  std::unordered_map<std::string, Entry> entries_[3];
  std::vector<std::unique_ptr<BackendConn>> conns_;
  std::unordered_map<uint64_t, Request> requests_;
  uint64_t next_cookie_ = 1;
};

}  // namespace lockstep::server

#include "server/pubsub/pubsub_hub.h"

#include "server/net/worker.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace lockstep::server {
namespace {

constexpr std::string_view kSubCmd[3] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"};
constexpr std::string_view kUnsubCmd[3] = {"UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"};

}  // namespace

PubSubHub::PubSubHub(Worker& worker) : worker_(worker) {
  grow();
}

void PubSubHub::grow() {
  // One subscriber connection per backend; a backend added at runtime gets its own here, and
  // its on_conn_ready subscribes what lives there (patterns: everything).
  const auto& topo = worker_.topology();
  for (int b = static_cast<int>(conns_.size()); b < static_cast<int>(topo.backends.size()); ++b) {
    conns_.push_back(std::make_unique<BackendConn>(worker_, b, topo.backends[b], 2));
    conns_.back()->set_observer(this, true);
    conns_.back()->start();
  }
}

PubSubHub::~PubSubHub() = default;

void PubSubHub::shutdown() {
  for (auto& c : conns_) c->close_for_shutdown();
}

std::vector<int> PubSubHub::backends_of(SubKind kind, std::string_view name) const {
  if (kind == SubKind::kPattern) {
    std::vector<int> all(conns_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    return all;
  }
  return {worker_.topology().slots.owner_of_key(name)};
}

void PubSubHub::send(int backend, SubKind kind, std::string_view name, bool subscribe,
                     bool counts) {
  const auto k = static_cast<size_t>(kind);
  std::string_view args[] = {subscribe ? kSubCmd[k] : kUnsubCmd[k], name};
  std::string request;
  resp::append_command(request, args);
  const uint64_t cookie = next_cookie_++;
  requests_.emplace(cookie, Request{kind, std::string(name), counts});
  if (!conns_[static_cast<size_t>(backend)]->send(this, cookie, request))
    worker_.defer_reply(this, cookie, conns_[static_cast<size_t>(backend)]->unavailable_error());
}

bool PubSubHub::subscribe(SubKind kind, std::string_view name, Client* client, uint64_t cookie) {
  auto& map = entries_[static_cast<size_t>(kind)];
  auto [it, fresh] = map.try_emplace(std::string(name));
  Entry& e = it->second;
  e.clients.push_back(client);
  if (fresh) {
    auto backends = backends_of(kind, name);
    e.pending = static_cast<int>(backends.size());
    for (int b : backends) send(b, kind, name, true, true);
  }
  if (e.pending == 0) return true;
  e.waiters.emplace_back(client, cookie);
  return false;
}

void PubSubHub::unsubscribe(SubKind kind, std::string_view name, Client* client) {
  auto& map = entries_[static_cast<size_t>(kind)];
  auto it = map.find(std::string(name));
  if (it == map.end()) return;
  auto& cl = it->second.clients;
  auto pos = std::find(cl.begin(), cl.end(), client);
  if (pos != cl.end()) cl.erase(pos);
  maybe_drop(kind, it->first);
}

// The last local subscriber is gone and the backend subscription is settled: unsubscribe there.
void PubSubHub::maybe_drop(SubKind kind, const std::string& name) {
  auto& map = entries_[static_cast<size_t>(kind)];
  auto it = map.find(name);
  if (it == map.end() || !it->second.clients.empty() || it->second.pending > 0) return;
  std::string key = it->first;
  map.erase(it);
  for (int b : backends_of(kind, key)) send(b, kind, key, false, false);
}

void PubSubHub::on_backend_reply(uint64_t cookie, std::string_view reply) {
  auto rit = requests_.find(cookie);
  if (rit == requests_.end()) return;
  Request req = std::move(rit->second);
  requests_.erase(rit);
  if (!req.counts) return;
  auto& map = entries_[static_cast<size_t>(req.kind)];
  auto it = map.find(req.name);
  if (it == map.end()) return;
  Entry& e = it->second;
  if (resp::is_error_reply(reply)) {
    // The backend is down: tell the waiting clients (their subscription stays registered here
    // and is restored when the connection comes back).
    auto waiters = std::move(e.waiters);
    e.waiters.clear();
    e.pending = 0;
    for (auto [client, ck] : waiters) client->on_backend_reply(ck, reply);
  } else if (--e.pending == 0) {
    auto waiters = std::move(e.waiters);
    e.waiters.clear();
    for (auto [client, ck] : waiters) client->on_backend_reply(ck, "+OK\r\n");
  }
  maybe_drop(req.kind, req.name);
}

void PubSubHub::on_push(int /*backend*/, std::string_view message) {
  // message: *3 message <channel> <payload> | *4 pmessage <pattern> <channel> <payload> |
  //          *3 smessage <channel> <payload>
  std::vector<std::string_view> elems;
  int64_t n = 0;
  if (!resp::split_array(message, elems, n) || n < 3) return;
  auto bulk_text = [](std::string_view bulk) {
    size_t nl = bulk.find("\r\n");
    return bulk.substr(nl + 2, bulk.size() - nl - 4);
  };
  std::string_view type = bulk_text(elems[0]);
  SubKind kind = type == "pmessage"   ? SubKind::kPattern
                 : type == "smessage" ? SubKind::kShard
                                      : SubKind::kChannel;
  auto& map = entries_[static_cast<size_t>(kind)];
  auto it = map.find(std::string(bulk_text(elems[1])));
  if (it == map.end()) return;
  // Copy: delivering may not change the list, but keep iteration independent of it anyway.
  std::vector<Client*> clients = it->second.clients;
  for (Client* c : clients) c->deliver_push(message);
}

void PubSubHub::on_conn_ready(int backend) {
  for (size_t k = 0; k < 3; ++k) {
    for (auto& [name, e] : entries_[k]) {
      auto bs = backends_of(static_cast<SubKind>(k), name);
      if (std::find(bs.begin(), bs.end(), backend) != bs.end() && e.pending == 0)
        send(backend, static_cast<SubKind>(k), name, true, false);
    }
  }
}

}  // namespace lockstep::server

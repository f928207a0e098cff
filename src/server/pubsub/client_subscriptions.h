// What one client is subscribed to (a client part, created on its first SUBSCRIBE): the names
// by kind, and the confirmations with Redis' counts. The backend side is the worker's
// PubSubHub; closing the client takes it off every channel and pattern there.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "server/net/client_part.h"
#include "server/pubsub/pubsub_hub.h"

namespace lockstep::server {

class ClientSubscriptions final : public ClientPart {
 public:
  static constexpr PartKind kKind = PartKind::kSubscriptions;

  // SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE: confirmed once the hub's backend subscriptions are.
  void subscribe(Client& c, SubKind kind, std::span<const std::string_view> names);
  // UNSUBSCRIBE ... (every name of that kind when none is given).
  void unsubscribe(Client& c, SubKind kind, std::span<const std::string_view> names);
  void unsubscribe_all(Client& c);
  void close(Client& c) override { unsubscribe_all(c); }

 private:
  // Channels and patterns count together in the confirmations; shard channels on their own.
  size_t count(SubKind kind) const;
  void publish_counts(Client& c) const;

  std::vector<std::string> names_[3];  // by SubKind; small, so linear search is fine
};

}  // namespace lockstep::server

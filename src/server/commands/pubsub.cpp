// Pub/sub commands: SUBSCRIBE / PSUBSCRIBE / SSUBSCRIBE and their UNSUBSCRIBE, answered with
// Redis' confirmations (ClientSubscriptions), and PUBLISH, sent to the backend its channel
// hashes to, where the hub's subscriber connections listen (pubsub/pubsub_hub.h).
#include <fmt/format.h>

#include <algorithm>

#include "server/commands/handlers.h"
#include "server/net/worker.h"
#include "server/pubsub/client_subscriptions.h"

namespace lockstep::server {
namespace {

constexpr std::string_view kConfirm[3] = {"subscribe", "psubscribe", "ssubscribe"};
constexpr std::string_view kUnconfirm[3] = {"unsubscribe", "punsubscribe", "sunsubscribe"};

void append_confirmation(std::string& out, int protocol, std::string_view type,
                         const std::string_view* name, size_t count) {
  out.append(protocol >= 3 ? ">3\r\n" : "*3\r\n");
  resp::append_bulk(out, type);
  if (name != nullptr)
    resp::append_bulk(out, *name);
  else
    resp::append_null(out, protocol);
  resp::append_integer(out, static_cast<int64_t>(count));
}

// Waits for the hub's backend confirmations, then sends the client's (precomputed) ones.
class SubscribeJob final : public Job {
 public:
  explicit SubscribeJob(std::string confirmations) : text_(std::move(confirmations)) {}
  // Errors (backend down) are not passed on: the subscription stays registered and is restored
  // when the backend is back, as the confirmation promises.
  void on_reply(Client&, uint64_t, size_t, std::string_view) override {}
  bool done() const override { return true; }
  void finish(std::string& out) override { out.append(text_); }

 private:
  std::string text_;
};

// Lockstep's own notifications (lock releases, WAIT) use channels under the reserved prefix.
bool reserved_channel(Client& c, std::span<const std::string_view> channels) {
  if (std::none_of(channels.begin(), channels.end(),
                   [](std::string_view ch) { return proxy::is_reserved_key(ch); }))
    return false;
  c.reply_error("ERR channels starting with '__lockstep:' are reserved for Lockstep");
  return true;
}

template <SubKind kind>
void subscribe(Client& c, const Request& r) {
  const auto names = r.args.subspan(1);
  if (kind != SubKind::kPattern && reserved_channel(c, names)) return;
  c.part<ClientSubscriptions>().subscribe(c, kind, names);
}

template <SubKind kind>
void unsubscribe(Client& c, const Request& r) {
  c.part<ClientSubscriptions>().unsubscribe(c, kind, r.args.subspan(1));
}

void publish(Client& c, const Request& r) {
  if (reserved_channel(c, r.args.subspan(1, 1))) return;
  // A channel lives on the backend its name hashes to (like a key); subscribers are there.
  c.forward(c.worker().topology().slots.owner_of_key(r.args[1]), r.raw);
}

}  // namespace

size_t ClientSubscriptions::count(SubKind kind) const {
  return kind == SubKind::kShard ? names_[2].size() : names_[0].size() + names_[1].size();
}

void ClientSubscriptions::publish_counts(Client& c) const {
  for (size_t k = 0; k < 3; ++k) c.set_subscription_count(k, names_[k].size());
}

void ClientSubscriptions::subscribe(Client& c, SubKind kind,
                                    std::span<const std::string_view> names) {
  const auto k = static_cast<size_t>(kind);
  std::string text;
  std::vector<std::string_view> fresh;
  for (const std::string_view& name : names) {
    if (std::find(names_[k].begin(), names_[k].end(), name) == names_[k].end()) {
      names_[k].emplace_back(name);
      fresh.push_back(name);
    }
    append_confirmation(text, c.protocol(), kConfirm[k], &name, count(kind));
  }
  publish_counts(c);
  uint64_t seq;
  c.start_job(std::make_unique<SubscribeJob>(std::move(text)), seq);
  PubSubHub& hub = c.worker().hub();
  size_t waiting = 0;
  for (size_t p = 0; p < fresh.size(); ++p) {
    const uint64_t cookie = (seq << 16) | (p & 0xffff);  // the job does not look at parts
    if (!hub.subscribe(kind, fresh[p], &c, cookie)) ++waiting;
  }
  c.expect_parts(seq, waiting);  // answered by the hub once the backends confirmed
}

void ClientSubscriptions::unsubscribe(Client& c, SubKind kind,
                                      std::span<const std::string_view> names) {
  const auto k = static_cast<size_t>(kind);
  std::vector<std::string> targets(names.begin(), names.end());
  if (names.empty()) targets = names_[k];
  std::string text;
  if (targets.empty()) append_confirmation(text, c.protocol(), kUnconfirm[k], nullptr, count(kind));
  PubSubHub& hub = c.worker().hub();
  for (const auto& t : targets) {
    auto it = std::find(names_[k].begin(), names_[k].end(), t);
    if (it != names_[k].end()) {
      names_[k].erase(it);
      hub.unsubscribe(kind, t, &c);
    }
    const std::string_view view(t);
    append_confirmation(text, c.protocol(), kUnconfirm[k], &view, count(kind));
  }
  publish_counts(c);
  c.reply(text);
}

void ClientSubscriptions::unsubscribe_all(Client& c) {
  PubSubHub& hub = c.worker().hub();
  for (size_t k = 0; k < 3; ++k) {
    for (const auto& n : names_[k]) hub.unsubscribe(static_cast<SubKind>(k), n, &c);
    names_[k].clear();
  }
  publish_counts(c);
}

void register_pubsub_commands(HandlerTable& t) {
  t.add("subscribe", subscribe<SubKind::kChannel>);
  t.add("psubscribe", subscribe<SubKind::kPattern>);
  t.add("ssubscribe", subscribe<SubKind::kShard>);
  t.add("unsubscribe", unsubscribe<SubKind::kChannel>);
  t.add("punsubscribe", unsubscribe<SubKind::kPattern>);
  t.add("sunsubscribe", unsubscribe<SubKind::kShard>);
  t.add("publish", publish);
}

}  // namespace lockstep::server

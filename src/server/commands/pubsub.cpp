// The client side of pub/sub: what a connection is subscribed to, its confirmations (with Redis'
// counts), and RESP2's subscribed-mode rules. The shared backend side is PubSubHub.
#include <fmt/format.h>

#include <algorithm>

#include "lockstep/proxy/router.h"
#include "server/pubsub/pubsub_hub.h"
#include "server/net/worker.h"

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

}  // namespace

bool Client::subscribed() const {
  return subs_ && subs_->total() > 0;
}

void Client::cmd_subscribe(int kind, std::span<const std::string_view> args) {
  if (!subs_) subs_ = std::make_unique<SubState>();
  auto& names = subs_->names[kind];
  std::string text;
  std::vector<std::string_view> fresh;
  for (size_t i = 1; i < args.size(); ++i) {
    if (std::find(names.begin(), names.end(), args[i]) == names.end()) {
      names.emplace_back(args[i]);
      fresh.push_back(args[i]);
    }
    const size_t count = kind == 2 ? subs_->names[2].size() : subs_->regular();
    append_confirmation(text, protocol(), kConfirm[kind], &args[i], count);
  }
  nsub_[kind].store(static_cast<uint32_t>(names.size()), std::memory_order_relaxed);
  uint64_t seq;
  start_job(std::make_unique<SubscribeJob>(std::move(text)), seq);
  Slot& slot = slots_[static_cast<size_t>(seq - head_seq_)];
  PubSubHub& hub = worker_.hub();
  for (size_t p = 0; p < fresh.size(); ++p) {
    const uint64_t cookie = (seq << 16) | (p & 0xffff);  // the job does not look at parts
    if (!hub.subscribe(static_cast<SubKind>(kind), fresh[p], this, cookie)) {
      ++slot.waiting;  // answered by the hub once the backend confirmed
      ++inflight_parts_;
    }
  }
  if (slot.waiting == 0) complete_slot(static_cast<size_t>(seq - head_seq_));
}

void Client::cmd_unsubscribe(int kind, std::span<const std::string_view> args) {
  if (!subs_) subs_ = std::make_unique<SubState>();
  auto& names = subs_->names[kind];
  std::vector<std::string> targets;
  if (args.size() > 1)
    for (size_t i = 1; i < args.size(); ++i) targets.emplace_back(args[i]);
  else
    targets = names;
  std::string text;
  auto count = [&] { return kind == 2 ? subs_->names[2].size() : subs_->regular(); };
  if (targets.empty()) append_confirmation(text, protocol(), kUnconfirm[kind], nullptr, count());
  PubSubHub& hub = worker_.hub();
  for (const auto& t : targets) {
    auto it = std::find(names.begin(), names.end(), t);
    if (it != names.end()) {
      names.erase(it);
      hub.unsubscribe(static_cast<SubKind>(kind), t, this);
    }
    std::string_view view(t);
    append_confirmation(text, protocol(), kUnconfirm[kind], &view, count());
  }
  nsub_[kind].store(static_cast<uint32_t>(names.size()), std::memory_order_relaxed);
  reply(text);
}

void Client::unsubscribe_all() {
  if (!subs_) return;
  PubSubHub& hub = worker_.hub();
  for (int k = 0; k < 3; ++k)
    for (const auto& n : subs_->names[k]) hub.unsubscribe(static_cast<SubKind>(k), n, this);
  subs_.reset();
  for (auto& n : nsub_) n.store(0, std::memory_order_relaxed);
}

void Client::deliver_monitor_line(std::string_view line) {
  if (closing_ || close_when_flushed_) return;
  reply(line);  // a status line in RESP2 and RESP3 alike
}

void Client::deliver_push(std::string_view message) {
  if (closing_ || close_when_flushed_) return;
  if (protocol() >= 3) {
    // RESP3 marks pub/sub messages as pushes; the rest of the frame is the same.
    std::string push(message);
    push[0] = '>';
    reply(push);
  } else {
    reply(message);
  }
}

}  // namespace lockstep::server

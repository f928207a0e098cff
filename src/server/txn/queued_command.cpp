#include "server/txn/queued_command.h"

#include "lockstep/resp/resp.h"

namespace lockstep::server {

void split_parts(const proxy::Plan& plan, std::span<const std::string_view> args,
                 std::string_view name, QueuedCommand& q) {
  const bool pairs =
      plan.cmd->route == proxy::Route::kSplitMset || plan.cmd->route == proxy::Route::kSplitMsetnx;
  for (size_t p = 0; p < plan.nparts; ++p) {
    const auto& part = plan.parts[p];
    QueuedCommand::Part qp;
    qp.backend = part.backend;
    resp::append_array_header(qp.request,
                              static_cast<int64_t>(1 + part.keys.size() * (pairs ? 2 : 1)));
    resp::append_bulk(qp.request, name);
    for (uint32_t k : part.keys) {
      resp::append_bulk(qp.request, args[k]);
      qp.keys.emplace_back(args[k]);
      if (pairs) resp::append_bulk(qp.request, args[k + 1]);
    }
    q.parts.push_back(std::move(qp));
  }
}

void queue_routed(const proxy::Plan& plan, std::span<const std::string_view> args,
                  std::string_view raw, QueuedCommand& q) {
  if (plan.kind == proxy::Plan::Kind::kSingle) {
    q.kind = QueuedCommand::Kind::kSingle;
    q.backend = plan.backend;
    q.raw.assign(raw);
    proxy::KeyPositions keys;
    proxy::extract_keys(*plan.cmd, args, keys);
    for (size_t i = 0; i < keys.size(); ++i) q.keys.emplace_back(args[keys[i]]);
    return;
  }
  q.kind = QueuedCommand::Kind::kSplit;
  const bool mset = plan.cmd->route == proxy::Route::kSplitMset;
  q.merge = std::make_shared<proxy::ReplyMerge>();
  q.merge->start(proxy::ReplyMerge::kind_for(plan.cmd->route), plan.nparts,
                 mset ? (args.size() - 1) / 2 : args.size() - 1);
  split_parts(plan, args, args[0], q);
  if (plan.cmd->route == proxy::Route::kSplitMget)
    for (size_t p = 0; p < plan.nparts; ++p)
      for (uint32_t k : plan.parts[p].keys) q.merge->positions(p).push_back(k - 1);
}

}  // namespace lockstep::server

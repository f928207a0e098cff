#include "server/net/blocking_redis.h"

#include <fmt/format.h>

namespace lockstep::server {

BlockingRedis::BlockingRedis(const config::BackendConfig& b, int timeout_ms)
    : ctx_(nullptr, redisFree) {
  const timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ctx_.reset(redisConnectWithTimeout(b.address.host.c_str(), b.address.port, tv));
  if (!ctx_ || ctx_->err) {
    error_ = fmt::format("cannot connect to {}", b.address.str());
    return;
  }
  redisSetTimeout(ctx_.get(), tv);
  if (!b.password.empty()) {
    Reply r = b.username.empty() ? command({"AUTH", b.password})
                                 : command({"AUTH", b.username, b.password});
    if (!r || r->type == REDIS_REPLY_ERROR) {
      error_ = fmt::format("cannot AUTH on {}", b.address.str());
      return;
    }
  }
  if (b.db != 0) {
    const std::string db = std::to_string(b.db);
    Reply r = command({"SELECT", db});
    if (!r || r->type == REDIS_REPLY_ERROR)
      error_ = fmt::format("cannot SELECT on {}", b.address.str());
  }
}

BlockingRedis::Reply BlockingRedis::command(const std::vector<std::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  Reply r(static_cast<redisReply*>(redisCommandArgv(ctx_.get(), static_cast<int>(argv.size()),
                                                    argv.data(), lens.data())),
          freeReplyObject);
  if (!r && error_.empty()) error_ = ctx_->errstr;
  return r;
}

}  // namespace lockstep::server

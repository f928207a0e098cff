// A request whose -NOSCRIPT reply (a backend that never saw the script, restarted, or had its
// cache flushed) is retried once on the same backend with the request `fallback` builds (EVAL
// with the body), when it can build one; any other reply is the client's.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "server/net/worker.h"

namespace lockstep::server {

class NoScriptRetryJob final : public Job {
 public:
  NoScriptRetryJob(int backend, std::function<std::optional<std::string>()> fallback)
      : backend_(backend), fallback_(std::move(fallback)) {}
  void on_reply(Client& c, uint64_t seq, size_t part, std::string_view reply) override {
    if (part == 0 && reply.starts_with("-NOSCRIPT")) {
      if (auto request = fallback_()) {
        c.send_part(backend_, seq, 1, *request);
        return;
      }
    }
    out_.assign(reply);
    done_ = true;
  }
  bool done() const override { return done_; }
  void finish(std::string& out) override { out.append(out_); }

 private:
  int backend_;
  std::function<std::optional<std::string>()> fallback_;
  std::string out_;
  bool done_ = false;
};

}  // namespace lockstep::server

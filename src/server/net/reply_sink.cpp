#include "server/net/reply_sink.h"

namespace lockstep::server {
namespace {

class DiscardSink final : public ReplySink {
 public:
  void on_backend_reply(uint64_t, std::string_view) override {}
};

}  // namespace

ReplySink& discard_replies() {
  static DiscardSink sink;
  return sink;
}

}  // namespace lockstep::server

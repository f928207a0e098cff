#include "server/net/reply_queue.h"

namespace lockstep::server {

ReplyQueue::Slot& ReplyQueue::push(const RequestMeta& meta, uint64_t& seq) {
  seq = head_seq_ + slots_.size();
  Slot& s = slots_.push_back();  // a reused ring entry: every field is set again
  s.waiting = 0;
  s.ready = false;
  s.meta = meta;
  s.data.clear();
  s.job.reset();
  return s;
}

}  // namespace lockstep::server

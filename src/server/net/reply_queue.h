// A client's pipeline of replies: one slot per request, in request order. A slot completes when
// every backend part it sent has answered (one for a plain command, several for a split or
// fan-out, or whatever its Job decides); completed slots at the head leave in order, so
// pipelined replies keep their order even when their commands went to different backends.
//
// Sequence numbers name slots for as long as they live (a backend reply's cookie carries one);
// head_seq() is the oldest. No I/O here: the client writes what drain() emits.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "lockstep/common/ring.h"
#include "lockstep/proxy/command_table.h"
#include "server/net/job.h"

namespace lockstep::server {

// What a reply is recorded under (statistics, slow log) once it leaves.
struct RequestMeta {
  const proxy::CommandInfo* cmd = nullptr;  // nullptr: nothing to record (pushes, refusals)
  uint64_t start_us = 0;
  uint32_t argc = 0;
  bool suppress = false;  // CLIENT REPLY OFF/SKIP: computed, counted, not sent
};

class ReplyQueue {
 public:
  struct Slot {
    uint32_t waiting = 0;  // parts sent and not answered yet
    bool ready = false;
    RequestMeta meta;
    std::string data;
    std::unique_ptr<Job> job;
  };

  bool empty() const { return slots_.empty(); }
  size_t size() const { return slots_.size(); }
  uint64_t head_seq() const { return head_seq_; }
  bool contains(uint64_t seq) const { return seq >= head_seq_ && seq < head_seq_ + size(); }
  // A new slot at the tail; `seq` names it.
  Slot& push(const RequestMeta& meta, uint64_t& seq);
  Slot& at(uint64_t seq) { return slots_[static_cast<size_t>(seq - head_seq_)]; }
  bool is_head(uint64_t seq) const { return seq == head_seq_; }
  // The head left without being parked (its reply was written straight through).
  void pop_head() {
    slots_.pop_front();
    ++head_seq_;
  }
  // Pops every ready slot at the head, oldest first, calling emit(slot) for each.
  template <typename F>
  void drain(F&& emit) {
    while (!slots_.empty() && slots_.front().ready) {
      emit(slots_.front());
      Slot& s = slots_.front();
      if (s.data.capacity() > kShrinkAbove) std::string().swap(s.data);
      pop_head();
    }
  }
  // Every slot (and its job) goes; for a closed client.
  void release() { slots_.release(); }
  template <typename F>
  void for_each(F&& f) {
    for (size_t i = 0; i < slots_.size(); ++i) f(slots_[i]);
  }

  static constexpr size_t kShrinkAbove = 64 * 1024;

 private:
  Ring<Slot> slots_;
  uint64_t head_seq_ = 0;
};

}  // namespace lockstep::server

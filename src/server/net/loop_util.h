// Tearing down a libuv loop: every handle still open is closed and the loop runs until their
// close callbacks have run, so uv_loop_close can succeed (workers, the acceptor and the cluster
// thread all end this way).
#pragma once

#include <uv.h>

namespace lockstep::server {

inline void close_all_handles(uv_loop_t* loop) {
  uv_walk(
      loop,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h)) uv_close(h, nullptr);
      },
      nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
}

}  // namespace lockstep::server

// The metrics endpoint: a small HTTP/1.1 server (requests parsed by nodejs' http-parser) that
// answers GET /metrics (and HEAD) with whatever `render` returns, 404 for other paths and 405
// for other methods on /metrics. Keep-alive is honoured as the request asks; connections idle
// for two minutes, or beyond 64 at once, are closed.
//
// It runs its own libuv loop on its own thread rather than on a worker's loop: a scrape renders
// tens of kilobytes of text, which would add that much latency to the clients (and the lock
// engine) of the worker it ran on, and a slow or stuck HTTP client must never be able to hold
// up request serving. Nothing it reads needs a worker's thread: every figure is an atomic or
// guarded by its own lock (see gather_metrics in src/server/stats/introspect.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace lockstep::admin {

class MetricsHttpServer {
 public:
  // Called on the server's thread for every GET /metrics: the body (Prometheus text format).
  using Render = std::function<std::string()>;

  explicit MetricsHttpServer(Render render);
  ~MetricsHttpServer();  // stop()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // Binds host:port and starts serving on a new thread. False with `error` set when the
  // address cannot be resolved or bound.
  bool start(const std::string& host, uint16_t port, std::string& error);
  // Closes the listener and every connection, and joins the thread. Idempotent; any thread but
  // the server's own.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockstep::admin
